"""The camera processing of synthetic JPEGs (lowlight.isp) and its inverse, on real numbers."""

import numpy as np
import pytest

from lowlight import imageio, isp, noise, synth
from lowlight.colour import draw_night_light

SONY = noise.load_profile("SonyA7S2")
FULL_SCALE = synth.full_scale(SONY)


def night_colour(seed: int) -> np.ndarray:
    """A scene's linear sRGB -> camera RGB matrix under a drawn night light (sodium or not)."""
    _, light = draw_night_light(np.random.default_rng(seed), (2500.0, 7500.0), 0.5)
    return synth.scene_colour(SONY, light)[0]


def smooth_scene(height: int = 64, width: int = 96) -> np.ndarray:
    """Linear light that is linear in x and y, different per channel, inside (0, 1)."""
    y, x = np.mgrid[0:height, 0:width] / 100.0
    return np.stack([0.02 + 0.5 * x + 0.2 * y, 0.05 + 0.3 * x + 0.3 * y, 0.1 + 0.2 * x + 0.4 * y],
                    axis=-1)  # fmt: skip


def to_raw(camera_rgb: np.ndarray, exposure: float = 1.0) -> np.ndarray:
    """Camera RGB as the sensor's mosaic in DN, without noise: rounded, clipped at white."""
    dn = synth.mosaic(camera_rgb, SONY.cfa) * FULL_SCALE * exposure + SONY.black_level
    return np.clip(np.rint(dn), 0, SONY.white_level).astype(np.uint16)


def test_tone_curve_and_its_inverse():
    y = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(isp.tone_curve(isp.inverse_tone_curve(y)), y, atol=1e-12)
    np.testing.assert_allclose(isp.inverse_tone_curve(isp.tone_curve(y)), y, atol=1e-7)
    np.testing.assert_allclose(isp.tone_curve(np.array([0.0, 0.5, 1.0])), [0.0, 0.5, 1.0])
    # an S-curve: shadows darker, highlights brighter
    assert isp.tone_curve(np.array(0.2)) == pytest.approx(3 * 0.04 - 2 * 0.008)
    assert isp.tone_curve(np.array(0.8)) > 0.8


def test_colour_matrix_keeps_white_white_under_any_light():
    for seed in range(4):
        neutral, matrix = isp.white_balance(night_colour(seed))
        assert neutral[1] == 1.0
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
        # the camera's matrix is the same whatever the light; the white balance is not
        np.testing.assert_allclose(matrix, isp.white_balance(night_colour(99))[1], atol=1e-12)


def test_unprocess_then_develop_returns_random_values():
    values = np.random.default_rng(0).random((50, 40, 3))
    for seed in range(3):
        to_camera = night_colour(seed)
        back = isp.develop(isp.unprocess(values, to_camera), to_camera)
        np.testing.assert_allclose(back, values, atol=1e-5)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_real_photo_comes_back_through_the_sensor_levels(index):
    """A bundled photo unprocessed to 14-bit raw levels (no mosaic, no noise) and processed
    again is itself within 1/255 wherever the sensor did not clip."""
    name, photo = synth.load_photos(None)[index]
    to_camera = night_colour(index)
    camera_rgb = isp.unprocess(photo, to_camera)
    dn = np.rint(camera_rgb * FULL_SCALE) + SONY.black_level
    clipped = (dn > SONY.white_level).any(axis=-1)
    dn = np.clip(dn, 0, SONY.white_level)
    back = isp.develop((dn - SONY.black_level) / FULL_SCALE, to_camera)
    assert clipped.mean() < 0.01, name
    assert np.abs(back - photo)[~clipped].max() < 1 / 255, name
    original = np.rint(photo * 255).astype(np.uint8)
    assert np.mean(isp.quantise(back) == original) > 0.99, name


def test_mosaic_and_demosaic_return_a_smooth_image_away_from_the_border():
    to_camera = night_colour(1)
    camera_rgb = smooth_scene() @ to_camera.T
    photo = isp.develop(camera_rgb, to_camera)
    raw = to_raw(camera_rgb)
    out = isp.process(raw, SONY.black_level, FULL_SCALE, SONY.cfa, to_camera)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert np.abs(out - photo)[2:-2, 2:-2].max() < 1 / 255


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_demosaic_reads_each_layout(cfa):
    rgb = np.broadcast_to(np.array([1000.0, 2000.0, 3000.0]), (8, 8, 3))
    out = isp.demosaic(synth.mosaic(rgb, cfa).astype(np.uint16), cfa)
    assert out[2:-2, 2:-2].reshape(-1, 3).tolist() == [[1000, 2000, 3000]] * 16


@pytest.mark.parametrize("darkness", [4, 16, 64])
def test_darkness_scales_the_linear_mean(darkness):
    """A frame at 1/darkness of the exposure, processed without gain and quantised to 8 bits,
    holds 1/darkness of the scene's light once the curves are undone."""
    to_camera = night_colour(2)
    linear = smooth_scene()
    raw = to_raw(linear @ to_camera.T, 1 / darkness)
    dark = isp.quantise(isp.process(raw, SONY.black_level, FULL_SCALE, SONY.cfa, to_camera))
    assert dark.dtype == np.uint8
    assert isp.to_linear(dark / 255.0).mean() == pytest.approx(linear.mean() / darkness, rel=0.01)


def test_jpeg_quality_changes_the_bytes():
    to_camera = night_colour(0)
    name, photo = synth.load_photos(None)[0]
    image = isp.quantise(isp.develop(isp.unprocess(photo[:128, :128], to_camera), to_camera))
    low, high = (imageio.encode(image, "jpeg", quality) for quality in (70, 95))
    assert low != high and len(low) < len(high)
    errors = [
        np.abs(imageio.decode_image(data) - image.astype(float)).mean() for data in (low, high)
    ]
    assert errors[1] < errors[0]


def test_expose_multiplies_the_light_and_undoes_itself():
    """convert's gain for a JPEG (and evaluate's undoing of it) is a gain in linear light."""
    photo = np.random.default_rng(3).uniform(0.0, 0.6, (16, 16, 3)).astype(np.float32)
    brighter = isp.expose(photo, 2.0)  # 0.6 is ~0.28 in linear light: nothing clips at x2
    assert isp.level(brighter) == pytest.approx(2.0 * isp.level(photo), rel=1e-5)
    np.testing.assert_allclose(isp.expose(brighter, 0.5), photo, atol=1e-5)
    assert np.all(isp.expose(np.full((2, 2, 3), 0.9, np.float32), 8.0) == 1.0)  # clipped
    assert np.array_equal(isp.expose(photo, 1.0), photo)
