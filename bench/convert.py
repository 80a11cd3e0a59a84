"""Benchmark of the convert stage; writes the ``## convert`` section of BENCHMARKS.md.

Measures, on the same synthetic DNGs and as ratios within one run:

1. ms per megapixel of ``stages.convert`` (1 worker) against bare ``rawpy.imread`` +
   ``raw.postprocess`` with the stage's postprocess settings, in the same process
   (goal: stage <= 1.25x bare);
2. the speed-up of the stage with 2 workers against 1 worker (goal: >= 1.7x);
3. whether LibRaw uses several threads by itself: the threads ``postprocess`` leaves behind,
   CPU time / wall time of every configuration, and all three configurations again in fresh
   subprocesses with ``OMP_NUM_THREADS=1``;
4. where the stage's time goes (cProfile of a 1-worker run over 4 scenes, grouped by part).

Every configuration runs ``--repeat`` times, rounds interleaved, each stage run into a fresh
output folder (the stage skips unchanged files otherwise); the best (minimum) wall time counts.
The machine may be shared: before each timed run the script waits a little for other processes
to go idle (``--max-wait`` in all) and records the cores they used during the run. Scratch data
lives under bench/_work/ and is removed at the end.

    make bench                                   # = .venv/bin/python bench/convert.py
    .venv/bin/python bench/convert.py --quick    # smoke run; prints, leaves BENCHMARKS.md alone
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rawpy

import benchlib  # bench/benchlib.py, beside this script
from lowlight import stages
from lowlight.config import Params, override, parse_size

WORK, BENCHMARKS = benchlib.WORK, benchlib.BENCHMARKS
SECTION = "## convert"
MAKE_COMMAND = ".venv/bin/python bench/convert.py"

GOAL_OVERHEAD = 1.25  # stage (1 worker) / bare rawpy, at most
GOAL_SPEEDUP = 1.7  # stage 1 worker / stage 2 workers, at least

# The settings lowlight.raw.decode passes to postprocess for JPEG output.
POSTPROCESS = dict(
    use_camera_wb=True,
    no_auto_bright=True,
    output_color=rawpy.ColorSpace.sRGB,
    gamma=(2.4, 12.92),
    output_bps=8,
)


# --------------------------------------------------------------------------- measuring


def raw_files(raw_dir: Path) -> list[Path]:
    return sorted(raw_dir.rglob("*.dng"))


def bare(raw_dir: Path) -> dict:
    """Bare rawpy over every file: imread + postprocess, nothing else."""
    files = raw_files(raw_dir)
    pixels = 0
    for path in files:
        with rawpy.imread(str(path)) as raw:
            image = raw.postprocess(**POSTPROCESS)
        pixels += image.shape[0] * image.shape[1]
    return {"mp": pixels / 1e6, "files": len(files)}


def stage(raw_dir: Path, out: Path, workers: int) -> dict:
    cfg = override(Params().convert, "convert", workers=workers)
    summary = stages.convert(cfg, raw_dir, out)
    if summary["failed"] or summary["converted"] != summary["files"]:
        raise SystemExit(f"convert stage did not convert every file: {summary}")
    return {"mp": summary["megapixels"], "files": summary["files"]}


def run_bare(raw_dir: Path) -> dict:
    return benchlib.timed(bare, raw_dir)


def run_stage(raw_dir: Path, workers: int, scratch: Path) -> dict:
    """One timed ``stages.convert`` run into a fresh output folder (removed afterwards)."""
    out = Path(tempfile.mkdtemp(prefix=f"out-w{workers}-", dir=scratch))
    try:
        return benchlib.timed(stage, raw_dir, out, workers)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def best_of(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r["wall"])
    return {
        **best,
        "ms_per_mp": 1000 * best["wall"] / best["mp"],
        "walls": [r["wall"] for r in runs],
    }


def run_child(kind: str, raw_dir: Path, warm_dir: Path, scratch: Path, wait: float) -> dict:
    """One timed run of ``kind`` in a fresh subprocess with ``OMP_NUM_THREADS=1``."""
    cmd = [sys.executable, __file__, "--child", kind, "--raw-dir", str(raw_dir)]
    cmd += ["--warm-dir", str(warm_dir), "--scratch", str(scratch), "--max-wait", str(wait)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_main(kind: str, raw_dir: Path, warm_dir: Path, scratch: Path) -> None:
    warm_up(warm_dir, scratch)
    run = run_bare(raw_dir) if kind == "bare" else run_stage(raw_dir, int(kind[-1]), scratch)
    print(json.dumps({**run, "waited": benchlib.QUIET.waited}))


def subset_dir(raw_dir: Path, scratch: Path, name: str, scenes: int) -> Path:
    """The first ``scenes`` scenes' files (hard links) in SID layout, under ``scratch/name``."""
    files = raw_files(raw_dir)
    keep = sorted({path.name.split("_")[0] for path in files})[:scenes]
    subset = scratch / name / raw_dir.name
    for path in files:
        if path.name.split("_")[0] in keep:
            dest = subset / path.relative_to(raw_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, dest)
            except OSError:
                shutil.copy2(path, dest)
    return subset


