"""Issue 27 for `lowlight enhance` (6, 10) and `convert --workers` (10): a registry that is down
says so in seconds, an output folder inside the input is not read back, a tile too small for
the overlap and a thousand workers are caught before any file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from lowlight import card

LOWLIGHT = str(Path(sys.executable).with_name("lowlight"))


def raws(sony_master: Path, count: int, folder: Path) -> list[Path]:
    """``count`` dark RAW files of the tiny synthetic set, copied into ``folder`` (the shipped
    model is a bayer model: it enhances RAW files)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((sony_master / "Sony/short").glob("*.dng"))[:count]
    return [Path(shutil.copy(source, folder)) for source in sources]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_a_registry_that_is_down_stops_enhance_in_seconds_unless_the_fallback_is_allowed(
    sony_master, tmp_path
):
    secret = "pw-27"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://bob:{secret}@127.0.0.1:{closed_port()}"}
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        env.pop(name, None)  # MLflow's own defaults: minutes of retries
    (image,) = raws(sony_master, 1, tmp_path)

    def enhance(*flags: str) -> tuple[subprocess.CompletedProcess, float]:
        start = time.monotonic()
        result = subprocess.run([LOWLIGHT, "enhance", str(image), "--out", "out", *flags],
                                cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        return result, time.monotonic() - start

    result, seconds = enhance()
    printed = result.stdout + result.stderr
    assert result.returncode == 1 and seconds < 20, (seconds, printed)
    assert "cannot be reached" in printed and "--fallback shipped" in printed, printed
    assert "Traceback" not in printed and secret not in printed
    assert not (tmp_path / "out").exists()

    result, seconds = enhance("--fallback", "shipped")
    printed = result.stdout + result.stderr
    assert result.returncode == 0 and seconds < 60, (seconds, printed)
    assert "using the model shipped with lowlight" in printed and secret not in printed
    assert (tmp_path / f"out/{image.stem}_enhanced.png").is_file()


def test_enhance_into_its_input_folder_never_reads_its_own_outputs(
    cli, sony_master, tmp_path, caplog
):
    folder = tmp_path / "photos"
    (raw,) = raws(sony_master, 1, folder)
    shipped = card.shipped()
    for _ in range(2):
        result = cli("enhance", folder, "--out", folder, "--model", shipped)
        assert result.exit_code == 0, result.output
    own = f"{raw.stem}_enhanced.png"
    assert sorted(p.name for p in folder.iterdir()) == [raw.name, own]
    assert "skipped 1 of enhance's own outputs" in caplog.text and own in caplog.text


def test_a_tile_too_small_for_the_resolved_overlap_fails_before_any_file(
    cli, sony_master, tmp_path
):
    files = raws(sony_master, 2, tmp_path / "raw")
    result = cli("enhance", *files, "--out", tmp_path / "out", "--tile", "16",
                 "--model", card.shipped())  # fmt: skip
    assert result.exit_code == 1
    assert "--tile 16" in result.output and "overlap" in result.output, result.output
    assert "no file could be enhanced" not in result.output and files[0].name not in result.output
    assert not (tmp_path / "out").exists()


def test_convert_workers_are_capped_at_the_files_and_the_cores(cli, sony, tmp_path, caplog):
    files = len(list((sony / "Sony").rglob("*.dng")))
    result = cli("convert", sony / "Sony", tmp_path / "conv", "--workers", "1000")
    assert result.exit_code == 0, result.output
    expected = max(1, min(files, len(os.sched_getaffinity(0))))
    assert f"1000 workers asked: using {expected} ({files} files" in caplog.text, caplog.text
