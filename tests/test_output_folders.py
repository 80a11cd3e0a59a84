"""Issue 27, items 1, 2 and 8: a stage never deletes what it did not write, one writer at a time,
and an output folder it cannot write is one line (real folders, mounts and processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from lowlight import storage
from tests.conftest import mounted, one_line_error, snapshot, tiny_params_file

# 1. never delete what the stage did not write ------------------------------------------------


def test_convert_refuses_its_own_input_as_output(cli, sony):
    before = snapshot(sony)
    one_line_error(cli("convert", sony / "Sony", sony / "Sony"), "is the input")
    assert snapshot(sony) == before  # every RAW still there, byte for byte


def test_convert_refuses_the_inputs_parent_and_a_folder_inside_the_input(cli, sony, monkeypatch):
    monkeypatch.chdir(sony)
    (sony / "vacation.jpg").write_bytes(b"a sibling photo")
    before = snapshot(sony)
    one_line_error(cli("convert", "Sony/", "."), "contains the input")
    one_line_error(cli("convert", "Sony", "Sony/short/converted"), "inside the input")
    assert snapshot(sony) == before


def test_convert_keeps_a_users_file_in_its_output_folder(cli, sony, tmp_path):
    out = tmp_path / "conv"
    out.mkdir()
    (out / "edited_final.tif").write_bytes(b"hours of retouching")
    one_line_error(cli("convert", sony / "Sony", out), "edited_final.tif", "did not write")
    assert snapshot(out) == {"edited_final.tif": b"hours of retouching"}

    # a folder convert wrote is its own to replace, until the user puts a file into it
    shutil.rmtree(out)
    assert cli("convert", sony / "Sony", out).exit_code == 0
    assert json.loads((out / storage.MARKER).read_text())["stage"] == "convert"
    assert cli("convert", sony / "Sony", out).exit_code == 0  # a rerun replaces its own output
    (out / "short" / "my_edit.jpg").write_bytes(b"mine")
    one_line_error(cli("convert", sony / "Sony", out), "short/my_edit.jpg")
    assert (out / "short" / "my_edit.jpg").read_bytes() == b"mine"


def test_convert_refuses_a_file_as_its_output_folder(cli, sony, tmp_path):
    target = tmp_path / "afile"
    target.write_bytes(b"not a folder")
    one_line_error(cli("convert", sony / "Sony", target), "is a file")
    assert target.read_bytes() == b"not a folder"


def test_an_output_from_before_markers_is_still_the_stages(cli, sony, tmp_path):
    """A converted folder written by lowlight before markers (or a DVC checkout of one) holds
    only files convert writes: it is replaced; a user's file beside them is not."""
    out = tmp_path / "conv"
    assert cli("convert", sony / "Sony", out).exit_code == 0
    (out / storage.MARKER).unlink()
    assert cli("convert", sony / "Sony", out).exit_code == 0
    (out / storage.MARKER).unlink()
    (out / "notes.txt").write_text("mine")
    one_line_error(cli("convert", sony / "Sony", out), "notes.txt")


def test_synth_patch_and_train_keep_a_thesis_they_find(cli, tiny_patches, tmp_path):
    for name in ("synth", "patches", "models"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "thesis.docx").write_bytes(b"chapter 1")
    params = tiny_params_file(tmp_path)
    one_line_error(cli("synth", tmp_path / "synth", "--scenes", "3", "--size", "32x48"),
                   "thesis.docx")  # fmt: skip
    one_line_error(cli("patch", tiny_patches.parent / "pairs.parquet", tmp_path / "patches"),
                   "thesis.docx")  # fmt: skip
    one_line_error(cli("train", tiny_patches, tmp_path / "models", "--params", params,
                       "--reports", tmp_path / "reports"), "thesis.docx")  # fmt: skip
    for name in ("synth", "patches", "models"):
        assert snapshot(tmp_path / name) == {"thesis.docx": b"chapter 1"}
    one_line_error(cli("patch", tiny_patches.parent / "pairs.parquet", tiny_patches.parent),
                   "contains the input")  # fmt: skip


# 2. two writers of one folder: the second is refused, naming the first -----------------------


def test_a_second_convert_into_the_same_folder_is_refused(sony, tmp_path):
    out = tmp_path / "conv"
    command = [sys.executable, "-m", "lowlight.cli", "convert", str(sony / "Sony"), str(out)]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    lock = tmp_path / ".conv.lock"
    deadline = time.monotonic() + 120
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # holds the lock while the second one starts
    try:
        assert lock.exists(), "the first convert finished before it could be caught writing"
        second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert second.returncode == 1
    message = " ".join(second.stderr.split())
    assert f"pid {first.pid}" in message and "another lowlight run is writing it" in message
    assert "Traceback" not in second.stderr
    assert json.loads((out / storage.MARKER).read_text())["stage"] == "convert"
    assert not lock.exists()  # the owner removes it when done


def test_a_killed_writers_lock_does_not_block_the_next_run(sony, tmp_path):
    out = tmp_path / "conv"
    lock = tmp_path / ".conv.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from lowlight import storage\n"
        f"with storage.locked(Path({str(out)!r})):\n"
        "    print('locked', flush=True); time.sleep(600)\n")],
        stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(storage.OutputError, match="another lowlight run"), storage.locked(out):
        pass
    holder.kill()
    holder.wait()
    assert lock.exists()  # what a kill -9 leaves behind
    with storage.locked(out):
        assert f"pid {os.getpid()}" in lock.read_text()
    assert not lock.exists()


# 8. a folder that cannot be written, or cannot be replaced, is one line -----------------------


def test_convert_into_a_read_only_folder_is_one_line(cli, sony, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with mounted(folder, "--bind", "-o", "ro", str(folder)):
        one_line_error(cli("convert", sony / "Sony", folder / "conv"), "Read-only file system")
    assert list(folder.iterdir()) == []  # nothing half-made


def test_convert_onto_a_mount_point_is_one_line_and_leaves_nothing(cli, sony, tmp_path):
    with mounted(tmp_path / "mnt", "-t", "tmpfs", "-o", "size=4m", "tmpfs") as mnt:
        one_line_error(cli("convert", sony / "Sony", mnt), "mount point")
        assert list(mnt.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnt", "raw"]  # no .staging-/.old-
