"""Benchmark of the convert stage; writes the ``## convert`` section of BENCHMARKS.md.

Measures, in one process and on the same synthetic DNGs:

1. ms per megapixel of ``stages.convert`` (1 worker) against bare ``rawpy.imread`` +
   ``raw.postprocess`` with the stage's postprocess settings (goal: stage <= 1.25x bare);
2. the speed-up of the stage with 2 workers against 1 worker (goal: >= 1.7x);
3. whether LibRaw uses several threads by itself (bare and stage re-run in a subprocess with
   ``OMP_NUM_THREADS=1``, plus CPU time / wall time of every configuration);
4. where the stage's time goes (cProfile of one 1-worker run, grouped by component).

Each configuration runs ``--repeat`` times into a fresh output folder (the stage skips unchanged
files otherwise) and the best (minimum) wall time counts. Scratch data lives under bench/_work/
and is removed at the end.

    make bench                          # = .venv/bin/python bench/convert.py
    .venv/bin/python bench/convert.py --quick   # smoke run; prints, leaves BENCHMARKS.md alone
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rawpy

from lowlight import stages
from lowlight.config import Params, override

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work"
BENCHMARKS = ROOT / "BENCHMARKS.md"
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


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def raw_files(raw_dir: Path) -> list[Path]:
    return sorted(raw_dir.rglob("*.dng"))


def run_bare(raw_dir: Path) -> dict:
    """Bare rawpy over every file: imread + postprocess, nothing else."""
    files = raw_files(raw_dir)
    pixels = 0
    cpu, start = cpu_seconds(), time.perf_counter()
    for path in files:
        with rawpy.imread(str(path)) as raw:
            image = raw.postprocess(**POSTPROCESS)
        pixels += image.shape[0] * image.shape[1]
    wall = time.perf_counter() - start
    return {"wall": wall, "cpu": cpu_seconds() - cpu, "mp": pixels / 1e6, "files": len(files)}


def run_stage(raw_dir: Path, workers: int, scratch: Path) -> dict:
    """One ``stages.convert`` run into a fresh output folder (removed afterwards)."""
    cfg = override(Params().convert, "convert", workers=workers)
    out = Path(tempfile.mkdtemp(prefix=f"out-w{workers}-", dir=scratch))
    try:
        cpu, start = cpu_seconds(), time.perf_counter()
        summary = stages.convert(cfg, raw_dir, out)
        wall = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if summary["failed"] or summary["converted"] != summary["files"]:
        raise SystemExit(f"convert stage did not convert every file: {summary}")
    return {"wall": wall, "cpu": cpu, "mp": summary["megapixels"], "files": summary["files"]}


def best_of(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r["wall"])
    return {**best, "ms_per_mp": 1000 * best["wall"] / best["mp"], "walls": [r["wall"] for r in runs]}


def run_child(kind: str, raw_dir: Path, scratch: Path, repeat: int, env: dict) -> dict:
    """Best of ``repeat`` runs of ``kind`` (bare | stage1) in a subprocess with ``env``."""
    cmd = [sys.executable, __file__, "--child", kind, "--raw-dir", str(raw_dir)]
    cmd += ["--scratch", str(scratch), "--repeat", str(repeat)]
    done = subprocess.run(
        cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_main(kind: str, raw_dir: Path, scratch: Path, repeat: int) -> None:
    if kind == "bare":
        runs = [run_bare(raw_dir) for _ in range(repeat)]
    else:
        runs = [run_stage(raw_dir, 1, scratch) for _ in range(repeat)]
    print(json.dumps(best_of(runs)))


# Components of convert_one, matched in cProfile's stats by (file name ending, function name).
# Cumulative times nest (encode is inside write_image), so "self" columns are derived below.
COMPONENTS = [
    ("sha256 of the RAW file", ("conversion.py", "sha256_file")),
    ("rawpy.imread (open + unpack)", ("rawpy/__init__.py", "imread")),
    ("per-pixel black map", ("raw.py", "_black_map")),
    ("amplification (amplify_mosaic)", ("raw.py", "amplify_mosaic")),
    ("raw.postprocess (LibRaw)", ("~", "<method 'postprocess' of 'rawpy._rawpy.RawPy' objects>")),
    ("EXIF read (exifread)", ("raw.py", "_camera_name")),
    ("JPEG encode (cv2.imencode)", ("~", "<built-in method imencode>")),
    ("RGB->BGR copy", ("imageio.py", "encode")),  # encode minus imencode
    ("atomic write of the JPEG", ("imageio.py", "write_image")),  # write_image minus encode
    ("manifest: read previous", ("conversion.py", "previous_rows")),
    ("manifest: write parquet", ("conversion.py", "write_manifest")),
    ("planning (list + plan_jobs)", ("conversion.py", "plan_jobs")),
]


def find_stat(stats: dict, file_end: str, func: str) -> tuple[int, float]:
    """(calls, cumulative seconds) of the function, summed over matching entries."""
    calls, cum = 0, 0.0
    for (file, _line, name), (_cc, nc, _tt, ct, _callers) in stats.items():
        if name == func and (file == file_end or file.replace("\\", "/").endswith(file_end)):
            calls += nc
            cum += ct
    return calls, cum


def profile_stage(raw_dir: Path, scratch: Path) -> dict:
    """cProfile one 1-worker stage run; seconds per component, summed over all files."""
    cfg = override(Params().convert, "convert", workers=1)
    out = Path(tempfile.mkdtemp(prefix="out-profile-", dir=scratch))
    profiler = cProfile.Profile()
    try:
        start = time.perf_counter()
        profiler.enable()
        summary = stages.convert(cfg, raw_dir, out)
        profiler.disable()
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    found = {label: find_stat(stats, *key) for label, key in COMPONENTS}
    calls_list, listing = find_stat(stats, "conversion.py", "list_raw_files")
    rows = {label: list(value) for label, value in found.items()}
    # Make nested entries exclusive.
    rows["RGB->BGR copy"][1] -= found["JPEG encode (cv2.imencode)"][1]
    rows["atomic write of the JPEG"][1] -= found["RGB->BGR copy"][1]
    rows["planning (list + plan_jobs)"][1] += listing
    _, convert_total = find_stat(stats, "stages.py", "convert")
    accounted = sum(v[1] for v in rows.values())
    rows["other (tqdm, pool, Python glue, profiler)"] = [0, convert_total - accounted]
    return {"wall": wall, "files": summary["files"], "mp": summary["megapixels"], "rows": rows}


# --------------------------------------------------------------------------- reporting


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown"
    import cv2

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable": usable,
        "python": platform.python_version(),
        "rawpy": rawpy.__version__,
        "libraw": ".".join(str(v) for v in rawpy.libraw_version),
        "openmp": rawpy.flags.get("OPENMP") if rawpy.flags else None,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "rev": rev,
    }


def yes_no(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def render(args: argparse.Namespace, info: dict, res: dict) -> str:
    bare, s1, s2 = res["bare"], res["stage1"], res["stage2"]
    overhead = s1["ms_per_mp"] / bare["ms_per_mp"]
    speedup = s1["wall"] / s2["wall"]
    command = MAKE_COMMAND + "".join(f" {a}" for a in args.argv)
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    files, mp = bare["files"], bare["mp"]
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
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable']} usable), "
        f"{info['os']}",
        f"- Python {info['python']}, rawpy {info['rawpy']}, LibRaw {info['libraw']} "
        f"(OpenMP: {info['openmp']}), numpy {info['numpy']}, OpenCV {info['opencv']}",
        f"- Code: `{info['rev']}`",
        f"- Command: `make bench` (runs `{command}`)",
        f"- Data: {files} synthetic uncompressed Bayer DNGs from `stages.synth` "
        f"({args.scenes} scenes x ({args.frames} short + 1 long), {args.size[0]}x{args.size[1]}, "
        f"seed 0), {mp:.1f} megapixels in all",
        f"- Timing: `time.perf_counter`, best of {args.repeat} runs per configuration (runs "
        "interleaved), each stage run into a fresh output folder; CPU/wall = user+sys CPU time "
        "(this process and its pool workers) / wall time.",
        "",
        "| configuration | best wall (s) | ms / MP | CPU / wall | vs bare rawpy |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in [
        ("bare rawpy (imread + postprocess)", bare),
        ("convert stage, 1 worker", s1),
        ("convert stage, 2 workers", s2),
    ]:
        lines.append(
            f"| {label} | {r['wall']:.2f} | {r['ms_per_mp']:.1f} | {r['cpu'] / r['wall']:.2f} "
            f"| {r['ms_per_mp'] / bare['ms_per_mp']:.2f}x |"
        )
    lines += [
        "",
        "| metric | measured | goal | met |",
        "|---|---:|---:|:---:|",
        f"| stage (1 worker) / bare rawpy, ms per MP | {overhead:.2f}x | <= {GOAL_OVERHEAD}x "
        f"| {yes_no(overhead <= GOAL_OVERHEAD)} |",
        f"| speed-up, 2 workers vs 1 worker | {speedup:.2f}x | >= {GOAL_SPEEDUP}x "
        f"| {yes_no(speedup >= GOAL_SPEEDUP)} |",
        "",
    ]
    lines += render_threads(res)
    if res.get("profile"):
        lines += render_profile(res["profile"])
    return "\n".join(lines).rstrip() + "\n"


def render_threads(res: dict) -> list[str]:
    bare, s1, s2 = res["bare"], res["stage1"], res["stage2"]
    lines = ["### Does LibRaw use several threads by itself?", ""]
    omp_bare, omp_s1 = res.get("bare_omp1"), res.get("stage1_omp1")
    if not omp_bare:
        return lines + ["Not measured (`--no-threads-check`).", ""]
    bare_gain = omp_bare["wall"] / bare["wall"]
    s1_gain = omp_s1["wall"] / s1["wall"]
    lines += [
        "The rawpy wheel is built with OpenMP (`rawpy.flags['OPENMP']`) and bundles libgomp. "
        "The same runs in a subprocess with `OMP_NUM_THREADS=1`:",
        "",
        "| configuration | threads | best wall (s) | ms / MP | CPU / wall |",
        "|---|---|---:|---:|---:|",
        f"| bare rawpy | default | {bare['wall']:.2f} | {bare['ms_per_mp']:.1f} "
        f"| {bare['cpu'] / bare['wall']:.2f} |",
        f"| bare rawpy | `OMP_NUM_THREADS=1` | {omp_bare['wall']:.2f} "
        f"| {omp_bare['ms_per_mp']:.1f} | {omp_bare['cpu'] / omp_bare['wall']:.2f} |",
        f"| convert stage, 1 worker | default | {s1['wall']:.2f} | {s1['ms_per_mp']:.1f} "
        f"| {s1['cpu'] / s1['wall']:.2f} |",
        f"| convert stage, 1 worker | `OMP_NUM_THREADS=1` | {omp_s1['wall']:.2f} "
        f"| {omp_s1['ms_per_mp']:.1f} | {omp_s1['cpu'] / omp_s1['wall']:.2f} |",
        "",
    ]
    threaded = bare_gain > 1.1 or bare["cpu"] / bare["wall"] > 1.2
    if threaded:
        lines.append(
            f"Yes: with its default threads bare rawpy is {bare_gain:.2f}x faster than with one "
            f"thread (CPU/wall {bare['cpu'] / bare['wall']:.2f}), and the 1-worker stage "
            f"{s1_gain:.2f}x. So the \"1 worker\" baseline already uses more than one core for "
            "LibRaw's share of the work, and the 2-worker speed-up cannot reach the core count. "
            f"Against a truly single-threaded worker (`OMP_NUM_THREADS=1`) 2 workers are "
            f"{omp_s1['wall'] / s2['wall']:.2f}x faster."
        )
    else:
        lines.append(
            f"No measurable effect: one thread vs default is {bare_gain:.2f}x for bare rawpy "
            f"(CPU/wall {bare['cpu'] / bare['wall']:.2f}) and {s1_gain:.2f}x for the 1-worker "
            "stage, so the 2-worker speed-up is not limited by LibRaw's own threads."
        )
    return lines + [""]


def render_profile(prof: dict) -> list[str]:
    total = sum(v[1] for v in prof["rows"].values())
    lines = [
        "### Where the stage's time goes",
        "",
        f"cProfile of one 1-worker stage run over the same {prof['files']} files "
        f"({prof['wall']:.2f} s wall under the profiler; calls are per component, "
        "times exclusive of the other rows):",
        "",
        "| component | calls | seconds | ms / file | ms / MP | share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, (calls, secs) in sorted(prof["rows"].items(), key=lambda kv: -kv[1][1]):
        lines.append(
            f"| {label} | {calls or ''} | {secs:.2f} | {1000 * secs / prof['files']:.1f} "
            f"| {1000 * secs / prof['mp']:.1f} | {100 * secs / total:.1f} % |"
        )
    return lines + [""]


def replace_section(path: Path, text: str) -> None:
    """Replace (or append) the ``## convert`` section of ``path``, atomically."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\nWritten by `bench/*.py`.\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        head = "".join(lines).rstrip("\n")
        new = f"{head}\n\n{text}"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        head = "".join(lines[:start])
        new = head + text + ("\n" + tail if tail else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(new)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
    # Internal: a measurement in a subprocess (used for OMP_NUM_THREADS=1).
    parser.add_argument("--child", choices=["bare", "stage1"], help=argparse.SUPPRESS)
    parser.add_argument("--raw-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.size, args.scenes, args.repeat = "256x384", 3, 1
        args.no_write = True
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.raw_dir, args.scratch, args.repeat)
        return 0

    info = machine()
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
        run_bare(raw_dir)  # warm-up: imports, allocator, first-touch of LibRaw

        runs: dict[str, list[dict]] = {"bare": [], "stage1": [], "stage2": []}
        for rep in range(args.repeat):
            print(f"run {rep + 1}/{args.repeat}")
            runs["bare"].append(run_bare(raw_dir))
            runs["stage1"].append(run_stage(raw_dir, 1, scratch))
            runs["stage2"].append(run_stage(raw_dir, 2, scratch))
        res = {name: best_of(r) for name, r in runs.items()}

        if not args.no_threads_check:
            print("OMP_NUM_THREADS=1 runs in a subprocess ...")
            one = {"OMP_NUM_THREADS": "1"}
            res["bare_omp1"] = run_child("bare", raw_dir, scratch, args.repeat, one)
            res["stage1_omp1"] = run_child("stage1", raw_dir, scratch, args.repeat, one)
        if not args.no_profile:
            print("profiling one 1-worker run ...")
            res["profile"] = profile_stage(raw_dir, scratch)
    finally:
        if args.keep:
            print(f"kept scratch data in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
            if WORK.is_dir() and not any(WORK.iterdir()):
                WORK.rmdir()

    text = render(args, info, res)
    print()
    print(text)
    if not args.no_write:
        replace_section(args.output, text)
        print(f"wrote the '{SECTION}' section of {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
