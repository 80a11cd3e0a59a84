"""The sRGB baselines on dark frames as they are (gain 1): gamma+CLAHE and LIME, each with BM3D.

LIME's checks are properties of the paper's model (Guo, Li, Ling, IEEE TIP 2017): the initial
map is the max of R, G, B; the refined map solves (I + alpha sum_d D_d^T W_d D_d) t = t^.
"""

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.ndimage import gaussian_filter
from skimage import data

from lowlight import baselines, metrics
from lowlight.config import EvaluateConfig
from tests.test_baselines import noisy_scene

SRGB = ["gamma+clahe", "gamma+clahe+bm3d", "lime", "lime+bm3d"]


def dark_photo(height: int = 64, width: int = 96, level: float = 0.12) -> np.ndarray:
    """A crop of scikit-image's astronaut darkened in sRGB values, as a dark JPEG's pixels."""
    photo = data.astronaut()[100 : 100 + 2 * height : 2, 100 : 100 + 2 * width : 2] / 255.0
    return (photo * level).astype(np.float32)


def total_variation(t: np.ndarray) -> float:
    return float(np.abs(np.diff(t, axis=0)).sum() + np.abs(np.diff(t, axis=1)).sum())


def noisy_step_map() -> np.ndarray:
    """An initial map with a strong vertical step (0.1 | 0.6) under noise of std 0.02."""
    t_hat = np.full((48, 64), 0.1)
    t_hat[:, 32:] = 0.6
    return np.clip(t_hat + np.random.default_rng(0).normal(0, 0.02, t_hat.shape), 0, 1)


def step_height(t: np.ndarray) -> float:
    return float(t[:, 32].mean() - t[:, 31].mean())


def test_lime_initial_map_is_the_max_channel():
    image = np.random.default_rng(1).random((8, 12, 3)).astype(np.float32)
    t_hat = baselines.lime_initial_map(image)
    assert t_hat.shape == (8, 12)
    np.testing.assert_array_equal(t_hat, np.maximum(np.maximum(image[..., 0], image[..., 1]),
                                                    image[..., 2]))  # fmt: skip


def test_lime_keeps_a_constant_map_and_divides_by_its_gamma_corrected_value():
    image = np.broadcast_to(np.float32([0.1, 0.2, 0.05]), (24, 32, 3)).copy()
    refined = baselines.lime_refine(baselines.lime_initial_map(image))
    np.testing.assert_allclose(refined, 0.2, atol=1e-9)  # smoothing keeps constants
    expected = image / 0.2**baselines.LIME_GAMMA  # T^0.8 = 0.276: [0.36, 0.72, 0.18]
    np.testing.assert_allclose(baselines.lime(image), expected, rtol=1e-5)


def test_lime_refined_map_keeps_the_mean_smooths_noise_and_keeps_a_strong_edge():
    t_hat = noisy_step_map()
    refined = baselines.lime_refine(t_hat)
    # the smoothness operator's columns sum to zero (each difference row does), so 1^T t = 1^T t^
    assert refined.sum() == pytest.approx(t_hat.sum(), rel=1e-9)
    assert total_variation(refined) < 0.2 * total_variation(t_hat)  # noise smoothed away
    assert refined[:, 5:25].std() < 0.1 * t_hat[:, 5:25].std()
    assert step_height(refined) > 0.3  # of the 0.5 step: the structure-aware weights keep it
    # uniform weights (strategy I) that smooth less overall still blur the edge far more
    uniform = baselines.lime_refine(t_hat, (np.full(t_hat.shape, 200.0),) * 2)
    assert total_variation(uniform) > total_variation(refined)
    assert step_height(uniform) < 0.5 * step_height(refined)


def test_lime_brightens_a_dark_photo_and_stays_in_range():
    dark = dark_photo()
    out = baselines.lime(dark)
    assert out.shape == dark.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.mean() > 3 * dark.mean()


