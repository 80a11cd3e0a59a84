import json
from pathlib import Path

import numpy as np
import pytest
import rawpy

from lowlight import noise
from lowlight.dng import DngMeta, write_dng
from lowlight.xtrans import (
    XTRANS_ORDER,
    align_window,
    aligned_starts,
    pack_xtrans,
    unpack_xtrans,
    xtrans_pattern,
)

FUJI = noise.load_profile("FujiXT2")
XT2 = xtrans_pattern(FUJI.cfa)
SONY = noise.load_profile("SonyA7S2")


def shifted(dy: int, dx: int):
    """The X-T2 pattern as a file whose visible area starts (dy, dx) into it reports it."""
    return xtrans_pattern(np.roll(XT2.colors, (-dy, -dx), axis=(0, 1)), "RGB")


PHASES = [(dy, dx) for dy in range(6) for dx in range(6)]


def test_pack_unpack_round_trip_at_every_phase_crops_the_end_only():
    mosaic = np.random.default_rng(0).integers(0, 2**16, (6 * 5 + 4, 6 * 7 + 5), dtype=np.uint16)
    for dy, dx in PHASES:
        pattern = shifted(dy, dx)
        packed = pack_xtrans(mosaic, pattern)
        assert packed.shape == (10, 14, 9) and packed.dtype == np.uint16
        np.testing.assert_array_equal(unpack_xtrans(packed, pattern), mosaic[:30, :42])


def test_channels_mean_the_same_colours_at_every_phase():
    level = {"R": 0.25, "G": 0.5, "B": 1.0}
    expected = np.array([level[c] for c in XTRANS_ORDER], np.float32)
    for dy, dx in PHASES:
        pattern = shifted(dy, dx)
        colours = np.array([level[c] for c in pattern.letters], np.float32).reshape(6, 6)
        packed = pack_xtrans(np.tile(colours, (3, 4)), pattern)
        np.testing.assert_array_equal(packed, np.broadcast_to(expected, (6, 8, 9)))


