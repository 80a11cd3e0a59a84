"""What every benchmark shares: the machine's description, test data, BENCHMARKS.md sections."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import tempfile
import time
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


# --- measuring on a shared machine ---------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def system_busy() -> float:
    """CPU seconds all processes of the machine have used since boot (0 without /proc)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks + [0] * (8 - len(ticks))
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Quiet:
    """Before each timed run, wait (within a total budget) until other processes are idle.

    The machine may be shared; a run measured while something else is busy is slower and
    would distort the ratios. What others used during each run is recorded either way.
    """

    def __init__(self, budget: float, threshold: float = 0.3, sample: float = 0.5) -> None:
        self.budget, self.threshold, self.sample, self.waited = budget, threshold, sample, 0.0

    def wait(self, most: float = 10.0) -> None:
        """Wait until others use under ``threshold`` cores, ``most`` seconds at most."""
        stop = min(self.budget, self.waited + most)
        while self.waited < stop:
            before = system_busy()
            time.sleep(self.sample)
            if (system_busy() - before) / self.sample < self.threshold:
                return
            self.waited += self.sample


QUIET = Quiet(0.0)


def timed(fn, *args) -> dict:
    """Run ``fn(*args)`` (returning a dict); add wall, CPU and other processes' load in cores."""
    QUIET.wait()
    busy, cpu, start = system_busy(), cpu_seconds(), time.perf_counter()
    result = fn(*args)
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    others = max(0.0, system_busy() - busy - cpu) / wall
    return {**result, "wall": wall, "cpu": cpu, "others": others}


def publish(heading: str, lines: list[str], quick: bool) -> None:
    """Print a section; outside ``--quick`` runs, write it into BENCHMARKS.md too."""
    text = "\n".join(lines)
    print(text)
    if not quick:
        replace_section(heading, text)
