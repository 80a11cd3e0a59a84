"""The stages through the `lowlight` command, on tiny synthetic data in tmp dirs."""

import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq

from lowlight.conversion import MANIFEST, MANIFEST_SCHEMA
from lowlight.imageio import read_image
from lowlight.pairs import PAIRS_SCHEMA


def manifest(folder):
    return pq.read_table(folder / MANIFEST).to_pylist()


def test_help_lists_stages_in_pipeline_order():
    result = subprocess.run(
        [sys.executable, "-m", "lowlight.cli", "--help"], capture_output=True, text=True, check=True
    )
    positions = [result.stdout.index(f" {name} ") for name in ("synth", "convert", "pair")]
    assert positions == sorted(positions)


def test_synth_writes_sid_layout(cli, tmp_path):
    result = cli("synth", tmp_path / "d", "--scenes", 3, "--size", "32x48", "--frames", 3)
    assert result.exit_code == 0, result.output
    shorts = sorted(p.name for p in (tmp_path / "d/Sony/short").iterdir())
    longs = sorted(p.name for p in (tmp_path / "d/Sony/long").iterdir())
    assert len(shorts) == 9 and len(longs) == 3
    assert longs == ["00001_00_10s.dng", "10001_00_10s.dng", "20001_00_10s.dng"]
    for split in ("train", "test", "val"):
        lines = (tmp_path / f"d/Sony_{split}_list.txt").read_text().splitlines()
        assert len(lines) == 3 and lines[0].startswith("./Sony/short/")


def test_synth_same_seed_same_bytes(cli, tmp_path):
    for name in ("a", "b"):
        cli("synth", tmp_path / name, "--scenes", 3, "--size", "32x48", "--seed", 5)
    for path in (tmp_path / "a").rglob("*.dng"):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_convert_then_pair(cli, sony, tmp_path):
    out = tmp_path / "conv"
    result = cli("convert", sony / "Sony", out)
    assert result.exit_code == 0, result.output
    rows = manifest(out)
    assert len(rows) == 9 and {r["status"] for r in rows} == {"ok"}
    assert pq.read_schema(out / MANIFEST).remove_metadata() == MANIFEST_SCHEMA
    longs = [r for r in rows if r["source"].startswith("long/")]
    assert {r["gain"] for r in longs} == {1.0}
    assert all(len(r["source_sha256"]) == 64 for r in rows)
    # short frames are amplified by long / short exposure (capped at 300)
    shorts = {r["source"]: r["gain"] for r in rows if r["source"].startswith("short/")}
    assert shorts["short/00001_00_0.1s.dng"] == 100.0

    result = cli("pair", out, tmp_path / "pairs.parquet", "--select", "all")
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "pairs.parquet")
    assert table.schema.remove_metadata() == PAIRS_SCHEMA
    assert table.schema.metadata[b"converted_dir"] == str(out).encode()
    pairs = table.to_pylist()
    assert len(pairs) == 6 and {p["split"] for p in pairs} == {"train", "test", "val"}
    for p in pairs:
        assert (out / p["dark"]).exists() and (out / p["bright"]).exists()
        assert 1 <= p["ratio"] <= 300


def test_amplified_short_matches_long_brightness(cli, sony, tmp_path):
    cli("convert", sony / "Sony", tmp_path / "amp")
    cli("convert", sony / "Sony", tmp_path / "plain", "--no-amplify")
    long = read_image(tmp_path / "amp/long/00001_00_10s.jpg").mean()
    amplified = read_image(tmp_path / "amp/short/00001_00_0.1s.jpg").mean()
    plain = read_image(tmp_path / "plain/short/00001_00_0.1s.jpg").mean()
    assert plain < 0.2 * long  # the seed's dark JPEG
    # Same order as the long exposure; read noise clipped at black lifts very dark scenes (this
    # one's long exposure averages 7/255), more so once the dark offset is taken off.
    assert 0.7 * long < amplified < 4 * long


def test_corrupt_file_is_reported_and_the_batch_goes_on(cli, sony, tmp_path):
    (sony / "Sony/short/00001_05_0.1s.dng").write_bytes(b"\x00garbage" * 100)
    result = cli("convert", sony / "Sony", tmp_path / "conv")
    assert result.exit_code == 0, result.output
    rows = {r["source"]: r for r in manifest(tmp_path / "conv")}
    bad = rows["short/00001_05_0.1s.dng"]
    assert bad["status"] == "failed" and "00001_05_0.1s.dng" in bad["error"]
    assert bad["output"] is None
    assert sum(r["status"] == "ok" for r in rows.values()) == 9
    assert "00001_05_0.1s.dng" in result.output  # warned and summarised
    # pairing leaves the failed file out and counts it
    result = cli("pair", tmp_path / "conv", tmp_path / "pairs.parquet")
    assert result.exit_code == 0 and "failed_conversions │ 1" in result.output


