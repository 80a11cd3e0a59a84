"""Hostile and broken inputs of the data stages (issue 27, items 8-10): one clear line each.

Real files throughout: corrupt and truncated Parquet files, a file where a folder is expected, a
monochrome DNG, pairs files with a null path or a converted folder pointing elsewhere, images
that are all unreadable, and a real full tmpfs under convert's output.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lowlight import pairs, raw
from lowlight.config import Params
from lowlight.conversion import MANIFEST, Job, convert_one, read_manifest
from lowlight.errors import RawDecodeError
from tests.conftest import mounted, snapshot

from .test_faults import write_monochrome_dng


def error_line(output: str) -> str:
    """The one error line a failed command printed (asserting there is exactly one)."""
    assert "Traceback" not in output, output
    lines = [line[line.index("error:") :] for line in output.splitlines() if "error:" in line]
    assert len(lines) == 1, output  # (after a progress bar's last state, on its line)
    return lines[0]


@pytest.fixture
def paired(cli, sony: Path, tmp_path: Path) -> Path:
    """A converted folder and its pairs file (tmp_path/conv, tmp_path/pairs.parquet)."""
    assert cli("convert", sony / "Sony", tmp_path / "conv").exit_code == 0
    result = cli("pair", tmp_path / "conv", tmp_path / "pairs.parquet", "--select", "all")
    assert result.exit_code == 0, result.output
    return tmp_path / "pairs.parquet"


def write_pairs_like(source: Path, dest: Path, metadata: dict | None = None, **columns) -> Path:
    """A copy of pairs file ``source`` with some columns' values and metadata replaced."""
    table = pq.read_table(source)
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name,
                                 pa.array(values, table.schema.field(name).type))  # fmt: skip
    meta = {**table.schema.metadata, **(metadata or {})}
    pq.write_table(table.replace_schema_metadata(meta), dest)
    return dest


def readers(pairs_file: Path, folder: Path) -> list[tuple]:
    """The commands that read a pairs file (evaluate reads it before it looks for a model)."""
    evaluate = ("evaluate", folder / "no-models", pairs_file, "--out", folder / "reports")
    return [("patch", pairs_file, folder / "patches"), evaluate]


# item 8: a corrupt or truncated Parquet file, a file for a folder ------------------------------


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"PAR1 not parquet" * 8)


@pytest.mark.parametrize("how", ["truncated", "corrupt"])
def test_a_damaged_manifest_or_pairs_file_is_one_line(cli, paired, tmp_path, how):
    manifest = tmp_path / "conv" / MANIFEST
    damage(manifest, how)
    result = cli("pair", tmp_path / "conv", tmp_path / "again.parquet")
    assert result.exit_code == 1
    line = error_line(result.output)
    assert str(manifest) in line and "not a Parquet file, or truncated" in line

    damage(paired, how)
    for args in readers(paired, tmp_path):
        result = cli(*args)
        assert result.exit_code == 1
        line = error_line(result.output)
        assert str(paired) in line and "not a Parquet file, or truncated" in line, args
    assert not (tmp_path / "patches").exists()


def test_pair_given_a_file_for_the_converted_folder_is_one_line(cli, paired, tmp_path):
    manifest = tmp_path / "conv" / MANIFEST
    result = cli("pair", manifest, tmp_path / "again.parquet")
    assert result.exit_code == 1
    line = error_line(result.output)
    assert str(manifest) in line and "is a file, not the converted folder" in line
    result = cli("pair", tmp_path / "missing", tmp_path / "again.parquet")
    assert result.exit_code == 1
    assert "converted folder not found" in error_line(result.output)
    assert not (tmp_path / "again.parquet").exists()


# item 9: a monochrome DNG, a null dark path -----------------------------------------------------


def test_a_monochrome_dng_says_so_in_convert_and_enhance(cli, sony, tmp_path, tiny_models,
                                                         caplog):  # fmt: skip
    mono = write_monochrome_dng(sony / "Sony/short/mono.dng")
    for mode in ("rgb", "bayer"):
        params = tmp_path / f"params-{mode}.yaml"
        params.write_text(f"model:\n  input: {mode}\n")
        out = tmp_path / f"conv-{mode}"
        result = cli("convert", sony / "Sony", out, "--params", params)
        assert result.exit_code == 0, result.output  # the batch goes on
        rows = {r["source"]: r for r in read_manifest(out)[0].to_pylist()}
        assert rows["short/mono.dng"]["error"] == f"{mono}: monochrome sensor, not supported"
        assert f"{mono}: monochrome sensor, not supported" in caplog.text  # warned
        assert sum(r["status"] == "ok" for r in rows.values()) == 9

    good = sony / "Sony/short/00001_00_0.1s.dng"
    result = cli("enhance", mono, good, "--model", tiny_models, "--out", tmp_path / "enhanced")
    assert result.exit_code == 0, result.output
    assert f"{mono}: monochrome sensor, not supported" in result.output
    assert [p.name for p in (tmp_path / "enhanced").iterdir()] == ["00001_00_0.1s_enhanced.png"]
    # a bayer model packs the mosaic instead of demosaicing it: the same one line
    with pytest.raises(RawDecodeError, match="monochrome sensor, not supported"):
        raw.decode_packed(mono, 100.0)