def test_gamma_clahe_brings_a_dark_photo_near_mid_grey_and_is_deterministic():
    dark = dark_photo()
    gamma = baselines.brightening_gamma(dark)
    assert baselines.GAMMA_RANGE[0] < gamma < 1.0
    assert (dark**gamma @ baselines.LUMA).mean() == pytest.approx(baselines.MID_GREY, abs=1e-3)
    out = baselines.gamma_clahe(dark)
    assert out.shape == dark.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # CLAHE equalises each tile's histogram, which lifts the mean a little (+0.12 on this crop)
    assert abs((out @ baselines.LUMA).mean() - baselines.MID_GREY) < 0.15
    np.testing.assert_array_equal(out, baselines.gamma_clahe(dark))


def test_gamma_leaves_a_bright_frame_and_stops_at_its_floor_on_a_black_one():
    assert baselines.brightening_gamma(np.full((4, 4, 3), 0.8, np.float32)) == 1.0
    assert baselines.brightening_gamma(np.zeros((4, 4, 3), np.float32)) == baselines.GAMMA_RANGE[0]


@pytest.mark.parametrize("name", ["exposure", "gamma+clahe", "lime"])
def test_bm3d_variants_lower_the_error_of_a_noisy_dark_frame(name):
    clean = noisy_scene()[0] * 0.12  # a smooth scene: BM3D helps at any sane sigma scale
    noise = gaussian_filter(np.random.default_rng(2).normal(size=clean.shape), (0.7, 0.7, 0))
    noisy = np.clip(clean + noise * 0.01 / noise.std(), 0, 1).astype(np.float32)
    method, with_bm3d = baselines.BASELINES[name], baselines.BASELINES[f"{name}+bm3d"]
    reference = method(clean)  # what the method makes of the noise-free frame
    before = metrics.psnr(method(noisy), reference)
    after = metrics.psnr(with_bm3d(noisy), reference)
    assert after > before + 1.0, (before, after)  # at x8: +7.4 and +8.6 dB


def test_evaluate_accepts_the_srgb_baselines_by_name():
    assert EvaluateConfig(baselines=["amplify", *SRGB]).baselines == ["amplify", *SRGB]
    with pytest.raises(ValidationError, match="unknown baseline"):
        EvaluateConfig(baselines=["lime+clahe"])


def test_exposure_meters_a_dark_photo_to_mid_grey_as_convert_exposes_it():
    """exposure: the sRGB model's own input, as convert makes it (auto gain in linear light)."""
    from lowlight import isp
    from lowlight.config import ConvertConfig
    from lowlight.conversion import expose_picture

    dark = dark_photo(level=0.25)
    out = baselines.exposure(dark)
    assert out.shape == dark.shape and out.dtype == np.float32
    assert isp.level(out) == pytest.approx(baselines.EXPOSURE_TARGET, rel=0.05)  # few clipped
    np.testing.assert_array_equal(out, expose_picture(dark, "auto", ConvertConfig())[0])
    bright = np.full((4, 4, 3), 0.9, np.float32)  # brighter than mid grey: left as it is
    np.testing.assert_array_equal(baselines.exposure(bright), bright)


def test_evaluate_accepts_the_exposure_baselines():
    names = ["exposure", "exposure+bm3d"]
    assert EvaluateConfig(baselines=names).baselines == names


def test_evaluate_brightens_the_whole_photo_and_denoises_its_crop():
    """A user's tool meters the whole photo: the exposure of a crop darker than its frame is
    the frame's exposure cut, not the crop metered on its own (brighter)."""
    from lowlight import evaluation, modes
    from lowlight.conversion import Shot

    whole = dark_photo(96, 144, level=0.2)
    whole[:, :40] = 0.6 * whole[:, :40] + 0.4  # a bright band outside the crop
    crop = (48, 64)
    method = baselines.BASELINES["exposure"]
    cut = evaluation.brightened(method, Shot(1.0, picture=True), whole, modes.get("rgb"), crop)
    np.testing.assert_array_equal(cut, evaluation.crop_center(method(whole), crop))
    alone = method(evaluation.crop_center(whole, crop))
    assert alone.mean() > cut.mean() + 0.05
    assert baselines.BASELINES["exposure+bm3d"].bm3d_scale == baselines.SRGB_BM3D_SIGMA_SCALE
    assert baselines.BASELINES["amplify+bm3d"].at_scale(6).bm3d_scale == 6
