import numpy as np
import pytest

from lowlight import synth
from lowlight.colour import srgb_to_linear
from lowlight.synth import NoiseModel, expose, mosaic_rggb


def test_srgb_to_linear_known_values():
    np.testing.assert_allclose(
        srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0])),
        [0.0, 0.04045 / 12.92, 0.21404, 1.0],
        atol=1e-5,
    )


def test_mosaic_samples_rggb():
    rgb = np.zeros((4, 6, 3))
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 1, 2, 3
    bayer = mosaic_rggb(rgb)
    assert bayer[0::2, 0::2].tolist() == np.full((2, 3), 1).tolist()  # R
    assert (bayer[0::2, 1::2] == 2).all() and (bayer[1::2, 0::2] == 2).all()  # G G
    assert (bayer[1::2, 1::2] == 3).all()  # B
    with pytest.raises(ValueError, match="even"):
        mosaic_rggb(np.zeros((3, 4, 3)))


@pytest.mark.parametrize("iso, signal", [(100, 2000.0), (3200, 20.0), (6400, 5.0)])
def test_noise_statistics_follow_the_model(iso, signal):
    noise = NoiseModel.for_iso(iso)
    frame = expose(np.full((400, 400), signal), noise, np.random.default_rng(1))
    values = frame.astype(np.float64) - synth.BLACK_LEVEL
    # Clipping at black biases very dark frames a little; the model holds away from zero.
    assert values.mean() == pytest.approx(signal, rel=0.03, abs=0.3)
    assert values.var() == pytest.approx(noise.variance(signal), rel=0.08)


def test_gain_and_read_noise_grow_with_iso():
    low, high = NoiseModel.for_iso(100), NoiseModel.for_iso(3200)
    assert high.gain == pytest.approx(32 * low.gain)
    assert high.read_sigma > low.read_sigma


def test_expose_is_deterministic_and_clipped():
    signal = np.linspace(-10, 20000, 64 * 64).reshape(64, 64)
    a = expose(signal, NoiseModel.for_iso(800), np.random.default_rng(7))
    b = expose(signal, NoiseModel.for_iso(800), np.random.default_rng(7))
    assert a.dtype == np.uint16 and np.array_equal(a, b)
    assert a.max() <= synth.WHITE_LEVEL


def test_short_exposure_is_scene_over_ratio():
    linear = np.full((8, 8, 3), 0.5)
    long = synth.scene_signal(linear, 1.0)
    short = synth.scene_signal(linear, 0.01)
    np.testing.assert_allclose(short * 100, long)


def test_every_split_gets_scenes_and_its_own_photos():
    counts = synth.split_counts(3)
    assert counts == {"train": 1, "test": 1, "val": 1}
    assert synth.split_counts(12) == {"train": 8, "test": 3, "val": 1}
    with pytest.raises(ValueError):
        synth.split_counts(2)
    groups = synth.assign_photos(10, synth.split_counts(12))
    flat = [i for g in groups.values() for i in g]
    assert sorted(flat) == list(range(10))  # disjoint and complete


def test_plan_uses_sid_prefixes_and_all_ratios_in_test():
    plans = synth.plan_scenes(12, 10, np.random.default_rng(0))
    assert {p.scene_id[0] for p in plans if p.split == "test"} == {"1"}
    ratios = {round(p.long_exposure / p.short_exposure) for p in plans if p.split == "test"}
    assert ratios == {100, 250, 303}
