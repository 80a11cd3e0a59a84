"""Baselines: BM3D's noise level on noise like that of amplified, demosaiced dark frames."""

import numpy as np
from scipy.ndimage import gaussian_filter

from lowlight import baselines, metrics

MILD = 4.5  # the scale chosen on validation for lowlight's first, milder synthetic camera


def noisy_scene(sigma: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """A smooth 64x64 scene and a copy with spatially correlated noise (demosaicing spreads
    each pixel's noise over its neighbours), the kind skimage's estimate reads too low."""
    y, x = np.mgrid[0:64, 0:64] / 64
    clean = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.3 * np.sin(6 * x)], -1)
    clean[20:44, 20:44] = [0.8, 0.2, 0.3]
    noise = gaussian_filter(np.random.default_rng(0).normal(size=clean.shape), (0.8, 0.8, 0))
    noisy = np.clip(clean + noise * sigma / noise.std(), 0, 1)
    return clean.astype(np.float32), noisy.astype(np.float32)


def test_scaled_sigma_is_closer_to_the_true_noise_than_the_raw_estimate():
    _, noisy = noisy_scene(0.08)
    # at this mild noise the earlier camera's scale (4.5) fits; the a7S II's frames need x54
    raw, scaled = baselines.bm3d_sigma(noisy, 1.0), baselines.bm3d_sigma(noisy, MILD)
    assert raw < 0.03  # the wavelet estimate reads the 0.08 noise as ~0.02
    assert abs(scaled - 0.08) < abs(raw - 0.08)


def test_bm3d_with_the_scaled_sigma_denoises_better_than_with_the_raw_estimate():
    clean, noisy = noisy_scene(0.08)
    noisy_psnr = metrics.psnr(noisy, clean)  # ~21.9 dB
    old = metrics.psnr(baselines.amplify_bm3d(noisy, sigma_scale=1.0), clean)  # ~22.1 dB
    new = metrics.psnr(baselines.amplify_bm3d(noisy, sigma_scale=MILD), clean)  # ~26.0 dB
    assert old < noisy_psnr + 0.5
    assert new > old + 3.0