def test_every_file_failing_is_an_error(cli, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/a.ARW").write_bytes(b"nope")
    result = cli("convert", tmp_path / "raw", tmp_path / "conv")
    assert result.exit_code == 1
    assert "every file failed" in result.output and "Traceback" not in result.output


def test_empty_folder_is_one_clear_error(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("convert", tmp_path / "empty", tmp_path / "conv")
    assert result.exit_code == 1
    assert "no RAW files" in result.output and "Traceback" not in result.output
    result = cli("convert", tmp_path / "missing", tmp_path / "conv")
    assert result.exit_code == 1 and "RAW folder not found" in result.output


def test_folder_without_long_exposures(cli, sony, tmp_path, caplog):
    shutil.rmtree(sony / "Sony/long")
    result = cli("convert", sony / "Sony", tmp_path / "conv")
    assert result.exit_code == 0, result.output
    assert "no long exposure for scene(s) 00001, 10001, 20001" in caplog.text
    assert {r["gain"] for r in manifest(tmp_path / "conv")} == {1.0}
    result = cli("pair", tmp_path / "conv", tmp_path / "pairs.parquet")
    assert result.exit_code == 1 and "no (short, long) pairs" in result.output
    assert not (tmp_path / "pairs.parquet").exists()


def test_non_sid_name_uses_exif_and_ratio(cli, sony, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    # the test scene (a daylight photo): the training one is the night sky, darker than x300 lifts
    shutil.copy(sony / "Sony/short/10001_00_0.1s.dng", mine / "DSC01234.dng")
    result = cli("convert", mine, tmp_path / "fixed", "--ratio", "40")
    assert result.exit_code == 0, result.output
    (row,) = manifest(tmp_path / "fixed")
    assert (row["output"], row["gain"], row["exposure"], row["iso"]) == (
        "DSC01234.jpg",
        40.0,
        0.1,
        row["iso"],
    )
    assert row["iso"] > 0 and row["camera"] == "Sony ILCE-7SM2"

    result = cli("convert", mine, tmp_path / "auto", "--ratio", "auto")
    (row,) = manifest(tmp_path / "auto")
    assert 1.0 < row["gain"] <= 300.0
    mean = read_image(tmp_path / "auto/DSC01234.jpg").mean()
    assert 60 < mean < 200  # auto brings it near mid-grey

    result = cli("convert", mine, tmp_path / "x", "--ratio", "bright")
    assert result.exit_code == 1 and "--ratio" in result.output


def test_png16_keeps_16_bits(cli, sony, tmp_path):
    cli("convert", sony / "Sony", tmp_path / "png", "--format", "png16")
    image = read_image(tmp_path / "png/long/00001_00_10s.png")
    assert image.dtype == np.uint16 and image.shape == (32, 48, 3)
    assert image.max() > 255
    jpeg = read_image(tmp_path / "png/../png/long/00001_00_10s.png")
    assert jpeg.shape == image.shape


def test_two_workers_give_identical_bytes(cli, sony, tmp_path):
    cli("convert", sony / "Sony", tmp_path / "w1", "--workers", 1)
    cli("convert", sony / "Sony", tmp_path / "w2", "--workers", 2)
    files = sorted(
        p.relative_to(tmp_path / "w1") for p in (tmp_path / "w1").rglob("*") if p.is_file()
    )
    assert len(files) == 11  # 9 images, the manifest and the output marker
    for rel in files:
        assert (tmp_path / "w1" / rel).read_bytes() == (tmp_path / "w2" / rel).read_bytes(), rel


def test_shards_cover_every_file_exactly_once(cli, sony, tmp_path):
    out = tmp_path / "conv"
    for i in range(3):
        assert cli("convert", sony / "Sony", out, "--shard", f"{i}/3").exit_code == 0
    parts = sorted(out.glob("converted-part-*"))
    sources = [r["source"] for p in parts for r in pq.read_table(p).to_pylist()]
    assert len(parts) == 3 and len(sources) == 9 == len(set(sources))
    # the pair stage reads the parts directly; --merge combines them into one manifest
    assert cli("pair", out, tmp_path / "p1.parquet").exit_code == 0
    result = cli("convert", "--merge", out)
    assert result.exit_code == 0, result.output
    assert sorted(r["source"] for r in manifest(out)) == sorted(sources)
    # the same shard of full conversion equals the sharded output
    whole = tmp_path / "whole"
    cli("convert", sony / "Sony", whole)
    for row in manifest(whole):
        assert (whole / row["output"]).read_bytes() == (out / row["output"]).read_bytes()


def test_incomplete_shards_are_refused(cli, sony, tmp_path):
    cli("convert", sony / "Sony", tmp_path / "conv", "--shard", "0/2")
    result = cli("convert", "--merge", tmp_path / "conv")
    assert result.exit_code == 1 and "missing shards" in result.output
    assert cli("convert", sony / "Sony", tmp_path / "c", "--shard", "2/2").exit_code == 1


def test_rerun_skips_unchanged_files(cli, sony, tmp_path):
    out = tmp_path / "conv"
    cli("convert", sony / "Sony", out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    result = cli("convert", sony / "Sony", out)
    assert "skipped_unchanged │ 9" in result.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")} == before
    # a changed setting converts again
    result = cli("convert", sony / "Sony", out, "--quality", 80)
    assert "converted         │ 9" in result.output


def test_bad_params_file_is_one_line(cli, sony, tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("convert:\n  workrs: 2\n")
    result = cli("convert", sony / "Sony", tmp_path / "c", "--params", bad)
    assert result.exit_code == 1
    assert "unknown key 'convert.workrs'" in result.output and "Traceback" not in result.output
