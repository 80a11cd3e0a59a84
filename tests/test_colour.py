import numpy as np
import pytest
import rawpy

from lowlight import colour, noise, synth
from lowlight.colour import (
    SRGB_GAMMA,
    SRGB_TO_XYZ,
    as_shot_neutral,
    linear_to_srgb,
    srgb_to_camera,
    srgb_to_linear,
)
from lowlight.dng import XYZ_TO_SRGB, write_dng

SONY = noise.load_profile("SonyA7S2")


def test_srgb_round_trip_and_d65_white():
    values = np.linspace(0, 1, 11)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-6)
    np.testing.assert_allclose(SRGB_TO_XYZ.sum(axis=1), [0.9505, 1.0, 1.089], atol=1e-4)
    np.testing.assert_allclose(XYZ_TO_SRGB @ SRGB_TO_XYZ, np.eye(3), atol=2e-3)


def test_sony_camera_sees_d65_white_with_green_one():
    to_camera = srgb_to_camera(np.asarray(SONY.xyz_to_camera))
    neutral = as_shot_neutral(to_camera)
    assert to_camera.sum(axis=1)[1] == pytest.approx(1.0)
    # The a7S II under D65: raw R ~0.36 and B ~0.70 of G (multipliers ~2.77 and ~1.43).
    np.testing.assert_allclose(neutral, [0.3613, 1.0, 0.7007], atol=2e-3)
    # Every night light keeps green the largest channel, so LibRaw scales nothing else.
    for seed in range(50):
        _, light = colour.draw_night_light(np.random.default_rng(seed), (2500, 7500), 0.2)
        _, drawn = synth.scene_colour(SONY, light)
        assert drawn[1] == 1.0 and drawn.max() == 1.0 and drawn.min() > 0.15


def render(path) -> np.ndarray:
    """LibRaw's rendering with the camera's white balance and matrix, sRGB curve, no brightening."""
    with rawpy.imread(str(path)) as raw:
        out = raw.postprocess(
            use_camera_wb=True,
            no_auto_bright=True,
            output_bps=16,
            gamma=SRGB_GAMMA,
            output_color=rawpy.ColorSpace.sRGB,
        )
    return out.astype(np.float64) / 65535


@pytest.mark.parametrize(
    "srgb, light, tolerance",
    [
        ((0.5, 0.5, 0.5), None, 0.02),
        ((0.8, 0.45, 0.25), None, 0.02),
        # a grey stays grey under any light: white balance undoes the light
        ((0.5, 0.5, 0.5), colour.planckian_xy(2500), 0.02),
        ((0.5, 0.5, 0.5), colour.SODIUM_XY[0], 0.02),
        # the light scales camera channels, white balance undoes it: colours come back
        ((0.2, 0.5, 0.7), colour.planckian_xy(3000), 0.02),
        ((0.6, 0.3, 0.6), colour.tinted_planckian_xy(6000, 0.006), 0.02),
    ],
)
def test_libraw_renders_the_scene_colour_back(tmp_path, srgb, light, tolerance):
    scene = np.broadcast_to(np.asarray(srgb), (32, 48, 3))
    to_camera, neutral = synth.scene_colour(SONY, light)
    # Noise-free: the mean signal rounded; full range (no headroom) so raw 1 renders as 1.
    signal = synth.scene_signal(srgb_to_linear(scene), 1 / synth.LONG_HEADROOM, to_camera, SONY)
    raw = (np.round(signal) + SONY.black_level).astype(np.uint16)
    path = write_dng(tmp_path / "flat.dng", raw, synth.frame_meta(SONY, neutral, 10.0, 100))
    rendered = render(path)[4:-4, 4:-4].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(rendered, srgb, rtol=tolerance)


def test_dng_carries_the_profile_matrix_and_neutral(tmp_path):
    _, neutral = synth.scene_colour(SONY, colour.planckian_xy(3200))
    raw = np.full((32, 48), 1000, np.uint16)
    path = write_dng(tmp_path / "meta.dng", raw, synth.frame_meta(SONY, neutral, 0.1, 1600))
    with rawpy.imread(str(path)) as image:
        np.testing.assert_allclose(image.rgb_xyz_matrix[:3], SONY.xyz_to_camera, atol=1e-4)
        np.testing.assert_allclose(image.camera_whitebalance[:3], 1 / neutral, rtol=1e-4)
        # rgb_cam: the inverse of camera-from-sRGB with each row normalised to sum 1.
        camera = np.asarray(SONY.xyz_to_camera) @ SRGB_TO_XYZ
        expected = np.linalg.inv(camera / camera.sum(axis=1, keepdims=True))
        np.testing.assert_allclose(image.color_matrix[:, :3], expected, atol=2e-3)
        assert (image.black_level_per_channel, image.white_level) == ([512] * 4, 16383)
        assert image.raw_pattern.tolist() == [[0, 1], [3, 2]]  # R G1 / G2 B, as ELD's bias
