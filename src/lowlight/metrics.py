"""Image quality metrics: scikit-image's PSNR and SSIM, with the data range always stated."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(estimate: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB of HxWxC float images in [0, data_range]; capped at 100 dB for exact matches."""
    if np.array_equal(estimate, reference):
        return 100.0
    return float(peak_signal_noise_ratio(reference, estimate, data_range=data_range))


def ssim(estimate: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM over colour channels (HxWxC); small images use a smaller odd window."""
    window = min(7, *(s - 1 + s % 2 for s in reference.shape[:2]))
    return float(
        structural_similarity(
            reference, estimate, data_range=data_range, channel_axis=2, win_size=max(window, 3)
        )
    )
