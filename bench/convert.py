"""Benchmark of the convert stage; writes the ``## convert`` section of BENCHMARKS.md.

The stage (1 worker) against bare ``rawpy.imread`` + ``postprocess`` (goal <= 1.25x), 2 workers
against 1 (goal >= 1.7x), all three again with ``OMP_NUM_THREADS=1``, and a cProfile breakdown.

    make bench                                   # = .venv/bin/python bench/convert.py
    .venv/bin/python bench/convert.py --quick    # smoke run; prints only
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import rawpy

import benchlib  # bench/benchlib.py, beside this script
from benchlib import table, yes_no
from lowlight import stages
from lowlight.config import Params, override, parse_size

SECTION = "## convert"
GOAL_OVERHEAD = 1.25  # stage (1 worker) / bare rawpy, at most
GOAL_SPEEDUP = 1.7  # stage 1 worker / stage 2 workers, at least
FRAMES = 2  # short frames per scene (SID has up to ~10 per long exposure)
KINDS = {"bare": "bare rawpy (imread + postprocess)", "stage1": "convert stage, 1 worker",
         "stage2": "convert stage, 2 workers"}  # fmt: skip

# The settings lowlight.raw.decode passes to postprocess for JPEG output.
POSTPROCESS = dict(use_camera_wb=True, no_auto_bright=True, output_color=rawpy.ColorSpace.sRGB,
                   gamma=(2.4, 12.92), output_bps=8)  # fmt: skip


def raw_files(raw_dir: Path) -> list[Path]:
    return sorted(raw_dir.rglob("*.dng"))


def bare(raw_dir: Path) -> dict:
    """Bare rawpy over every file: imread + postprocess, nothing else."""
    files, pixels = raw_files(raw_dir), 0
    for path in files:
        with rawpy.imread(str(path)) as raw:
            image = raw.postprocess(**POSTPROCESS)
        pixels += image.shape[0] * image.shape[1]
    return {"mp": pixels / 1e6, "files": len(files)}


def stage(raw_dir: Path, workers: int, scratch: Path) -> dict:
    """One ``stages.convert.run`` into a fresh output folder (the stage skips unchanged files)."""
    out = Path(tempfile.mkdtemp(prefix=f"out-w{workers}-", dir=scratch))
    try:
        cfg = override(Params().convert, "convert", workers=workers)
        summary = stages.convert.run(cfg, raw_dir, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if summary["failed"] or summary["converted"] != summary["files"]:
        raise SystemExit(f"convert stage did not convert every file: {summary}")
    return {"mp": summary["megapixels"], "files": summary["files"]}


def measure(kind: str, raw_dir: Path, scratch: Path) -> dict:
    if kind == "bare":
        return benchlib.timed(bare, raw_dir)
    return benchlib.timed(stage, raw_dir, int(kind[-1]), scratch)


def warm_up(warm_dir: Path, scratch: Path) -> None:
    """Untimed bare and stage runs on one scene: lazy imports, allocator and LibRaw first touch."""
    bare(warm_dir)
    stage(warm_dir, 1, scratch)


def subset_dir(raw_dir: Path, scratch: Path, name: str, scenes: int) -> Path:
    """The first ``scenes`` scenes' files (hard links) in SID layout, under ``scratch/name``."""
    files = raw_files(raw_dir)
    keep = sorted({path.name.split("_")[0] for path in files})[:scenes]
    for path in (p for p in files if p.name.split("_")[0] in keep):
        dest = scratch / name / raw_dir.name / path.relative_to(raw_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, dest)
    return scratch / name / raw_dir.name


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


# Parts of the stage: (file name ending, function name) in cProfile's stats, cumulative time;
# "~" is a C function. rawpy is Cython, whose calls cProfile cannot see: imread, unpack and
# postprocess land in the self time of lowlight.raw.decode (LIBRAW).
LIBRAW = "LibRaw: imread + unpack + postprocess (self time of raw.decode)"
PARTS = {
    "sha256 of the RAW file": ("conversion.py", "sha256_file"),
    "per-pixel black map (raw._black_levels)": ("raw.py", "_black_levels"),
    "amplification (raw.amplify_mosaic)": ("raw.py", "amplify_mosaic"),
    "EXIF read (exifread)": ("raw.py", "_camera_name"),
    "JPEG encode + atomic write (imageio.write_image)": ("imageio.py", "write_image"),
    "manifest: read previous": ("conversion.py", "previous_rows"),
    "manifest: write parquet": ("conversion.py", "write_manifest"),
    "planning (conversion.plan_jobs)": ("conversion.py", "plan_jobs"),
}


def profile_stage(raw_dir: Path, scratch: Path) -> dict:
    """cProfile one 1-worker stage run; seconds per part, summed over all files."""
    profiler = cProfile.Profile()
    run = benchlib.timed(lambda: profiler.runcall(stage, raw_dir, 1, scratch))
    stats = pstats.Stats(profiler)
    rows = {label: [0, 0.0] for label in [*PARTS, LIBRAW]}
    for (file, _line, name), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for label, (end, func) in [*PARTS.items(), (LIBRAW, ("raw.py", "decode"))]:
            if name == func and file.replace("\\", "/").endswith(end):
                rows[label][0] += calls
                rows[label][1] += own if label == LIBRAW else cum
    total = stats.total_tt  # type: ignore[attr-defined]
    other = total - sum(v[1] for v in rows.values())
    rows["other (Python glue, tqdm, settings keys, profiler)"] = [0, other]
    return {**run, "total": total, "rows": rows}


