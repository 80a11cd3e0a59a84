import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from lowlight import noise
from lowlight.errors import ConfigError

SONY = noise.load_profile("SonyA7S2")
BLACK, WHITE = SONY.black_level, SONY.white_level


def flat_noise(gain: float, scale: float, lam: float, row: float, bias=(0, 0, 0, 0)):
    return noise.FrameNoise(gain, "tukey", scale, lam, row, tuple(bias))


def test_sony_profile_holds_elds_numbers():
    assert (SONY.make, SONY.model, SONY.cfa) == ("Sony", "ILCE-7SM2", "RGGB")
    assert (SONY.black_level, SONY.white_level) == (512, 16383)
    assert SONY.k_min == pytest.approx(0.09391607086816033)
    assert SONY.k_max == pytest.approx(6.010628535562261)
    assert SONY.tukey.slope == pytest.approx(0.46210495986526035)
    assert len(SONY.tukey_lambdas) == len(SONY.color_bias) == 18
    assert SONY.xyz_to_camera[0] == pytest.approx((0.5838, -0.1430, -0.0246))
    assert "ELD" in SONY.source and "noise_g_SonyA7S2.yaml" in SONY.source
    # PMN's calibration: K 1.53 at ISO 1600 and 6.12 at ISO 6400.
    assert (SONY.iso(1.53), SONY.iso(6.12)) == (1600, 6400)
    assert SONY.gain(3200) == pytest.approx(32 * SONY.gain(100))
    assert "SonyA7S2" in noise.available_profiles()


def test_unknown_profile_names_the_file_and_the_known_ones():
    with pytest.raises(ConfigError, match=r"Nikon\.json.*no noise profile 'Nikon'.*SonyA7S2"):
        noise.load_profile("Nikon")


def test_invalid_profile_names_the_file_and_the_problem(tmp_path, monkeypatch):
    folder = tmp_path / "profiles"
    shutil.copytree(Path(noise.__file__).parent / "profiles", folder)
    data = json.loads((folder / "SonyA7S2.json").read_text())
    data["color_bias"]["table"][3] = [1.0, 2.0]
    (folder / "Bad.json").write_text(json.dumps(data))
    del data["row_noise"]
    (folder / "NoRow.json").write_text(json.dumps(data))
    monkeypatch.setattr(noise, "resources", SimpleNamespace(files=lambda package: tmp_path))
    noise.load_profile.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"Bad\.json: invalid noise profile.*rows of 4"):
            noise.load_profile("Bad")
        with pytest.raises(ConfigError, match=r"NoRow\.json: .*missing key 'row_noise'"):
            noise.load_profile("NoRow")
    finally:
        noise.load_profile.cache_clear()


@pytest.mark.parametrize("lam", [-0.14285714285714285, -0.0857, 0.0, 0.0571, 0.1286])
def test_tukey_lambda_sampler_has_the_formula_variance(lam):
    samples = noise.sample_tukey_lambda(np.random.default_rng(3), lam, 2.0, (400_000,))
    expected = 4.0 * noise.tukey_lambda_variance(lam)
    assert noise.tukey_lambda_variance(lam) == pytest.approx(stats.tukeylambda.var(lam), rel=1e-6)
    assert samples.mean() == pytest.approx(0.0, abs=0.02)
    assert samples.var() == pytest.approx(expected, rel=0.03)


def test_tukey_lambda_at_zero_is_logistic():
    assert noise.tukey_lambda_variance(0.0) == pytest.approx(math.pi**2 / 3)
    u = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(noise.tukey_lambda_ppf(u, 0.0), stats.logistic.ppf(u))
    np.testing.assert_allclose(noise.tukey_lambda_ppf(u, 0.1), stats.tukeylambda.ppf(u, 0.1))


