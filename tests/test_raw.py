import numpy as np
import pytest
import rawpy

from lowlight.dng import DngMeta, write_dng
from lowlight.errors import RawDecodeError
from lowlight.raw import amplify_mosaic, decode, estimate_gain, linear_level


def test_amplify_scales_signal_above_black_and_clips_at_white():
    mosaic = np.array([[512, 612], [2512, 16000]], dtype=np.uint16)
    out = amplify_mosaic(mosaic, np.float32(512), 16383, 10.0)
    assert out.dtype == np.uint16
    assert out.tolist() == [[512, 1512], [16383, 16383]]


def test_amplify_uses_per_pixel_black_levels():
    mosaic = np.array([[600, 700]], dtype=np.uint16)
    black = np.array([[500, 600]], dtype=np.float32)
    assert amplify_mosaic(mosaic, black, 4095, 3.0).tolist() == [[800, 900]]


def test_auto_gain_targets_a_brightness():
    mosaic = np.full((4, 4), 512 + 159, dtype=np.uint16)  # 1 % of the range
    level = linear_level(mosaic, np.float32(512), 16383)
    assert level == pytest.approx(0.01, rel=0.01)
    assert estimate_gain(level, 0.18, 300) == pytest.approx(18, rel=0.01)
    assert estimate_gain(1e-9, 0.18, 300) == 300
    assert estimate_gain(0.5, 0.18, 300) == 1.0


def write_grey(path, level_dn, black=512, white=16383):
    bayer = np.full((32, 48), black + level_dn, dtype=np.uint16)
    write_dng(path, bayer, DngMeta(black, white, (1.0, 1.0, 1.0), 0.1, 800))
    return path


def test_dng_round_trip_keeps_levels_and_metadata(tmp_path):
    path = write_grey(tmp_path / "x.dng", 1000, black=256, white=4095)
    with rawpy.imread(str(path)) as raw:
        assert raw.black_level_per_channel == [256] * 4
        assert raw.white_level == 4095
        assert (raw.raw_image == 1256).all()
    _, meta, _ = decode(path)
    assert (meta.exposure, meta.iso, meta.camera) == (0.1, 800, "lowlight synthetic RGGB")


def test_decode_amplifies_in_linear_space(tmp_path):
    path = write_grey(tmp_path / "grey.dng", 100)
    dark, _, _ = decode(path, 1.0, bits=16, curve="srgb")
    bright, _, gain = decode(path, 10.0, bits=16, curve="srgb")
    assert gain == 10.0
    # The sRGB curve is not linear: compare after undoing it.
    from lowlight.colour import srgb_to_linear

    ratio = srgb_to_linear(bright.mean() / 65535) / srgb_to_linear(dark.mean() / 65535)
    assert ratio == pytest.approx(10.0, rel=0.03)


def test_levels_come_from_the_file_not_sony_constants(tmp_path):
    # A 12-bit camera with black 256: the same relative signal must give the same image.
    sony = decode(write_grey(tmp_path / "a.dng", 1587, 512, 16383), 1.0)[0]
    other = decode(write_grey(tmp_path / "b.dng", 384, 256, 4095), 1.0)[0]
    assert abs(float(sony.mean()) - float(other.mean())) < 1.0


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.ARW"
    bad.write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(RawDecodeError, match="broken.ARW"):
        decode(bad)


def test_lookup_table_path_equals_the_per_pixel_path():
    mosaic = np.random.default_rng(0).integers(0, 16384, (64, 96)).astype(np.uint16)
    for gain in (1.5, 100.0, 300.0):
        fast = amplify_mosaic(mosaic, np.float32(512), 16383, gain)
        slow = amplify_mosaic(mosaic, np.full(mosaic.shape, 512, np.float32), 16383, gain)
        assert np.array_equal(fast, slow)


def test_a_profiled_camera_loses_its_calibrated_dark_offset(tmp_path, monkeypatch):
    """A Sony a7S II frame at ISO 6400 sits ~4 DN above its black level (ELD's colour bias of
    that K bin): amplified 300x, that would be 8 % of the range. decode and decode_packed take
    it off the dark frames; an unprofiled camera's and the unamplified frames are untouched."""
    from lowlight import noise, synth
    from lowlight.raw import decode_packed

    sony = noise.load_profile("SonyA7S2")
    iso = 6400
    offset = noise.dark_offset("Sony ILCE-7SM2", iso)
    assert offset.tolist() == pytest.approx(sony.bias_at(sony.gain(iso)).tolist())
    assert offset.min() > 3.5
    assert noise.dark_offset("Sony ILCE-7SM2", None) is None
    assert noise.dark_offset("Canon EOS 5D", iso) is None

    signal = 40.0  # DN above the true dark level, every pixel
    mosaic = (sony.black_level + signal + offset[noise.cfa_channels(sony.cfa, (32, 48))]).round()
    meta = synth.frame_meta(sony, np.ones(3), 0.1, iso)
    sony_file = write_dng(tmp_path / "sony.dng", mosaic.astype(np.uint16), meta)
    plain = DngMeta(sony.black_level, sony.white_level, (1.0, 1.0, 1.0), 0.1, iso)
    other = write_dng(tmp_path / "other.dng", mosaic.astype(np.uint16), plain)
    span = sony.white_level - sony.black_level
    packed, *_ = decode_packed(sony_file, 300.0)
    assert packed.mean(axis=(0, 1)) == pytest.approx(
        [signal * 300 / span] * 4,
        abs=0.5 * 300 / span,  # the mosaic's rounding to whole DN
    )
    untouched, *_ = decode_packed(other, 300.0)
    assert untouched.mean() == pytest.approx((signal + offset.mean()) * 300 / span, rel=0.02)
    unamplified, *_ = decode_packed(sony_file, 1.0)
    assert unamplified.mean() == pytest.approx((signal + offset.mean()) / span, rel=0.02)
    # the RGB conversion subtracts the same offset before its gain: as a frame without it
    rgb, *_ = decode(sony_file, 100.0, bits=16)
    clean = (np.full((32, 48), sony.black_level + signal)).astype(np.uint16)
    monkeypatch.setattr("lowlight.raw.dark_offset", lambda camera, iso: None)
    rgb_clean, *_ = decode(write_dng(tmp_path / "clean.dng", clean, meta), 100.0, bits=16)
    assert np.abs(rgb.astype(float) - rgb_clean).mean() < 0.005 * rgb_clean.mean()
    rgb_offset, *_ = decode(sony_file, 100.0, bits=16)
    assert rgb_offset.mean() > 1.05 * rgb_clean.mean()
