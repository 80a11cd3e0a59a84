import numpy as np
import pytest

from lowlight import noise, synth
from lowlight.colour import srgb_to_linear
from lowlight.config import SynthConfig
from lowlight.synth import mosaic_rggb

SONY = noise.load_profile("SonyA7S2")


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


# These three replace the hand-set NoiseModel.for_iso with the same checks on ELD's profile.
@pytest.mark.parametrize("iso, signal", [(100, 2000.0), (3200, 20.0), (6400, 5.0)])
def test_noise_statistics_follow_the_model(iso, signal):
    frame_noise = noise.sample_frame_noise(SONY, SONY.gain(iso), np.random.default_rng(1))
    frame = noise.apply_noise(np.full((400, 400), signal), frame_noise, np.random.default_rng(1),
                              SONY.black_level, SONY.white_level)  # fmt: skip
    values = frame.astype(np.float64) - synth.BLACK_LEVEL
    bias = np.mean(frame_noise.color_bias)
    # Clipping at black biases very dark frames a little; the model holds away from zero.
    assert values.mean() == pytest.approx(signal + bias, rel=0.03, abs=0.3)
    assert values.var() == pytest.approx(noise.expected_variance(signal, frame_noise), rel=0.08)


def test_gain_and_read_noise_grow_with_iso():
    low, high = SONY.gain(100), SONY.gain(3200)
    assert high == pytest.approx(32 * low)
    assert SONY.tukey.median(high) > SONY.tukey.median(low)
    assert SONY.row.median(high) > SONY.row.median(low)


def test_expose_is_deterministic_and_clipped():
    signal = np.linspace(-10, 20000, 64 * 64).reshape(64, 64)
    frame_noise = noise.sample_frame_noise(SONY, SONY.gain(800), np.random.default_rng(0))
    a = noise.apply_noise(signal, frame_noise, np.random.default_rng(7), 512, synth.WHITE_LEVEL)
    b = noise.apply_noise(signal, frame_noise, np.random.default_rng(7), 512, synth.WHITE_LEVEL)
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


def photo_sets(plans):
    sets: dict[str, set[int]] = {"train": set(), "test": set(), "val": set()}
    for plan in plans:
        if plan.photo is not None:
            sets[plan.split].add(plan.photo)
    return sets


@pytest.mark.parametrize(
    "scenes, n_photos, procedural",
    [(12, 10, 0.25), (12, 10, 0.0), (12, 10, 1.0), (40, 10, 0.5), (5, 3, 0.25), (3, 2, 0.0),
     (6, 1, 0.0), (20, 4, 0.75)],
)  # fmt: skip
def test_no_test_or_val_photo_is_used_for_training(scenes, n_photos, procedural):
    plans = synth.plan_scenes(scenes, n_photos, np.random.default_rng(0), procedural)
    sets = photo_sets(plans)
    assert not sets["train"] & (sets["test"] | sets["val"])
    if n_photos >= 2:
        assert not sets["test"] & sets["val"]
    # Procedural scenes only in training; every test and val scene is a held-out photo.
    assert all(p.split == "train" for p in plans if p.procedural)
    assert all(p.photo is not None for p in plans if p.split != "train")
    train = [p for p in plans if p.split == "train"]
    if n_photos >= 3:
        assert sum(p.procedural for p in train) == synth.procedural_count(len(train), procedural)
    else:  # too few photos to hold any out of training: it is all procedural
        assert all(p.procedural for p in train)


def test_default_plan_mixes_photos_and_dead_leaves_in_train():
    plans = synth.plan_scenes(12, 10, np.random.default_rng(0), SynthConfig().procedural)
    train = [p for p in plans if p.split == "train"]
    assert [p.procedural for p in train].count(True) == 2  # a quarter of 8
    # Photos and dead leaves each cycle through the exposure settings on their own.
    ratios = {
        kind: [round(p.long_exposure / p.short_exposure) for p in train if p.procedural == kind]
        for kind in (True, False)
    }
    assert ratios == {True: [100, 250], False: [100, 250, 303, 300, 100, 250]}
    sets = photo_sets(plans)
    assert (len(sets["train"]), len(sets["test"]), len(sets["val"])) == (6, 3, 1)


def test_each_scene_draws_a_gain_and_its_iso():
    plans = synth.plan_scenes(40, 10, np.random.default_rng(2))
    gains = [p.gain for p in plans]
    assert all(SONY.k_min <= k <= SONY.k_max for k in gains) and len(set(gains)) == 40
    assert all(p.iso == SONY.iso(p.gain) for p in plans)
    assert min(p.iso for p in plans) >= 98 and max(p.iso for p in plans) <= 6286


def test_written_scene_is_the_sony_with_its_own_noise_per_frame(tmp_path):
    import rawpy

    plans = synth.plan_scenes(12, 10, np.random.default_rng(0), 0.25)
    dead_leaves = next(p for p in plans if p.procedural)
    photo = next(p for p in plans if p.split == "test")
    lines = synth.write_scene(tmp_path, dead_leaves, None, (32, 48), 2, seed=0)
    assert len(lines) == 2 and f"ISO{dead_leaves.iso} F" in lines[0]
    fnumber = float(lines[0].rsplit(" F", 1)[1])
    assert 2.8 <= fnumber <= 11 and lines[1].endswith(f" F{fnumber:g}")  # one lens a scene
    images = [np.random.default_rng(0).uniform(0, 1, (40, 60, 3))]
    synth.write_scene(tmp_path, photo, images[0], (32, 48), 1, seed=0, read_noise="gaussian")
    shorts = sorted((tmp_path / "short").glob(f"{dead_leaves.scene_id}_*.dng"))
    assert len(shorts) == 2 and len(list((tmp_path / "long").glob("*.dng"))) == 2
    frames = []
    for path in shorts:
        with rawpy.imread(str(path)) as raw:
            frames.append(raw.raw_image.copy())
            assert raw.black_level_per_channel == [512] * 4 and raw.white_level == 16383
            np.testing.assert_allclose(raw.rgb_xyz_matrix[:3], SONY.xyz_to_camera, atol=1e-4)
    assert not np.array_equal(frames[0], frames[1])  # two noise draws of one scene
    with pytest.raises(ValueError, match="pass it"):
        synth.write_scene(tmp_path, photo, None, (32, 48), 1, seed=0)


def test_synth_config_validates_the_camera():
    assert SynthConfig().profile == "SonyA7S2" and SynthConfig().read_noise == "tukey"
    with pytest.raises(ValueError, match=r"Canon\.json.*known: FujiXT2, SonyA7S2"):
        SynthConfig(profile="Canon")
    with pytest.raises(ValueError):
        SynthConfig(read_noise="poisson")
    with pytest.raises(ValueError):
        SynthConfig(procedural=1.5)