@pytest.mark.parametrize(
    "gain, signal", [(SONY.k_min, 5.0), (0.5, 40.0), (1.53, 300.0), (SONY.k_max, 20.0)]
)
def test_flat_field_mean_and_variance_follow_the_formulas(gain, signal):
    frame_noise = noise.sample_frame_noise(SONY, gain, np.random.default_rng(11))
    frame = noise.apply_noise(np.full((400, 400), signal), frame_noise, np.random.default_rng(2),
                              BLACK, WHITE)  # fmt: skip
    values = frame.astype(np.float64) - BLACK
    channels = noise.cfa_channels("RGGB", values.shape)
    variance = noise.expected_variance(signal, frame_noise)
    for channel in range(4):
        pixels = values[channels == channel]
        # 4 standard errors: independent pixels, plus the 400 row offsets they share.
        error = 4 * math.sqrt(variance / pixels.size + frame_noise.row_sigma**2 / 400)
        assert pixels.mean() == pytest.approx(
            noise.expected_mean(signal, frame_noise, channel), abs=error
        )
        assert pixels.var() == pytest.approx(variance, rel=0.05)


def test_row_noise_is_one_offset_per_row():
    frame_noise = flat_noise(gain=0.2, scale=0.5, lam=0.0, row=3.0)
    frame = noise.apply_noise(np.full((2000, 500), 100.0), frame_noise, np.random.default_rng(4),
                              BLACK, WHITE)  # fmt: skip
    values = frame.astype(np.float64)
    pixel_var = 0.2 * 100 + 0.25 * noise.tukey_lambda_variance(0.0) + 1 / 12
    # Row means vary by the row offset plus the average of 500 independent pixels.
    assert values.mean(axis=1).var() == pytest.approx(9.0 + pixel_var / 500, rel=0.1)
    # Every column shares the same row offsets: column means differ by pixel noise alone.
    assert values.mean(axis=0).var() == pytest.approx(pixel_var / 2000, rel=0.2)


def test_colour_bias_lands_per_cfa_channel():
    # K bin 8 of ELD's table has B and G2 about 0.23 DN above R and G1.
    gain = SONY.k_min + 8.5 * (SONY.k_max - SONY.k_min) / 18
    bias = SONY.bias_at(gain)
    assert bias == pytest.approx([2.0718860626220703, 2.0092039108276367, 2.3060765266418457,
                                  2.2433784008026123])  # fmt: skip
    assert SONY.bias_at(SONY.k_min).tolist() == list(SONY.color_bias[0])
    assert SONY.bias_at(SONY.k_max).tolist() == list(SONY.color_bias[17])
    frame_noise = flat_noise(gain=0.05, scale=0.8, lam=-0.0857, row=0.2, bias=bias)
    frame = noise.apply_noise(np.full((600, 600), 20.0), frame_noise, np.random.default_rng(5),
                              BLACK, WHITE)  # fmt: skip
    values = frame.astype(np.float64) - BLACK - 20.0
    # RGGB: R (0, 0), G1 (0, 1), G2 (1, 0), B (1, 1), as LibRaw's raw_pattern numbers them.
    measured = [values[0::2, 0::2], values[0::2, 1::2], values[1::2, 1::2], values[1::2, 0::2]]
    for got, want in zip(measured, bias, strict=True):
        assert got.mean() == pytest.approx(want, abs=0.05)
    assert noise.cfa_channels("GRBG", (2, 2)).tolist() == [[1, 0], [2, 3]]


def test_quantisation_rounds_to_whole_dn_and_adds_a_twelfth():
    still = flat_noise(gain=1e-9, scale=1e-9, lam=0.0, row=0.0)
    frame = noise.apply_noise(np.array([[10.3, 10.7], [0.0, 99.5]]), still,
                              np.random.default_rng(0), BLACK, WHITE)  # fmt: skip
    assert frame.tolist() == [[522, 523], [512, 612]]
    # A uniform spread of signals: rounding adds its 1/12 DN**2 to the variance.
    signal = np.random.default_rng(1).uniform(50.0, 51.0, (500, 500))
    rounded = noise.apply_noise(signal, still, np.random.default_rng(2), BLACK, WHITE)
    error = rounded.astype(np.float64) - BLACK - signal
    assert error.var() == pytest.approx(1 / 12, rel=0.02)
    assert noise.expected_variance(0.0, still) == pytest.approx(1 / 12)


