"""What every benchmark shares: the machine, timing, synthetic data, BENCHMARKS.md sections."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
WORK = ROOT / "bench" / "_work"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine(torch: bool = True, **versions: str) -> dict:
    """CPU, cores, memory and versions for a section's heading; ``torch=False`` where torch
    must not load (its libgomp would be a second OpenMP runtime beside rawpy's)."""
    git = ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "rev": subprocess.run(git, capture_output=True, text=True).stdout.strip(),
        "versions": {"Python": platform.python_version(), "numpy": np.__version__},
    }
    if torch:
        import torch as th

        info["versions"]["torch"] = f"{th.__version__} ({th.get_num_threads()} threads)"
        info["gpu"] = th.cuda.get_device_name(0) if th.cuda.is_available() else "none"
    info["versions"].update(versions)
    return info


def header(section: str, intro: str, info: dict, command: str, *more: str) -> list[str]:
    """The heading, one paragraph on what is measured, then date, machine, versions, command."""
    gpu = f"; GPU: {info['gpu']}" if "gpu" in info else ""
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    when = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    machine_ = f"{info['cpu']}, {info['cores']} cores ({info['usable']} usable), "
    machine_ += f"{info['memory_gib']} GiB, {info['os']}{gpu}"
    bullets = [f"Date: {when}; code `{info['rev']}`", f"Machine: {machine_}",
               f"Versions: {versions}", f"Command: `{command}`", *more]  # fmt: skip
    return [section, "", intro, "", *(f"- {line}" for line in bullets), ""]


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children."""
    own, kids = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def system_busy() -> float:
    """CPU seconds all processes of the machine have used since boot (0 without /proc)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    return (sum(ticks) - sum(ticks[3:5])) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


QUIET = {"budget": 0.0, "waited": 0.0}  # seconds in all to wait (``--max-wait``), waited


def wait_quiet(most: float = 10.0) -> None:
    """Wait (``most`` seconds, within QUIET's budget) until other processes use under 0.3
    cores: on a shared machine a run measured while something else is busy is slower."""
    stop = min(QUIET["budget"], QUIET["waited"] + most)
    while QUIET["waited"] < stop:
        before = system_busy()
        time.sleep(0.5)
        if system_busy() - before < 0.15:
            return
        QUIET["waited"] += 0.5


def timed(fn, *args) -> dict:
    """Run ``fn(*args)``; its dict result (if any) plus wall, CPU and others' load in cores."""
    wait_quiet()
    busy, cpu, start = system_busy(), cpu_seconds(), time.perf_counter()
    result = fn(*args)
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    others = max(0.0, system_busy() - busy - cpu) / wall
    return {**(result if isinstance(result, dict) else {}), "wall": wall, "cpu": cpu,
            "others": others}  # fmt: skip


def best_of(runs: list[dict]) -> dict:
    """The run with the least wall time, with every run's wall time as ``walls``."""
    return {**min(runs, key=lambda r: r["wall"]), "walls": [r["wall"] for r in runs]}


def best_time(fn, repeat: int) -> float:
    """Least wall seconds of ``repeat`` calls of ``fn()``."""
    return best_of([timed(fn) for _ in range(repeat)])["wall"]


