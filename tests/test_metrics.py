"""The evaluation's metrics on known image pairs: MS-SSIM, BRISQUE and the tone measures."""

import math

import cv2
import numpy as np
import pytest
from skimage import data, util

from lowlight import evaluation, metrics


def photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos as float RGB in [0, 1] (no download)."""
    return util.img_as_float(getattr(data, name)()).astype(np.float32)


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(image + noise, 0, 1).astype(np.float32)


def test_msssim_is_one_on_identical_images_and_falls_as_noise_grows():
    image = photo("astronaut")[128:384, 128:384]  # 256x256: all five scales
    assert metrics.msssim_scales(*image.shape[:2]) == 5
    assert metrics.msssim(image, image) == pytest.approx(1.0, abs=1e-6)
    scores = [metrics.msssim(noisy(image, sigma), image) for sigma in (0.02, 0.05, 0.1, 0.2)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4
    assert 0.5 < scores[-1] < scores[0] < 1


def test_msssim_on_small_images_uses_fewer_scales_and_never_fails():
    # torchmetrics' size rule: 5 scales from 176 px on the short side, 4 from 99, 3 from 44,
    # 2 from 11; under that none
    sizes = {176: 5, 175: 4, 99: 4, 98: 3, 44: 3, 43: 2, 11: 2, 10: 0}
    assert {s: metrics.msssim_scales(s, 600) for s in sizes} == sizes
    assert metrics.msssim_scales(600, 43) == 2
    tiny = photo("astronaut")[200:232, 200:248]  # 32x48, evaluate's test frames: 2 scales
    assert metrics.msssim(tiny, tiny) == pytest.approx(1.0, abs=1e-6)
    assert metrics.msssim(noisy(tiny, 0.2), tiny) < metrics.msssim(noisy(tiny, 0.05), tiny) < 1
    assert math.isnan(metrics.msssim(tiny[:8, :8], tiny[:8, :8]))


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_brisque_scores_a_clean_photo_more_natural_than_noisy_or_blurred(name):
    """BRISQUE's premise (Mittal et al. 2012): noise and blur move a photo's local statistics
    away from natural ones; lower is more natural. Runs on numpy >= 2.4 (the package as
    released fails there)."""
    clean = photo(name)
    blurred = cv2.GaussianBlur(clean, (0, 0), 3)
    score = metrics.brisque(clean)
    assert score < 20 < metrics.brisque(noisy(clean, 0.1)) and score < metrics.brisque(blurred)
    # deterministic up to float rounding (numpy's SIMD sums depend on buffer alignment)
    assert metrics.brisque(clean.copy()) == pytest.approx(score, rel=1e-9)


def test_brisque_of_a_flat_image_is_nan_not_an_error():
    assert math.isnan(metrics.brisque(np.full((64, 64, 3), 0.5, np.float32)))


def test_channel_mean_error_on_known_pairs():
    truth = np.random.default_rng(1).uniform(0.1, 0.9, (20, 30, 3)).astype(np.float32)
    np.testing.assert_allclose(metrics.channel_mean_error(truth * 1.05, truth), 0.05, atol=1e-6)
    cast = truth * np.float32([0.9, 1.0, 1.02])  # a red deficit, a slight blue cast
    np.testing.assert_allclose(metrics.channel_mean_error(cast, truth), [-0.1, 0, 0.02], atol=1e-6)
    black_blue = truth * np.float32([1, 1, 0])
    errors = metrics.channel_mean_error(black_blue, black_blue)
    assert errors[:2].tolist() == [0, 0] and math.isnan(errors[2])


def test_dark_lift_on_known_pairs():
    truth = np.random.default_rng(2).uniform(0.0, 1.0, (20, 30, 3)).astype(np.float32)
    assert metrics.dark_lift(truth + 2 / 255, truth) == pytest.approx(2.0, abs=1e-4)
    assert metrics.dark_lift(truth, truth) == 0
    # only the darkest tenth (60 of 600 pixels, by luminance) counts
    luma = truth.reshape(-1, 3) @ np.float32(metrics.LUMA)
    darkest = np.argsort(luma)[:60]
    lifted = truth.reshape(-1, 3).copy()
    lifted[darkest] += 3 / 255
    assert metrics.dark_lift(lifted.reshape(truth.shape), truth) == pytest.approx(3.0, abs=1e-4)
    brighter = truth.reshape(-1, 3).copy()
    brighter[np.argsort(luma)[60:]] += 0.2
    assert metrics.dark_lift(brighter.reshape(truth.shape), truth) == 0


def test_evaluation_scores_and_summaries_of_tone_and_naturalness():
    truth = photo("coffee")[:200, :300]
    row = evaluation.score(truth * 1.05, truth)
    assert row["msssim_scales"] == 5 and row["mean_error"] == pytest.approx(0.05, abs=1e-5)
    assert {k: round(row[f"mean_error_{k}"], 5) for k in "rgb"} == {"r": 0.05, "g": 0.05, "b": 0.05}

    def frame(ratio, mean_error, dark_lift, brisque, ms_per_mp=1.0):
        return {"method": "model", "ratio": ratio, "psnr": 30.0, "ssim": 0.9,
                "ms_per_mp": ms_per_mp, "mean_error": mean_error, "dark_lift": dark_lift,
                "brisque": brisque}  # fmt: skip

    rows = [frame(100, 0.01, 0.5, 10.0, ms_per_mp=900.0), frame(100, 0.03, 1.5, math.nan),
            frame(300, 0.10, 4.0, 20)]  # fmt: skip
    summary = evaluation.summarize(rows)["model"]
    # the channel mean error: median over frames; dark lift: mean; BRISQUE skips NaN
    assert summary["overall"]["mean_error"] == 0.03 and summary["overall"]["dark_lift"] == 2.0
    # the time per megapixel: median, the first frame's warm-up left out
    assert summary["overall"]["ms_per_mp"] == 1.0
    assert summary["overall"]["brisque"] == 15.0 and summary["ratio_100"]["brisque"] == 10.0
    assert summary["ratio_100"]["mean_error"] == 0.02 and summary["ratio_300"]["images"] == 1
    assert "msssim" not in summary["overall"]  # rows without a metric: not summarised