def run_row(label: str, r: dict, *extra: str) -> list[str]:
    walls = " / ".join(f"{w:.2f}" for w in r["walls"])
    cpu_ms = 1000 * r["cpu"] / r["mp"]
    return [label, *extra, f"{r['wall']:.2f}", walls, f"{r['ms_per_mp']:.1f}", f"{cpu_ms:.1f}",
            f"{r['cpu'] / r['wall']:.2f}", f"{r['others']:.2f}"]  # fmt: skip


RUN_HEAD = ["best wall (s)", "all runs (s)", "ms / MP", "CPU ms / MP", "CPU / wall", "others"]


def fmt(gain: float) -> str:
    """A wall-time ratio (one thread / as configured) in words."""
    return f"{gain:.2f}x faster" if gain >= 1 else f"{1 / gain:.2f}x slower"


def render(args, info: dict, res: dict) -> list[str]:
    bare, s1, s2 = res["bare"], res["stage1"], res["stage2"]
    h, w = args.size
    lines = benchlib.header(
        SECTION,
        "Conversion speed of `stages.convert.run` (sha256, amplification, LibRaw, JPEG q95, "
        "manifest) against bare `rawpy.imread` + `postprocess` with the same settings.",
        info,
        benchlib.command(args),
        f"Data: {bare['files']} synthetic Bayer DNGs from `stages.synth` ({args.scenes} scenes x "
        f"({FRAMES} short + 1 long), {h}x{w}, seed 0), {bare['mp']:.1f} megapixels in all",
        f"Timing: best of {args.repeat} interleaved rounds, each stage run into a fresh folder; "
        "others = cores other processes used meanwhile (above ~0.2 wall time is pessimistic)",
        f"The whole benchmark took {res['elapsed']:.0f} s, {res['waited']:.0f} s of it waiting "
        "for other processes to go idle.",
    )
    vs_bare = {k: f"{res[k]['ms_per_mp'] / bare['ms_per_mp']:.2f}x" for k in KINDS}
    rows = [run_row(label, res[k], vs_bare[k]) for k, label in KINDS.items()]
    lines += table(["configuration", "vs bare", *RUN_HEAD], rows)
    overhead = s1["ms_per_mp"] / bare["ms_per_mp"]
    lines += benchlib.goals(
        ("stage (1 worker) / bare rawpy, ms per MP", overhead, "<=", GOAL_OVERHEAD),
        ("speed-up, 2 workers vs 1 worker", s1["wall"] / s2["wall"], ">=", GOAL_SPEEDUP),
    )
    cpu_overhead = s1["cpu"] / s1["mp"] / (bare["cpu"] / bare["mp"])
    lines += [f"From CPU time: stage / bare {cpu_overhead:.2f}x; the 2-worker run used "
              f"{s2['cpu'] / s1['cpu']:.2f}x the CPU time of the 1-worker run.", ""]  # fmt: skip
    lines += render_threads(res, info["usable"])
    return lines + render_profile(res["profile"], bare["ms_per_mp"])


def render_threads(res: dict, cores: int) -> list[str]:
    env = f"`{os.environ['OMP_NUM_THREADS']}`" if os.environ.get("OMP_NUM_THREADS") else "unset"
    team = res["omp_team"]
    openmp = rawpy.flags.get("OPENMP") if rawpy.flags else None
    lines = ["### Does LibRaw use several threads by itself?", ""]
    lines += [f"rawpy built with OpenMP: {openmp}. {yes_no(team > 1)}: after its first "
              f"`postprocess` this process holds {team - 1} more thread(s). The configurations "
              "again, each in a fresh subprocess with `OMP_NUM_THREADS=1`:", ""]  # fmt: skip
    rows, gains = [], {}
    for kind, label in KINDS.items():
        default, single = res[kind], res[f"{kind}_omp1"]
        rows += [run_row(label, default, env), run_row(label, single, "1")]
        gains[kind] = single["wall"] / default["wall"]
    lines += table(["configuration", "OMP_NUM_THREADS", *RUN_HEAD], rows, "ll" + "r" * 6)
    s1, s2, one_s1, one_s2 = (res[k] for k in ("stage1", "stage2", "stage1_omp1", "stage2_omp1"))
    effect = "barely change" if abs(gains["bare"] - 1) <= 0.1 else "slow down"
    effect = "speed up" if gains["bare"] > 1.1 else effect
    busy = {k: res[k]["cpu"] / res[k]["wall"] for k in ("bare", "bare_omp1")}
    lines += [
        f"- Wall time with `OMP_NUM_THREADS` {env} against 1: "
        + ", ".join(f"{KINDS[k]} {fmt(g)}" for k, g in gains.items())
        + f". LibRaw's own threads {effect} a single process (bare rawpy keeps "
        f"{busy['bare']:.2f} cores busy, {busy['bare_omp1']:.2f} with one thread).",
        f"- 2 workers against 1 worker, both with `OMP_NUM_THREADS=1`: "
        f"{one_s1['wall'] / one_s2['wall']:.2f}x; 2 workers with 1 thread against "
        f"1 worker with {env}: {s1['wall'] / one_s2['wall']:.2f}x (goal {GOAL_SPEEDUP}x).",
        f"- Ceiling from CPU time on {cores} cores: 2 workers can be at most "
        f"{s1['wall'] / (s2['cpu'] / cores):.2f}x faster than the 1-worker run ({env}) or "
        f"{s1['wall'] / (one_s2['cpu'] / cores):.2f}x (`OMP_NUM_THREADS=1`).",
        "",
    ]
    return lines


