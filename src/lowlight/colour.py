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


# --- camera colour -------------------------------------------------------------------------------

# Linear sRGB -> XYZ, D65 white (IEC 61966-2-1). Its row sums are the D65 white point's XYZ.
SRGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
)


def srgb_to_camera(xyz_to_camera: np.ndarray) -> np.ndarray:
    """The 3x3 map from linear sRGB to a camera's raw RGB, scaled so that the D65 white
    (sRGB 1, 1, 1) gives green 1.

    That scale is the one LibRaw's rendering undoes (it normalises each row of camera-from-sRGB
    to sum 1 and divides by the as-shot neutral), so a scene value s comes back as s.
    """
    camera = np.asarray(xyz_to_camera, dtype=np.float64) @ SRGB_TO_XYZ
    return camera / camera.sum(axis=1)[1]


def as_shot_neutral(to_camera: np.ndarray) -> np.ndarray:
    """The camera's response to the scene's white (sRGB 1, 1, 1 under ``to_camera``), green 1:
    the DNG AsShotNeutral that makes LibRaw's camera white balance render that white grey."""
    white = np.asarray(to_camera, dtype=np.float64).sum(axis=1)
    return white / white[1]
