"""What every benchmark shares: the machine's description, test data, BENCHMARKS.md sections."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
WORK = ROOT / "bench" / "_work"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_rev() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    """CPU, cores, memory and the versions that matter, for the heading of a section."""
    import numpy as np
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "rev": git_rev(),
    }


def make_pairs(scenes: int, size: str, root: Path, frames: int = 1) -> Path:
    """Synthetic RAWs -> converted images -> pairs file, through the real stages."""
    from lowlight import stages
    from lowlight.config import Params, override

    p = Params()
    stages.synth(override(p.synth, "synth", scenes=scenes, size=size, frames=frames), root, 0)
    stages.convert(p.convert, root / "Sony", root / "converted")
    stages.pair(p.pair, root / "converted", root / "pairs.parquet")
    return root / "pairs.parquet"


def replace_section(heading: str, text: str, path: Path = BENCHMARKS) -> None:
    """Replace (or append) the ``heading`` section of BENCHMARKS.md atomically; keep the rest."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\nWritten by `bench/*.py`.\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = "".join(lines).rstrip("\n") + f"\n\n{text}"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(new)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