def warm_up(warm_dir: Path, scratch: Path) -> None:
    """Untimed bare and 1-worker stage runs on a few files: lazy imports (exifread, pandas
    under pyarrow), allocator and LibRaw first touch, so the first timed run pays none of it."""
    bare(warm_dir)
    out = Path(tempfile.mkdtemp(prefix="out-warm-", dir=scratch))
    try:
        stage(warm_dir, out, 1)
    finally:
        shutil.rmtree(out, ignore_errors=True)


# Parts of the stage, matched in cProfile's stats by (file name ending, function name); "~" is
# a C function, matched by substring. rawpy is Cython, whose calls cProfile cannot see: imread,
# unpack and postprocess land in the self time of lowlight.raw.decode.
LIBRAW = "LibRaw: imread + unpack + postprocess (self time of raw.decode)"
PARTS = {
    "sha256 of the RAW file": ("conversion.py", "sha256_file"),
    "per-pixel black map (raw._black_levels)": ("raw.py", "_black_levels"),
    "amplification (raw.amplify_mosaic)": ("raw.py", "amplify_mosaic"),
    "EXIF read (exifread)": ("raw.py", "_camera_name"),
    "JPEG encode (cv2.imencode)": ("~", "imencode"),
    "manifest: read previous": ("conversion.py", "previous_rows"),
    "manifest: write parquet": ("conversion.py", "write_manifest"),
    "planning (list_raw_files + plan_jobs)": ("conversion.py", "plan_jobs"),
}


def find_stat(stats: dict, file_end: str, func: str) -> tuple[int, float, float]:
    """(calls, self seconds, cumulative seconds) of a function, over all matching entries."""
    calls, own, cum = 0, 0.0, 0.0
    for (file, _line, name), (_cc, nc, tt, ct, _callers) in stats.items():
        if file_end == "~":
            hit = file == "~" and func in name
        else:
            hit = name == func and file.replace("\\", "/").endswith(file_end)
        if hit:
            calls, own, cum = calls + nc, own + tt, cum + ct
    return calls, own, cum


def profile_stage(raw_dir: Path, scratch: Path) -> dict:
    """cProfile one 1-worker stage run; seconds per part, summed over all files."""
    cfg = override(Params().convert, "convert", workers=1)
    out = Path(tempfile.mkdtemp(prefix="out-profile-", dir=scratch))
    profiler = cProfile.Profile()
    benchlib.QUIET.wait()
    try:
        busy, cpu, start = benchlib.system_busy(), benchlib.cpu_seconds(), time.perf_counter()
        profiler.enable()
        summary = stages.convert(cfg, raw_dir, out)
        profiler.disable()
        wall = time.perf_counter() - start
        others = max(0.0, benchlib.system_busy() - busy - (benchlib.cpu_seconds() - cpu)) / wall
    finally:
        shutil.rmtree(out, ignore_errors=True)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = {}
    for label, key in PARTS.items():
        calls, _, cum = find_stat(stats, *key)
        rows[label] = [calls, cum]
    calls, own, _ = find_stat(stats, "raw.py", "decode")
    rows[LIBRAW] = [calls, own]
    # encode = BGR copy + imencode; write_image = encode + the atomic file write.
    _, _, encode = find_stat(stats, "imageio.py", "encode")
    calls, _, write = find_stat(stats, "imageio.py", "write_image")
    rows["RGB->BGR copy before encoding"] = [calls, encode - rows["JPEG encode (cv2.imencode)"][1]]
    rows["atomic write of the JPEG"] = [calls, write - encode]
    _, _, listing = find_stat(stats, "conversion.py", "list_raw_files")
    rows["planning (list_raw_files + plan_jobs)"][1] += listing
    _, _, total = find_stat(stats, "stages.py", "convert")
    accounted = sum(v[1] for v in rows.values())
    rows["other (Python glue, tqdm, settings keys, profiler)"] = [0, total - accounted]
    return {
        "others": others,
        "wall": wall,
        "total": total,
        "files": summary["files"],
        "mp": summary["megapixels"],
        "rows": rows,
    }


