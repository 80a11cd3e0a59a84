"""Image quality metrics on float HxWx3 images in [0, 1]: fidelity (PSNR, SSIM, MS-SSIM),
naturalness without a reference (BRISQUE) and tonal bias (channel mean error, dark lift)."""

from __future__ import annotations

import functools
import warnings

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


# MS-SSIM: Wang, Simoncelli & Bovik 2003's five scale weights and 11 px Gaussian window.
MSSSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MSSSIM_WINDOW = 11


def msssim_scales(height: int, width: int) -> int:
    """How many of MS-SSIM's five scales an image this size has room for (0: none).

    torchmetrics' rule: each side at least ``2**n`` and ``side // (n - 1)**2`` wider than the
    window, so 5 scales need 176 px on the short side, 4 need 99, 3 need 44, 2 need 11.
    """
    short = min(height, width)
    for n in range(len(MSSSIM_BETAS), 0, -1):
        if short >= 2**n and short // max(1, n - 1) ** 2 > MSSSIM_WINDOW - 1:
            return n
    return 0


def msssim(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Multi-scale SSIM (torchmetrics, data range 1) of HxWx3 float images; higher is better.

    Images too small for five scales use the first ``msssim_scales`` weights, renormalised to
    sum to 1, so a score stays on the same 0..1 scale; under 11 px on a side it is NaN.
    """
    scales = msssim_scales(*reference.shape[:2])
    if scales == 0:
        return float("nan")
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    betas = np.asarray(MSSSIM_BETAS[:scales])
    pred, target = (
        torch.from_numpy(np.ascontiguousarray(np.transpose(image, (2, 0, 1)), np.float32))[None]
        for image in (estimate, reference)
    )
    with torch.no_grad():
        value = multiscale_structural_similarity_index_measure(
            pred, target, data_range=1.0, kernel_size=MSSSIM_WINDOW,
            betas=tuple(float(b) for b in betas / betas.sum()),
        )  # fmt: skip
    return float(value)


@functools.cache
def _brisque_model():
    """brisque 0.2.0's shipped SVM, with its features made plain floats for numpy >= 2.4.

    Its ``mean_squares_sum`` divides by ``array.shape`` (a tuple), so four of every 18
    features come back as shape-(1,) arrays; ``scale_features`` then calls ``float()`` on
    them, which numpy deprecated in 1.25 and made a TypeError in 2.4. The subclass hands
    ``score`` the same values as 0-d floats; the package's own extraction and SVM do the rest.
    """
    with warnings.catch_warnings():  # it imports the deprecated scipy.ndimage.filters
        warnings.simplefilter("ignore", DeprecationWarning)
        from brisque import BRISQUE

    class Brisque(BRISQUE):
        def calculate_brisque_features(self, image, kernel_size=7, sigma=7 / 6):
            features = super().calculate_brisque_features(image, kernel_size, sigma)
            return np.array([np.asarray(f, np.float64).item() for f in features])

    return Brisque(url=False)


def brisque(image: np.ndarray) -> float:
    """BRISQUE naturalness of an HxWx3 float image in [0, 1] (no reference); lower is better.

    Mittal et al. 2012's features of the luminance at full and half size, scored by the SVM
    the ``brisque`` package ships (trained on LIVE: ~0-20 for clean photos, higher with noise
    or blur). Computed on the image as written (clipped to [0, 1]), at full size: a downscale
    would average away the noise and texture it judges. Flat or tiny images give NaN.
    """
    with np.errstate(all="ignore"):
        return float(_brisque_model().score(np.clip(image, 0.0, 1.0).astype(np.float64)))


# Rec. 709 / sRGB luminance weights, to rank ground-truth pixels from dark to bright.
LUMA = (0.2126, 0.7152, 0.0722)


def channel_mean_error(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per channel (mean(estimate) - mean(reference)) / mean(reference): the tonal bias.

    A colour cast or lifted blacks shows as a signed relative error per channel (0.05 = 5 %
    too bright); NaN for a channel whose reference mean is 0.
    """
    est = estimate.reshape(-1, estimate.shape[-1]).mean(axis=0, dtype=np.float64)
    ref = reference.reshape(-1, reference.shape[-1]).mean(axis=0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref > 0, (est - ref) / ref, np.nan)


def dark_lift(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Mean of (estimate - reference) over the darkest tenth of reference pixels, in 1/255.

    The pixels are ranked by the reference's luminance; positive means lifted blacks (the
    rectified read noise of issue 15), negative crushed ones.
    """
    luma = reference.reshape(-1, 3).astype(np.float64) @ np.asarray(LUMA)
    count = max(1, -(-luma.size // 10))  # ceil(N / 10)
    darkest = np.argpartition(luma, count - 1)[:count]
    diff = estimate.reshape(-1, 3)[darkest].astype(np.float64) - reference.reshape(-1, 3)[darkest]
    return float(255 * diff.mean())