def run_child(script: str, args: list[str]) -> dict:
    """``script args`` in a fresh interpreter; its last line of output, read as JSON."""
    wait_quiet()
    cmd = [sys.executable, script, *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"child failed ({done.returncode}): {shlex.join(cmd)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    """Peak RSS of this process (``VmHWM``), in MiB; not ``ru_maxrss``, which on Linux
    survives fork + exec, so a child would report at least its parent's RSS."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if "VmHWM" in x)
    return int(line.split()[1]) / 1024


@contextlib.contextmanager
def server(command: list[str], url: str, log: Path, env: dict | None = None):
    """A server (its own session, output to ``log``) from when ``url`` answers until the block
    ends; its log if it dies or stays silent for 3 minutes first."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while process.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except urllib.error.HTTPError:  # an error page is an answer too
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{url}: no answer (exit code {process.poll()}): {log.read_text()}")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_raws(root: Path, scenes: int, size: str, frames: int = 1) -> Path:
    """``stages.synth`` DNGs (seed 0) under ``root``; returns the SID-layout RAW folder."""
    from lowlight import stages
    from lowlight.config import Params, override

    stages.synth.run(override(Params().synth, "synth", scenes=scenes, size=size, frames=frames),
                     root, 0)  # fmt: skip
    return root / "Sony"


def make_pairs(root: Path, scenes: int, size: str) -> Path:
    """Synthetic RAWs -> converted images -> pairs file, through the real stages."""
    from lowlight import stages
    from lowlight.config import Params

    p = Params()
    stages.convert.run(p.convert, make_raws(root, scenes, size), root / "converted")
    stages.pair.run(p.pair, root / "converted", root / "pairs.parquet")
    return root / "pairs.parquet"


def parser(doc: str) -> argparse.ArgumentParser:
    """The flags every benchmark takes; a script adds its own."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smallest settings; prints only")
    p.add_argument("--output", type=Path, help="file whose section to replace (BENCHMARKS.md)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration; best")
    p.add_argument("--keep", action="store_true", help="keep the scratch data in bench/_work")
    p.add_argument("--max-wait", type=float, default=60.0, help="seconds in all to wait for "
                   "other processes to go idle before timed runs")  # fmt: skip
    return p


def parse(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse; ``--quick`` means one run, no waiting, and no file unless ``--output`` names one."""
    args = p.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.repeat, args.max_wait = 1, 0.0
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.no_write:
        args.output = None
    elif args.output is None and not args.quick:
        args.output = BENCHMARKS
    QUIET["budget"] = args.max_wait
    return args


def command(args: argparse.Namespace) -> str:
    """The command line that made a section, without where it was written."""
    words, argv = [], iter(args.argv)
    for word in argv:
        if word == "--output":
            next(argv, None)
        elif not word.startswith("--output=") and word != "--no-write":
            words.append(word)
    return shlex.join([".venv/bin/python", f"bench/{Path(sys.argv[0]).name}", *words])


@contextlib.contextmanager
def scratch(name: str, keep: bool = False):
    """A fresh ``bench/_work/NAME`` for a run's data, removed afterwards unless ``keep``."""
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        if keep:
            print(f"kept scratch data in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                WORK.rmdir()


def yes_no(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(head: list[str], rows: list[list], align: str = "") -> list[str]:
    """A markdown table; ``align`` has l, r or c per column (default: first left, rest right)."""
    rule = {"l": "---", "r": "---:", "c": ":---:"}
    align = align or "l" + "r" * (len(head) - 1)
    return [row(head), "|" + "|".join(rule[a] for a in align) + "|", *map(row, rows), ""]


def goals(*checks: tuple[str, float, str, float]) -> list[str]:
    """A goal table from (what, measured ratio, "<=" or ">=", target): met is computed."""
    rows = [[w, f"{v:.2f}x", f"{op} {t:g}x", yes_no(v <= t if op == "<=" else v >= t)]
            for w, v, op, t in checks]  # fmt: skip
    return table(["goal", "measured", "target", "met"], rows, "lrrc")


def replace_section(heading: str, text: str, path: Path = BENCHMARKS) -> None:
    """Replace (or append) the ``heading`` section of ``path`` atomically; keep the rest."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\nWritten by `bench/*.py`.\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = "".join(lines).rstrip("\n") + f"\n\n{text}"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))  # fmt: skip
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    tmp = path.with_name(f".{path.name}.tmp")  # written whole, then renamed over
    tmp.write_text(new)
    os.replace(tmp, path)


def publish(heading: str, lines: list[str], output: Path | None) -> None:
    """Print a section; write it into ``output`` (BENCHMARKS.md) unless that is None."""
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    if output is not None:
        replace_section(heading, text, output)
        print(f"wrote the '{heading}' section of {output}")