# --------------------------------------------------------------------------- reporting


def machine() -> dict:
    """What the section's heading names (no torch import: it would load a second libgomp)."""
    import cv2

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": benchlib.cpu_model(),
        "cores": os.cpu_count(),
        "usable": usable,
        "python": platform.python_version(),
        "rawpy": rawpy.__version__,
        "libraw": ".".join(str(v) for v in rawpy.libraw_version),
        "openmp": rawpy.flags.get("OPENMP") if rawpy.flags else None,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "rev": benchlib.git_rev(),
    }


def yes_no(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def row(label: str, r: dict, bare_ms: float | None = None, threads: str | None = None) -> str:
    cells = [label] + ([threads] if threads else [])
    cells += [f"{r['wall']:.2f}", " / ".join(f"{w:.2f}" for w in r["walls"])]
    cells += [f"{r['ms_per_mp']:.1f}", f"{1000 * r['cpu'] / r['mp']:.1f}"]
    cells += [f"{r['cpu'] / r['wall']:.2f}", f"{r['others']:.2f}"]
    if bare_ms is not None:
        cells.append(f"{r['ms_per_mp'] / bare_ms:.2f}x")
    return "| " + " | ".join(cells) + " |"


def render(args: argparse.Namespace, info: dict, res: dict) -> str:
    bare, s1, s2 = res["bare"], res["stage1"], res["stage2"]
    overhead = s1["ms_per_mp"] / bare["ms_per_mp"]
    speedup = s1["wall"] / s2["wall"]
    command = MAKE_COMMAND + "".join(f" {a}" for a in args.argv)
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        SECTION,
        "",
        "Conversion speed of `lowlight.stages.convert` (sha256 + linear-space amplification of "
        "short frames + LibRaw postprocess + JPEG q95 + manifest) against bare "
        "`rawpy.imread(...)` + `raw.postprocess(...)` with the same postprocess settings "
        "(`use_camera_wb=True, no_auto_bright=True, output_color=sRGB, gamma=(2.4, 12.92), "
        "output_bps=8`).",
        "",
        f"- Date: {when}",
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable']} usable), {info['os']}",
        f"- Python {info['python']}, rawpy {info['rawpy']}, LibRaw {info['libraw']} "
        f"(OpenMP: {info['openmp']}), numpy {info['numpy']}, OpenCV {info['opencv']}",
        f"- Code: `{info['rev']}`",
        f"- Command: `make bench` (runs `{command}`)",
        f"- Data: {bare['files']} synthetic uncompressed Bayer DNGs from `stages.synth` "
        f"({args.scenes} scenes x ({args.frames} short + 1 long), {args.size[0]}x{args.size[1]}, "
        f"seed 0), {bare['mp']:.1f} megapixels in all",
        f"- Timing: `time.perf_counter` around the whole call, best of {args.repeat} runs per "
        "configuration, rounds interleaved (bare, 1 worker, 2 workers, then the same three with "
        "`OMP_NUM_THREADS=1`, next round); bare and stage share one warmed-up process, every "
        "stage run writes into a fresh output folder. The `OMP_NUM_THREADS=1` runs each use a "
        "fresh subprocess, warmed up on one scene first. CPU ms / MP and CPU / wall: user + sys "
        "CPU time of the process and its pool workers. Others: cores that other processes of "
        "the machine used during that run (/proc/stat); above about 0.2 the run competed with "
        "something else and its wall time is pessimistic.",
        f"- The whole benchmark took {res['elapsed']:.0f} s, {res['waited']:.0f} s of it waiting "
        "for other processes to go idle before timed runs.",
        "",
        "| configuration | best wall (s) | all runs (s) | ms / MP | CPU ms / MP | CPU / wall "
        "| others (cores) | vs bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        row("bare rawpy (imread + postprocess)", bare, bare["ms_per_mp"]),
        row("convert stage, 1 worker", s1, bare["ms_per_mp"]),
        row("convert stage, 2 workers", s2, bare["ms_per_mp"]),
        "",
        "| goal | measured | target | met |",
        "|---|---:|---:|:---:|",
        f"| stage (1 worker) / bare rawpy, ms per MP | {overhead:.2f}x | <= {GOAL_OVERHEAD}x "
        f"| {yes_no(overhead <= GOAL_OVERHEAD)} |",
        f"| speed-up, 2 workers vs 1 worker | {speedup:.2f}x | >= {GOAL_SPEEDUP}x "
        f"| {yes_no(speedup >= GOAL_SPEEDUP)} |",
        "",
        f"From CPU time instead of wall time (less sensitive to other load, but LibRaw's OpenMP "
        "team also burns CPU while it waits, which flatters the stage): stage / bare "
        f"{s1['cpu'] / s1['mp'] / (bare['cpu'] / bare['mp']):.2f}x; the 2-worker run used "
        f"{s2['cpu'] / s1['cpu']:.2f}x the CPU time of the 1-worker run.",
        "",
    ]
    if res.get("bare_omp1"):
        one_bare, one_s1 = res["bare_omp1"], res["stage1_omp1"]
        lines += [
            "With one OpenMP thread everywhere (`OMP_NUM_THREADS=1`, table below) the stage "
            f"costs {one_s1['ms_per_mp'] / one_bare['ms_per_mp']:.2f}x bare rawpy in wall time "
            f"and {one_s1['cpu'] / one_bare['cpu']:.2f}x in CPU time: the work the stage adds, "
            "without LibRaw's parallel share hiding or exposing it.",
            "",
        ]
    names = {"bare rawpy": bare, "stage with 1 worker": s1, "stage with 2 workers": s2}
    hit = [f"{name} ({r['others']:.2f} cores)" for name, r in names.items() if r["others"] > 0.2]
    if hit:
        lines += [
            "**Shared machine**: other processes were busy during the best run of "
            + ", ".join(hit)
            + ", so those wall times are pessimistic and the wall-time ratios with them are "
            "noisy; the CPU-time ratios above are the steadier numbers.",
            "",
        ]
    env = os.environ.get("OMP_NUM_THREADS")
    env = f"`{env}`" if env else "unset"
    lines += render_threads(
        {**res, "openmp": info["openmp"], "cores": info["usable"], "omp_env": env}
    )
    if res.get("profile"):
        lines += render_profile(res["profile"], bare["ms_per_mp"])
    return "\n".join(lines).rstrip() + "\n"