@pytest.mark.parametrize("column, what", [("dark", "dark image path"),
                                          ("bright", "bright image path")])  # fmt: skip
def test_a_null_image_path_names_the_pair(cli, paired, tmp_path, column, what):
    table = pq.read_table(paired)
    values = table.column(column).to_pylist()
    ids = table.column("pair_id").to_pylist()
    values[1] = None
    bad = write_pairs_like(paired, tmp_path / "bad.parquet", **{column: values})
    for args in readers(bad, tmp_path):
        result = cli(*args)
        assert result.exit_code == 1
        line = error_line(result.output)
        assert f"{bad}: pair {ids[1]}: its {what} is missing" in line, args
        assert "no rgb input" not in line


# item 9: a full disk under convert's output -----------------------------------------------------


def test_a_full_disk_stops_convert_and_keeps_the_previous_output(cli, sony, tmp_path):
    with mounted(tmp_path / "disk", "-t", "tmpfs", "-o", "size=512k", "tmpfs") as disk:
        out = disk / "conv"
        assert cli("convert", sony / "Sony", out).exit_code == 0
        before = snapshot(out)
        # leave room for the staging folder's bookkeeping and about one 16-bit PNG
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 24 * 1024))
        result = cli("convert", sony / "Sony", out, "--format", "png16")
        assert result.exit_code == 1, result.output
        line = error_line(result.output)
        assert f"{out}: cannot write: No space left on device" in line
        assert "cannot read" not in result.output
        assert snapshot(out) == before  # the previous output, as it was
        assert sorted(p.name for p in disk.iterdir()) == ["conv", "filler"]  # no staging left


def test_an_input_that_cannot_be_read_is_still_one_failed_file(sony, tmp_path):
    """A read error of one input (here: it vanished after listing) stays that file's failure."""
    cfg = Params().convert
    job = Job("short/gone.dng", "short/gone.jpg", 1.0, None)
    row = convert_one(sony / "Sony", tmp_path / "conv", job, cfg)
    assert row["status"] == "failed" and row["error"].startswith("short/gone.dng: cannot read:")


# item 10: the recorded converted folder is checked; all images unreadable fails ---------------


@pytest.mark.parametrize("where", ["/etc", "../..", "conv/../../.."])
def test_a_pairs_file_cannot_send_reads_outside_by_its_metadata(cli, paired, tmp_path, where):
    bad = write_pairs_like(paired, tmp_path / "bad.parquet", {b"converted_dir": where.encode()})
    for args in readers(bad, tmp_path):
        result = cli(*args)
        assert result.exit_code == 1
        line = error_line(result.output)
        assert str(bad) in line and f"converted folder {where!r} lies outside" in line, args
    assert not (tmp_path / "patches").exists()


def test_a_converted_folder_named_by_the_user_may_be_anywhere(cli, paired, tmp_path):
    """Only the folder a pairs file records is checked: one the user names is theirs to pick
    (the Kubeflow patch step names it, and a moved dataset needs it)."""
    bad = write_pairs_like(paired, tmp_path / "bad.parquet", {b"converted_dir": b"/etc"})
    shutil.move(tmp_path / "conv", tmp_path / "elsewhere")
    result = cli("patch", bad, tmp_path / "patches", "--images", tmp_path / "elsewhere",
                 "--size", "16", "--stride", "8")  # fmt: skip
    assert result.exit_code == 0, result.output
    table, folder = pairs.read_pairs(bad, tmp_path / "elsewhere")
    assert folder == tmp_path / "elsewhere" and table.num_rows == 6


def test_the_recorded_converted_folder_beside_the_pairs_file_is_used(cli, paired, tmp_path):
    result = cli("patch", paired, tmp_path / "patches", "--size", "16", "--stride", "8")
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "patches/train").glob("part-*.parquet"))


def test_a_pairs_file_whose_images_are_all_unreadable_fails(cli, paired, tmp_path):
    for image in (tmp_path / "conv").rglob("*.jpg"):
        image.write_bytes(b"not a jpeg")
    result = cli("patch", paired, tmp_path / "patches", "--size", "16", "--stride", "8")
    assert result.exit_code == 1
    line = error_line(result.output)
    assert "none of the 2 train pairs could be used" in line and "not a readable" in line
    assert not (tmp_path / "patches").exists()


def test_some_unreadable_images_are_skipped_with_a_warning(cli, paired, tmp_path, caplog):
    table = pq.read_table(paired).to_pylist()
    val = next(r for r in table if r["split"] == "val")
    (tmp_path / "conv" / val["dark"]).write_bytes(b"not a jpeg")
    result = cli("patch", paired, tmp_path / "patches", "--size", "16", "--stride", "8")
    assert result.exit_code == 0, result.output
    assert f"pair {val['pair_id']} skipped" in caplog.text
    assert list((tmp_path / "patches/val").glob("part-*.parquet"))
