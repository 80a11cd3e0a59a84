"""Classical baselines the model must beat, chosen by name (``evaluate.baselines``).

Each takes the ratio-amplified image (HxWx3 float in [0, 1]) and returns its estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Baseline = Callable[[np.ndarray], np.ndarray]


def amplify(image: np.ndarray) -> np.ndarray:
    """The ratio-amplified conversion as it is: what SID's paper calls the traditional pipeline."""
    return image


def amplify_bm3d(image: np.ndarray) -> np.ndarray:
    """BM3D (Dabov et al. 2007, the ``bm3d`` package) with the noise sigma estimated per image."""
    import bm3d
    from skimage.restoration import estimate_sigma

    sigma = float(estimate_sigma(image, channel_axis=-1, average_sigmas=True))
    if sigma <= 0:
        return image
    return np.clip(bm3d.bm3d_rgb(image, sigma_psd=sigma), 0.0, 1.0).astype(np.float32)


BASELINES: dict[str, Baseline] = {"amplify": amplify, "amplify+bm3d": amplify_bm3d}