def render_threads(res: dict) -> list[str]:
    lines = ["### Does LibRaw use several threads by itself?", ""]
    if not res.get("bare_omp1"):
        return lines + ["Not measured (`--no-threads-check`).", ""]
    bare, s1, s2 = res["bare"], res["stage1"], res["stage2"]
    one_bare, one_s1, one_s2 = res["bare_omp1"], res["stage1_omp1"], res["stage2_omp1"]
    env = res["omp_env"]
    team, cores = res.get("omp_team"), res["cores"]
    if team is None:
        found = "(The thread count could not be read: no /proc/self/task.)"
    elif team > 1:
        found = (
            f"**Yes**: after its first `postprocess` this process holds {team - 1} more "
            f"thread(s), an OpenMP team of {team} that LibRaw's parallel loops run on; with "
            "`OMP_NUM_THREADS=1` it holds none."
        )
    else:
        found = "**No**: `postprocess` starts no extra thread in this process."
    lines += [
        f"The rawpy wheel is built with OpenMP (`rawpy.flags['OPENMP']` = {res['openmp']}) and "
        "bundles libgomp, which runs one thread per core unless `OMP_NUM_THREADS` says "
        f"otherwise. {found}",
        "",
        "The three configurations again, each run in a fresh subprocess with "
        "`OMP_NUM_THREADS=1` (the pool's workers inherit it; a stage that already pins its "
        "workers to one thread makes the two 2-worker rows measure the same thing):",
        "",
        "| configuration | OMP_NUM_THREADS | best wall (s) | all runs (s) | ms / MP "
        "| CPU ms / MP | CPU / wall | others (cores) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, default, single in [
        ("bare rawpy", bare, one_bare),
        ("convert stage, 1 worker", s1, one_s1),
        ("convert stage, 2 workers", s2, one_s2),
    ]:
        lines.append(row(label, default, threads=env))
        lines.append(row(label, single, threads="1"))
    gain_bare = one_bare["wall"] / bare["wall"]
    gain_s1 = one_s1["wall"] / s1["wall"]
    gain_s2 = one_s2["wall"] / s2["wall"]
    lines += [
        "",
        f"Wall time with `OMP_NUM_THREADS` {env} against 1: bare rawpy {fmt(gain_bare)}, "
        f"stage with 1 worker {fmt(gain_s1)}, stage with 2 workers {fmt(gain_s2)}. Bare rawpy "
        f"keeps {bare['cpu'] / bare['wall']:.2f} cores busy on average ({env}) against "
        f"{one_bare['cpu'] / one_bare['wall']:.2f} (1).",
        "",
    ]
    if gain_bare > 1.1:
        lines.append(
            "- LibRaw's own threads speed up a single process, so the 1-worker run already "
            "uses part of the second core: that caps the 2-worker speed-up well below the "
            "core count."
        )
    if gain_bare < 0.9:
        lines.append(
            "- LibRaw's own threads make even a single process slower here: while other "
            "processes hold a core, the OpenMP team waits (spinning) at every barrier for a "
            "team mate that is not running (see the others column)."
        )
    if gain_s2 < 0.9:
        lines.append(
            "- The 2-worker run oversubscribes the CPU when its workers keep LibRaw's default "
            "threads (2 workers x one thread per core); one OpenMP thread per worker "
            "(`OMP_NUM_THREADS=1` in the workers' environment, set before libgomp loads there) "
            "avoids it."
        )
    if 0.9 <= gain_bare <= 1.1 and gain_s2 >= 0.9:
        lines.append("- LibRaw's own threads neither help nor hurt noticeably here.")
    lines += [
        f"- 2 workers against 1 worker, both with `OMP_NUM_THREADS=1`: "
        f"{one_s1['wall'] / one_s2['wall']:.2f}x; 2 workers with `OMP_NUM_THREADS=1` against "
        f"the 1-worker run with {env}: {s1['wall'] / one_s2['wall']:.2f}x "
        f"(goal {GOAL_SPEEDUP}x).",
        f"- Ceiling from CPU time, whatever the load: a 2-worker run cannot finish before its "
        f"CPU time / {cores} cores, so against the best 1-worker run ({env}) it can be at most "
        f"{s1['wall'] / (s2['cpu'] / cores):.2f}x faster ({env}) or "
        f"{s1['wall'] / (one_s2['cpu'] / cores):.2f}x (`OMP_NUM_THREADS=1`).",
        "",
    ]
    return lines