def render_profile(prof: dict, bare_ms: float) -> list[str]:
    parts, total, files = prof["rows"], prof["total"], prof["files"]
    per_mp, libraw = 1000 / prof["mp"], parts[LIBRAW][1]
    lines = [
        "### Where the stage's time goes",
        "",
        f"cProfile of one more 1-worker stage run over the first {files} files "
        f"({prof['wall']:.2f} s wall, others {prof['others']:.2f} cores); exclusive seconds.",
        "",
    ]
    rows = [
        [label, calls or "", f"{secs:.2f}", f"{1000 * secs / files:.1f}", f"{secs * per_mp:.1f}",
         f"{100 * secs / total:.1f} %"]
        for label, (calls, secs) in sorted(parts.items(), key=lambda kv: -kv[1][1])
    ]  # fmt: skip
    lines += table(["part", "calls", "seconds", "ms / file", "ms / MP", "share"], rows)
    largest = max(parts, key=lambda k: parts[k][1])
    glue = max((k for k in parts if k != LIBRAW), key=lambda k: parts[k][1])
    lines += [
        f"The largest part is {largest} ({100 * parts[largest][1] / total:.0f} %); the largest "
        f"besides LibRaw is {glue} ({100 * parts[glue][1] / total:.0f} %). LibRaw inside the "
        f"stage: {libraw * per_mp:.1f} ms/MP (bare rawpy: {bare_ms:.1f}); the stage costs "
        f"{total / libraw:.2f}x its LibRaw time under the profiler.",
        "",
    ]
    return lines


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--size", default="1424x2128", help="HxW of each frame (even)")
    p.add_argument("--scenes", type=int, default=12, help="scenes (>= 3)")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # kind, raw, warm, scratch dirs
    args = benchlib.parse(p, argv)
    args.size = parse_size("256x384" if args.quick else args.size)
    args.scenes = 3 if args.quick else args.scenes
    if args.child:  # one measurement in a fresh process (with OMP_NUM_THREADS=1)
        kind, raw_dir, warm_dir, scratch = args.child[0], *map(Path, args.child[1:])
        warm_up(warm_dir, scratch)
        print(json.dumps(measure(kind, raw_dir, scratch)))
        return 0
    libraw = ".".join(str(v) for v in rawpy.libraw_version)
    info = benchlib.machine(False, rawpy=rawpy.__version__, LibRaw=libraw, OpenCV=cv2.__version__)
    began = time.perf_counter()
    with benchlib.scratch("convert", args.keep) as scratch:
        size = "{}x{}".format(*args.size)
        print(f"synthesising {args.scenes} scenes x {FRAMES + 1} frames of {size} ...")
        raw_dir = benchlib.make_raws(scratch / "raw", args.scenes, size, FRAMES)
        for path in raw_files(raw_dir):  # into the page cache before anything is timed
            path.read_bytes()
        warm_dir = subset_dir(raw_dir, scratch, "warm", 1)
        before = thread_count()
        bare(warm_dir)
        res: dict = {"omp_team": thread_count() - before + 1}
        warm_up(warm_dir, scratch)
        runs: dict[str, list[dict]] = {}
        for rep in range(args.repeat):
            print(f"round {rep + 1}/{args.repeat}")
            for kind in KINDS:
                runs.setdefault(kind, []).append(measure(kind, raw_dir, scratch))
            for kind in KINDS:
                child = ["--child", kind, *map(str, (raw_dir, warm_dir, scratch)), "--max-wait=0"]
                run = benchlib.run_child(__file__, child, {"OMP_NUM_THREADS": "1"})
                runs.setdefault(f"{kind}_omp1", []).append(run)
        for kind, kind_runs in runs.items():
            res[kind] = benchlib.best_of(kind_runs)
            res[kind]["ms_per_mp"] = 1000 * res[kind]["wall"] / res[kind]["mp"]
        print("profiling one 1-worker run ...")
        res["profile"] = profile_stage(subset_dir(raw_dir, scratch, "profile", 4), scratch)
    res["elapsed"], res["waited"] = time.perf_counter() - began, benchlib.QUIET.waited
    benchlib.publish(SECTION, render(args, info, res), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
