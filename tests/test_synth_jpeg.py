"""synth.output jpeg: dark JPEGs as a camera makes them, and the chain synth -> convert -> pair
-> patch on them (issue 24)."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lowlight import imageio, isp, sid, stages, synth
from lowlight.config import Params, SynthConfig, override

# 20 scenes: 13 train, 5 test, 2 validation, so each split cycles through several darkness levels
JPEG = {"scenes": 20, "size": "32x48", "frames": 1, "output": "jpeg"}
DARKNESS = SynthConfig().darkness


@pytest.fixture(scope="module")
def jpeg_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jpeg")
    stages.synth.run(override(Params().synth, "synth", **JPEG), root, seed=0)
    return root


def list_entries(root: Path) -> list[tuple[str, list[str]]]:
    """(split, fields) of every line of the three list files."""
    lists = {split: root / sid.LIST_FILE.format(split=split) for split in sid.SPLITS}
    return [(split, line.split()) for split, path in lists.items()
            for line in path.read_text().splitlines()]  # fmt: skip


def darkness_of(name: str) -> float:
    return synth.JPEG_LONG_EXPOSURE / sid.parse_name(name).exposure


def test_jpeg_output_writes_sid_named_jpegs_and_pngs(jpeg_set: Path):
    shorts = sorted(p.name for p in (jpeg_set / "Sony" / "short").iterdir())
    longs = sorted(p.name for p in (jpeg_set / "Sony" / "long").iterdir())
    assert len(shorts) == len(longs) == 20
    assert all(name.endswith(".jpg") and sid.parse_name(name) for name in shorts)
    assert longs[0] == "00001_00_10s.png" and all(name.endswith("_00_10s.png") for name in longs)
    assert "00001_00_2.5s.jpg" in shorts and "00006_00_0.1562s.jpg" in shorts  # 1/4, 1/64
    dark = imageio.read_image(jpeg_set / "Sony" / "short" / shorts[0])
    bright = imageio.read_image(jpeg_set / "Sony" / "long" / longs[0])
    assert (dark.dtype, bright.dtype, dark.shape, bright.shape) == (
        np.uint8, np.uint16, (32, 48, 3), (32, 48, 3))  # fmt: skip
    assert (jpeg_set / "Sony" / "short" / shorts[0]).read_bytes()[:2] == b"\xff\xd8"  # JPEG
    entries = list_entries(jpeg_set)
    assert len(entries) == 20
    split, (short, long, iso, fnumber) = entries[0]
    assert (split, short, long) == ("train", "./Sony/short/00001_00_2.5s.jpg",
                                    "./Sony/long/00001_00_10s.png")  # fmt: skip
    assert iso.startswith("ISO") and fnumber.startswith("F")


def test_every_split_sees_several_darkness_levels(jpeg_set: Path):
    levels: dict[str, set[float]] = {}
    for split, (short, *_) in list_entries(jpeg_set):
        levels.setdefault(split, set()).add(round(darkness_of(short)))
    assert levels["train"] == set(DARKNESS)
    assert len(levels["test"]) == 5 and len(levels["val"]) == 2


def test_long_exposures_are_metered(jpeg_set: Path):
    """Every target's mean linear level is synth.metering, less what its highlights clip."""
    levels = [isp.level(imageio.read_image(path) / 65535.0)
              for path in (jpeg_set / "Sony" / "long").iterdir()]  # fmt: skip
    assert len(levels) == 20 and all(0.12 < v <= SynthConfig().metering + 1e-3 for v in levels)
    assert np.median(levels) > 0.16, levels


def test_dark_jpeg_holds_the_targets_light_over_its_darkness(jpeg_set: Path):
    """Once the camera's curves are undone, a dark JPEG's mean is its target's over the
    darkness (noise and 8 bits aside: scenes whose dark mean is not crushed to a few levels)."""
    checked = 0
    for path in sorted((jpeg_set / "Sony" / "short").iterdir()):
        name = sid.parse_name(path.name)
        target = imageio.read_image(jpeg_set / "Sony" / "long" / f"{name.scene_id}_00_10s.png")
        dark = imageio.read_image(path)
        expected = isp.to_linear(target / 65535.0).mean() / darkness_of(path.name)
        if expected >= 0.005:
            assert isp.to_linear(dark / 255.0).mean() == pytest.approx(expected, rel=0.1), path
            checked += 1
    assert checked >= 12