def test_x_t2_phase_packs_sids_pixels_each_in_its_own_cell():
    # SID's train_Fuji.py pack_raw at its X-T2 files' phase, its channels in the order
    # 0 (R), 3 (R), 1 (G), 5..8 (G), 2 (B), 4 (B): the (row, col) in the 6x6 block of each
    # packed pixel (0, 0), (0, 1), (1, 0), (1, 1).
    sid = [[(0, 0), (0, 4), (3, 1), (3, 3)], [(1, 2), (2, 5), (5, 2), (4, 5)],
           [(0, 2), (0, 5), (3, 2), (3, 5)], [(1, 0), (1, 3), (4, 0), (4, 3)],
           [(1, 1), (1, 4), (4, 1), (4, 4)], [(2, 0), (2, 3), (5, 0), (5, 3)],
           [(2, 1), (2, 4), (5, 1), (5, 4)], [(0, 1), (0, 3), (3, 0), (3, 4)],
           [(2, 2), (1, 5), (4, 2), (5, 5)]]  # fmt: skip
    index = np.arange(36).reshape(6, 6)
    packed = pack_xtrans(index, XT2)
    for channel, positions in enumerate(sid):
        assert [int(index[p]) for p in positions] == packed[..., channel].ravel().tolist()
    # At the phases where every 3x3 cell holds 2 R, 5 G, 2 B, no pixel leaves its cell.
    cell_y, cell_x = np.indices((2, 2))
    for dy, dx in [(0, 2), (1, 0), (1, 2), (2, 1)]:
        rows, cols = np.divmod(pack_xtrans(index, shifted(dy, dx)), 6)
        assert (rows // 3 == cell_y[..., None]).all() and (cols // 3 == cell_x[..., None]).all()


def test_pattern_comes_from_libraw_indices_and_refuses_other_sensors():
    rgbg = np.where(XT2.colors == 1, np.tile([[1, 3], [3, 1]], (3, 3)), XT2.colors)
    assert xtrans_pattern(np.tile(rgbg, (4, 5))[:22, :27], b"RGBG") == XT2  # LibRaw's 2nd green
    bayer = np.array([[0, 1], [3, 2]])
    with pytest.raises(ValueError, match=r"not a 6x6 X-Trans pattern: .*shape \(2, 2\)"):
        xtrans_pattern(bayer, b"RGBG")
    with pytest.raises(ValueError, match="9 R, 18 G, 9 B .*X-Trans has 8, 20, 8"):
        xtrans_pattern(np.tile(bayer, (6, 6)), b"RGBG")
    broken = np.tile(XT2.colors, (2, 2))
    broken[7, 7] = 2
    with pytest.raises(ValueError, match="does not repeat every 6 pixels"):
        xtrans_pattern(broken, b"RGBG")
    with pytest.raises(ValueError, match="row 0 lacks a colour"):
        xtrans_pattern("B" * 8 + "G" * 20 + "R" * 8)
    with pytest.raises(ValueError, match="35 colours"):
        xtrans_pattern(FUJI.cfa[:35])
    with pytest.raises(ValueError, match=r"\(even, even, 9\)"):
        unpack_xtrans(np.zeros((3, 4, 9)), XT2)


def test_windows_on_the_six_by_six_period_keep_the_pattern():
    assert align_window(5, 8) == (4, 8)
    assert aligned_starts(20, 8, 6) == [0, 6, 12]  # the last window ends at the edge
    assert aligned_starts(21, 8, 6) == [0, 6, 12]  # an odd packed length: its last pixel is left
    with pytest.raises(ValueError, match="even packed size and stride"):
        aligned_starts(20, 8, 3)
    mosaic = np.random.default_rng(1).random((48, 60)).astype(np.float32)
    pattern = shifted(2, 5)
    packed = pack_xtrans(mosaic, pattern)
    for y, x in [align_window(y, x) for y in aligned_starts(16, 6, 4) for x in (3, 9)]:
        window = mosaic[3 * y : 3 * y + 18, 3 * x : 3 * x + 18]
        np.testing.assert_array_equal(pack_xtrans(window, pattern), packed[y : y + 6, x : x + 6])


@pytest.mark.parametrize("phase", [(0, 0), (1, 2)])
def test_dng_of_a_six_by_six_layout_reads_back_as_x_trans(tmp_path, phase):
    pattern = shifted(*phase)
    mosaic = np.random.default_rng(2).integers(1024, 16384, (26, 40), dtype=np.uint16)
    meta = DngMeta(FUJI.black_level, FUJI.white_level, (0.5, 1.0, 0.7), 0.01, 3200,
                   make=FUJI.make, model=FUJI.model, cfa=pattern.letters,
                   color_matrix=tuple(np.ravel(FUJI.xyz_to_camera)))  # fmt: skip
    with rawpy.imread(str(write_dng(tmp_path / "DSCF0001.dng", mosaic, meta))) as raw:
        assert raw.raw_pattern.shape == (6, 6)  # LibRaw's filters == 9: X-Trans
        np.testing.assert_array_equal(raw.raw_pattern, pattern.colors)
        np.testing.assert_array_equal(raw.raw_image_visible, mosaic)
        assert raw.color_desc == b"RGBG" and raw.num_colors == 3
        assert list(raw.black_level_per_channel) == [1024] * 4 and raw.white_level == 16383
        # LibRaw's own table entry for the camera the DNG names is the profile's matrix.
        np.testing.assert_allclose(raw.rgb_xyz_matrix[:3], FUJI.xyz_to_camera, atol=1e-4)
        read = xtrans_pattern(raw.raw_colors_visible, raw.color_desc)
        assert read == pattern
        np.testing.assert_array_equal(pack_xtrans(raw.raw_image_visible, read),
                                      pack_xtrans(mosaic, pattern))  # fmt: skip


def test_x_t2_profile_is_the_a7s2_scaled_to_the_x_t2_levels_and_says_so():
    assert (FUJI.make, FUJI.model, FUJI.black_level, FUJI.white_level) == (
        "Fujifilm", "X-T2", 1024, 16383)  # fmt: skip
    assert FUJI.cfa.startswith("RBGBRG") and XT2.letters == FUJI.cfa
    # LibRaw's adobe_coeff 'Fujifilm X-T2', x 1/10000.
    table = [11434, -4948, -1210, -3746, 12042, 1903, -666, 1479, 5235]
    np.testing.assert_allclose(np.ravel(FUJI.xyz_to_camera), np.array(table) / 10000)
    assert "NOT CALIBRATED" in FUJI.source and "SonyA7S2" in FUJI.source
    s = (16383 - 1024) / (16383 - 512)
    assert (FUJI.k_min, FUJI.k_max) == pytest.approx((s * SONY.k_min, s * SONY.k_max))
    assert FUJI.gain(1600) == pytest.approx(s * SONY.gain(1600))
    for gain in (0.1, 1.0, 5.0):
        for fit in ("tukey", "gaussian", "row"):
            assert getattr(FUJI, fit).median(s * gain) == pytest.approx(
                s * getattr(SONY, fit).median(gain))  # fmt: skip
    np.testing.assert_allclose(FUJI.color_bias, s * np.array(SONY.color_bias))
    assert FUJI.tukey_lambdas == SONY.tukey_lambdas
    assert noise.profile_of("Fujifilm X-T2") == FUJI


def test_a_real_raf_s_upper_case_make_finds_the_profile():
    """Real RAFs say make "FUJIFILM" (the profile: "Fujifilm"): the lookup ignores case."""
    for camera in ("FUJIFILM X-T2", "fujifilm x-t2 ", "X-T2", "SONY ILCE-7SM2"):
        assert noise.profile_of(camera) is not None, camera
    assert noise.profile_of("FUJIFILM X-T2") == FUJI
    assert noise.profile_of("FUJIFILM X-T3") is None
    assert noise.dark_offset("FUJIFILM X-T2", 1600) == pytest.approx(
        noise.dark_offset("Fujifilm X-T2", 1600))  # fmt: skip


def test_noise_channels_follow_the_x_trans_layout():
    channels = noise.cfa_channels(FUJI.cfa, (8, 13))
    np.testing.assert_array_equal(channels, np.tile(XT2.colors, (2, 3))[:8, :13])
    frame_noise = noise.sample_frame_noise(FUJI, 1.0, np.random.default_rng(3))
    frame = noise.apply_noise(np.zeros((12, 12)), frame_noise, np.random.default_rng(4),
                              FUJI.black_level, FUJI.white_level, FUJI.cfa)  # fmt: skip
    assert frame.shape == (12, 12) and frame.dtype == np.uint16


def test_a_profile_whose_layout_is_not_x_trans_is_refused():
    data = json.loads((Path(noise.__file__).parent / "profiles/FujiXT2.json").read_text())
    data["camera"]["cfa"] = "RGGB" * 9
    with pytest.raises(ValueError, match="camera.cfa must be one of RGGB.*9 R, 18 G, 9 B"):
        noise._parse_profile("bayer36", data)


def test_libraw_demosaics_x_trans_from_512_pixels_up(tmp_path):
    # LibRaw's xtrans_interpolate works in 512x512 tiles and refuses a smaller image.
    meta = DngMeta(1024, 16383, (0.5, 1.0, 0.7), 0.01, 3200, make=FUJI.make, model=FUJI.model,
                   cfa=FUJI.cfa)  # fmt: skip
    for size, renders in (((516, 516), True), ((510, 516), False)):
        mosaic = np.full(size, 4000, np.uint16)
        with rawpy.imread(str(write_dng(tmp_path / f"{size[0]}.dng", mosaic, meta))) as raw:
            if renders:
                assert raw.postprocess(use_camera_wb=True).shape == (*size, 3)
            else:
                with pytest.raises(rawpy.LibRawIOError):
                    raw.postprocess(use_camera_wb=True)