def thread_count() -> int | None:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def fmt(gain: float) -> str:
    """A wall-time ratio (one thread / as configured) in words."""
    if gain >= 1:
        return f"{gain:.2f}x faster"
    return f"{1 / gain:.2f}x slower"


def render_profile(prof: dict, bare_ms: float) -> list[str]:
    total = sum(v[1] for v in prof["rows"].values())
    libraw = prof["rows"][LIBRAW][1]
    rest = total - libraw
    per_mp = 1000 / prof["mp"]
    lines = [
        "### Where the stage's time goes",
        "",
        f"cProfile of one more 1-worker stage run over the first {prof['files']} files "
        f"({prof['wall']:.2f} s wall under the profiler, others {prof['others']:.2f} cores). "
        "Seconds are exclusive (a row's time is not inside another row); calls counts the "
        "calls of the function behind the row. rawpy is Cython, invisible to cProfile, so "
        "LibRaw's time is the self time of `lowlight.raw.decode`.",
        "",
        "| part | calls | seconds | ms / file | ms / MP | share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, (calls, secs) in sorted(prof["rows"].items(), key=lambda kv: -kv[1][1]):
        lines.append(
            f"| {label} | {calls or ''} | {secs:.2f} | {1000 * secs / prof['files']:.1f} "
            f"| {secs * per_mp:.1f} | {100 * secs / total:.1f} % |"
        )
    lines += [
        "",
        f"LibRaw inside the stage: {libraw * per_mp:.1f} ms/MP (bare rawpy above: "
        f"{bare_ms:.1f} ms/MP). Everything else: {rest * per_mp:.1f} ms/MP, i.e. the stage "
        f"costs {total / libraw:.2f}x its LibRaw time under the profiler.",
        "",
    ]
    if prof["others"] > 0.2:
        lines += [
            "Other processes were busy during this run: read the shares, not the absolute "
            "times (LibRaw's OpenMP team suffers most from a busy core).",
            "",
        ]
    return lines


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1424x2128", help="HxW of each frame (even)")
    parser.add_argument("--scenes", type=int, default=12, help="scenes (>= 3)")
    parser.add_argument("--frames", type=int, default=2, help="short frames per scene")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; best")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (256x384, 3 scenes, 1 repeat); prints, does not write BENCHMARKS.md",
    )
    parser.add_argument("--output", type=Path, default=BENCHMARKS, help="file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--no-threads-check", action="store_true", help="skip OMP_NUM_THREADS=1")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile breakdown")
    parser.add_argument("--keep", action="store_true", help="keep the scratch data")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds in all to wait for other processes to go idle before timed runs",
    )
    # Internal: a measurement in a subprocess (used for OMP_NUM_THREADS=1).
    parser.add_argument("--child", choices=["bare", "stage1", "stage2"], help=argparse.SUPPRESS)
    parser.add_argument("--raw-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warm-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.size, args.scenes, args.repeat, args.max_wait = "256x384", 3, 1, 0.0
        args.no_write = True
    try:
        args.size = parse_size(args.size)
    except ValueError as exc:
        parser.error(f"--size: {exc}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    benchlib.QUIET.budget = args.max_wait
    if args.child:
        child_main(args.child, args.raw_dir, args.warm_dir, args.scratch)
        return 0

    info = machine()
    began = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="convert-", dir=WORK))
    try:
        raw_root = scratch / "raw"
        size = f"{args.size[0]}x{args.size[1]}"
        cfg = override(Params().synth, "synth", scenes=args.scenes, size=size, frames=args.frames)
        print(f"synthesising {args.scenes} scenes x {args.frames + 1} frames of {size} ...")
        stages.synth(cfg, raw_root, seed=0)
        raw_dir = raw_root / "Sony"
        for path in raw_files(raw_dir):  # into the page cache before anything is timed
            path.read_bytes()
        warm_dir = subset_dir(raw_dir, scratch, "warm", 1)
        before = thread_count()
        bare(warm_dir)
        after = thread_count()
        team = after - before + 1 if before is not None and after is not None else None
        warm_up(warm_dir, scratch)

        kinds = ["bare", "stage1", "stage2"]
        if not args.no_threads_check:
            kinds += [f"{kind}_omp1" for kind in kinds]
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for rep in range(args.repeat):
            print(f"round {rep + 1}/{args.repeat}: bare, 1 worker, 2 workers", end="")
            runs["bare"].append(run_bare(raw_dir))
            runs["stage1"].append(run_stage(raw_dir, 1, scratch))
            runs["stage2"].append(run_stage(raw_dir, 2, scratch))
            if args.no_threads_check:
                print()
                continue
            print(", the same with OMP_NUM_THREADS=1 in subprocesses")
            for kind in ("bare", "stage1", "stage2"):
                wait = max(0.0, benchlib.QUIET.budget - benchlib.QUIET.waited) / 3
                run = run_child(kind, raw_dir, warm_dir, scratch, wait)
                benchlib.QUIET.waited += run.pop("waited")
                runs[f"{kind}_omp1"].append(run)
        res = {name: best_of(r) for name, r in runs.items()}
        res["omp_team"] = team
        if not args.no_profile:
            print("profiling one 1-worker run ...")
            res["profile"] = profile_stage(subset_dir(raw_dir, scratch, "profile", 4), scratch)
    finally:
        if args.keep:
            print(f"kept scratch data in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
            if WORK.is_dir() and not any(WORK.iterdir()):
                WORK.rmdir()

    res["elapsed"], res["waited"] = time.perf_counter() - began, benchlib.QUIET.waited
    text = render(args, info, res)
    print()
    print(text)
    if not args.no_write:
        benchlib.replace_section(SECTION, text, args.output)
        print(f"wrote the '{SECTION}' section of {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