def test_chain_synth_convert_pair_patch_with_ratio_the_darkness(jpeg_set: Path, tmp_path: Path):
    p = Params()
    convert = override(p.convert, "convert", amplify=False, format="png16")
    summary = stages.convert.run(convert, jpeg_set / "Sony", tmp_path / "conv")
    assert (summary["converted"], summary["failed"]) == (40, 0)
    rows = {r["source"]: r for r in pq.read_table(tmp_path / "conv/converted.parquet").to_pylist()}
    short = rows["short/00001_00_2.5s.jpg"]
    assert (short["camera"], short["gain"], short["exposure"]) == ("image", 1.0, 2.5)
    assert (short["width"], short["height"], short["output"]) == (48, 32, "short/00001_00_2.5s.png")
    # the 16-bit target passes through unchanged; the 8-bit JPEG is scaled to 16 bits
    target = jpeg_set / "Sony/long/00001_00_10s.png"
    converted = tmp_path / "conv" / rows["long/00001_00_10s.png"]["output"]
    assert np.array_equal(imageio.read_image(converted), imageio.read_image(target))
    dark = imageio.read_image(tmp_path / "conv" / short["output"])
    original = imageio.read_image(jpeg_set / "Sony" / "short" / "00001_00_2.5s.jpg")
    assert np.array_equal(dark, original.astype(np.uint16) * 257)

    found = stages.pair.run(p.pair, tmp_path / "conv", tmp_path / "pairs.parquet")
    assert found["pairs"] == 20 and found["lists_used"]
    for row in pq.read_table(tmp_path / "pairs.parquet").to_pylist():
        level = min(DARKNESS, key=lambda d: abs(d - row["ratio"]))
        assert row["ratio"] == pytest.approx(level, rel=1e-3)  # 0.1562 s names 1/64.02
        assert row["bright"] == f"long/{row['scene_id']}_00_10s.png"

    patch = override(p.patch, "patch", size=16, stride=16)
    cut = stages.patch.run(patch, tmp_path / "pairs.parquet", tmp_path / "patches", seed=0,
                           mode="rgb")  # fmt: skip
    assert cut["train_patches"] == 13 * 6 and cut["val_patches"] == 2 * 6


def test_convert_exposes_dark_jpegs_as_metered_and_keeps_the_targets(jpeg_set: Path, tmp_path):
    """convert's auto gain reads a JPEG's darkness from its pixels (never from its name): a
    mildly and a very dark frame both come out at the targets' metered level."""
    convert = override(Params().convert, "convert", format="png16")
    summary = stages.convert.run(convert, jpeg_set / "Sony", tmp_path / "conv")
    assert (summary["converted"], summary["failed"]) == (40, 0)
    rows = {r["source"]: r for r in pq.read_table(tmp_path / "conv/converted.parquet").to_pylist()}
    for source, row in rows.items():
        converted = imageio.read_image(tmp_path / "conv" / row["output"]) / 65535.0
        if source.startswith("long/"):  # the long exposure, as the camera metered it
            assert row["gain"] == 1.0
            assert 0.12 < isp.level(converted) <= SynthConfig().metering + 1e-3, source
            continue
        darkness = darkness_of(source)
        if darkness <= 16:  # 1/32 and 1/64 are crushed to a few 8-bit levels at 32x48
            assert row["gain"] == pytest.approx(darkness, rel=0.3), source
        assert isp.level(converted) == pytest.approx(SynthConfig().metering, rel=0.35), source


def test_a_bad_image_is_a_failed_row(tmp_path: Path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "00001_00_1s.jpg").write_bytes(b"not a JPEG")
    bright = np.full((4, 6, 3), 1000, np.uint16)
    imageio.write_image(tmp_path / "raw" / "00001_00_10s.PNG", bright, "png16")  # any case
    convert = override(Params().convert, "convert", amplify=False, format="jpeg", half_size=True)
    summary = stages.convert.run(convert, tmp_path / "raw", tmp_path / "conv")
    assert summary["failed_files"] == ["00001_00_1s.jpg"]
    rows = {r["source"]: r for r in pq.read_table(tmp_path / "conv/converted.parquet").to_pylist()}
    assert "not a readable JPEG/PNG image" in rows["00001_00_1s.jpg"]["error"]
    good = rows["00001_00_10s.PNG"]
    assert (good["status"], good["width"], good["height"]) == ("ok", 3, 2)  # half size