def test_frame_parameters_follow_the_profile_fits():
    rng = np.random.default_rng(8)
    gain = 1.53
    draws = [noise.sample_frame_noise(SONY, gain, rng) for _ in range(2000)]
    scales = np.log([d.read_scale for d in draws])
    assert scales.mean() == pytest.approx(math.log(SONY.tukey.median(gain)), abs=0.02)
    assert scales.std() == pytest.approx(SONY.tukey.sigma, rel=0.05)
    rows = np.log([d.row_sigma for d in draws])
    assert rows.mean() == pytest.approx(0.5275360468633209 * math.log(gain) - 0.5917, abs=0.02)
    # one shape per K bin: 1.53 lies in bin 4 (0-based), one of ELD's two logistic (0.0) bins
    assert SONY.k_bin(gain) == 4 and {d.read_lambda for d in draws} == {0.0}
    assert noise.sample_frame_noise(SONY, SONY.k_max, rng).read_lambda == SONY.tukey_lambdas[-1]
    gaussian = noise.sample_frame_noise(SONY, gain, rng, "gaussian")
    assert gaussian.read == "gaussian" and gaussian.read_lambda == 0.0
    assert noise.read_variance(gaussian) == pytest.approx(gaussian.read_scale**2)
    with pytest.raises(ValueError, match="read noise"):
        noise.sample_frame_noise(SONY, gain, rng, "poisson")  # type: ignore[arg-type]
    # K log-uniform over the profile's range.
    gains = np.log([noise.sample_gain(SONY, rng) for _ in range(4000)])
    assert gains.min() >= math.log(SONY.k_min) and gains.max() <= math.log(SONY.k_max)
    assert gains.mean() == pytest.approx(math.log(SONY.k_min * SONY.k_max) / 2, abs=0.05)


def test_gaussian_read_noise_has_its_sigma():
    frame_noise = noise.FrameNoise(0.3, "gaussian", 2.5, 0.0, 0.0, (0, 0, 0, 0))
    frame = noise.apply_noise(np.full((300, 300), 30.0), frame_noise, np.random.default_rng(6),
                              BLACK, WHITE)  # fmt: skip
    assert frame.astype(np.float64).var() == pytest.approx(0.3 * 30 + 6.25 + 1 / 12, rel=0.04)


def test_frames_are_deterministic_and_clipped():
    signal = np.linspace(-10, 20000, 64 * 64).reshape(64, 64)
    frame_noise = noise.sample_frame_noise(SONY, 2.0, np.random.default_rng(1))
    a = noise.apply_noise(signal, frame_noise, np.random.default_rng(7), BLACK, WHITE)
    b = noise.apply_noise(signal, frame_noise, np.random.default_rng(7), BLACK, WHITE)
    assert a.dtype == np.uint16 and np.array_equal(a, b)
    assert a.max() == WHITE and a.min() >= 0


def test_tukey_shapes_are_elds_own_release_file():
    """ELD's release file has 18 shapes, one per K bin like the colour bias; LED's YAML copy
    dropped the two 0.0 entries (5th and 6th), shifting every later bin by two."""
    led = [
        0.11428571428571421,
        0.12857142857142856,
        0.05714285714285716,
        0.042857142857142816,
        -0.04285714285714287,
        -0.05714285714285716,
        -0.08571428571428574,
        -0.08571428571428574,
        -0.08571428571428574,
        -0.08571428571428574,
        -0.11428571428571432,
        -0.11428571428571432,
        -0.14285714285714285,
        -0.12857142857142856,
        -0.14285714285714285,
        -0.14285714285714285,
    ]
    assert list(SONY.tukey_lambdas) == led[:4] + [0.0, 0.0] + led[4:]
    # the release file itself, where the checkout sits beside the project's shared references
    reference = Path(__file__).resolve().parents[2] / "shared/reference/eld/SonyA7S2_params.npy"
    if reference.exists():
        eld = np.load(reference, allow_pickle=True).item()
        assert list(SONY.tukey_lambdas) == [float(v) for v in eld["G_shape"]]
        assert np.asarray(SONY.color_bias) == pytest.approx(np.asarray(eld["color_bias"]))


def test_a_profile_whose_tables_disagree_on_bins_is_refused(tmp_path):
    data = json.loads((Path(noise.__file__).parent / "profiles/SonyA7S2.json").read_text())
    data["read_noise"]["tukey"]["lambda"] = data["read_noise"]["tukey"]["lambda"][:16]
    with pytest.raises(ValueError, match="16 values, one per K bin like color_bias.table's 18"):
        noise._parse_profile("cut", data)
