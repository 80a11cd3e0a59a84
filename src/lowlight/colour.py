"""The sRGB transfer curve, defined once: synthesis undoes it, evaluation and LibRaw apply it."""

from __future__ import annotations

import numpy as np

# The curve in LibRaw's (power, toe slope) form, for ``postprocess(gamma=...)``.
SRGB_GAMMA = (2.4, 12.92)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding of values in [0, 1] (clipped) to linear light."""
    srgb = np.clip(srgb, 0.0, 1.0)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encoding of linear light (>= 0) to sRGB values."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
