"""How fast is convert: the stage (1 and 2 workers) against bare ``rawpy.imread`` +
``postprocess`` (goals: stage <= 1.25x bare, 2 workers >= 1.7x as fast as 1); writes the
``## convert`` section of BENCHMARKS.md.

    make bench                                   # = .venv/bin/python bench/convert.py
    .venv/bin/python bench/convert.py --quick    # smoke run; prints only
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import rawpy

import benchlib  # bench/benchlib.py, beside this script
from benchlib import table
from lowlight import stages
from lowlight.config import Params, override, parse_size

SECTION = "## convert"
FRAMES = 2  # short frames per scene (SID has up to ~10 per long exposure)
KINDS = {"bare": "bare rawpy (imread + postprocess)", "stage1": "convert stage, 1 worker",
         "stage2": "convert stage, 2 workers"}  # fmt: skip
# The settings lowlight.raw.decode passes to postprocess for JPEG output.
POSTPROCESS = dict(use_camera_wb=True, no_auto_bright=True, output_color=rawpy.ColorSpace.sRGB,
                   gamma=(2.4, 12.92), output_bps=8)  # fmt: skip


def bare(raw_dir: Path) -> dict:
    """Bare rawpy over every file: imread + postprocess, nothing else."""
    files, pixels = sorted(raw_dir.rglob("*.dng")), 0
    for path in files:
        with rawpy.imread(str(path)) as raw:
            image = raw.postprocess(**POSTPROCESS)
        pixels += image.shape[0] * image.shape[1]
    return {"mp": pixels / 1e6, "files": len(files)}


def stage(raw_dir: Path, workers: int, scratch: Path) -> dict:
    """One ``stages.convert.run`` into a fresh output folder (the stage skips unchanged files)."""
    out = Path(tempfile.mkdtemp(prefix=f"out-w{workers}-", dir=scratch))
    try:
        summary = stages.convert.run(override(Params().convert, "convert", workers=workers),
                                     raw_dir, out)  # fmt: skip
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if summary["failed"] or summary["converted"] != summary["files"]:
        raise SystemExit(f"convert stage did not convert every file: {summary}")
    return {"mp": summary["megapixels"], "files": summary["files"]}


def render(args, info: dict, res: dict) -> list[str]:
    bare_, s1, s2 = (res[k] for k in KINDS)
    per_mp = {k: res[k]["wall"] / res[k]["mp"] for k in KINDS}
    h, w = args.size
    lines = benchlib.header(
        SECTION,
        "Conversion speed of `stages.convert.run` (sha256, amplification, LibRaw, JPEG q95, "
        "manifest) against bare `rawpy.imread` + `postprocess` with the same settings.",
        info,
        benchlib.command(args),
        f"Data: {bare_['files']} synthetic Bayer DNGs from `stages.synth` ({args.scenes} scenes x "
        f"({FRAMES} short + 1 long), {h}x{w}, seed 0), {bare_['mp']:.1f} megapixels in all",
        f"Timing: best of {args.repeat} interleaved rounds after a warm-up on the first scene, "
        "each stage run into a fresh folder; CPU = user + sys of the process and its workers; "
        "others = cores other processes used meanwhile (above ~0.2 wall time is pessimistic)",
        f"The whole benchmark took {res['elapsed']:.0f} s, {res['waited']:.0f} s of it waiting "
        "for other processes to go idle.",
    )
    rows = [[label, f"{r['wall']:.2f}", " / ".join(f"{v:.2f}" for v in r["walls"]),
             f"{1000 * r['wall'] / r['mp']:.1f}", f"{1000 * r['cpu'] / r['mp']:.1f}",
             f"{r['cpu'] / r['wall']:.2f}", f"{r['others']:.2f}",
             f"{per_mp[k] / per_mp['bare']:.2f}x"]
            for k, label in KINDS.items() for r in [res[k]]]  # fmt: skip
    lines += table(["configuration", "best wall (s)", "all runs (s)", "ms / MP", "CPU ms / MP",
                    "CPU / wall", "others (cores)", "vs bare"], rows)  # fmt: skip
    overhead, speedup = per_mp["stage1"] / per_mp["bare"], s1["wall"] / s2["wall"]
    lines += benchlib.goals(("stage (1 worker) / bare rawpy, ms per MP", overhead, "<=", 1.25),
                            ("speed-up, 2 workers vs 1 worker", speedup, ">=", 1.7))  # fmt: skip
    ceiling = s1["wall"] / (s2["cpu"] / info["usable"])
    cpu_ratio = s1["cpu"] / s1["mp"] / (bare_["cpu"] / bare_["mp"])
    lines += [f"From CPU time: stage / bare {cpu_ratio:.2f}x; the 2-worker run used "
              f"{s2['cpu'] / s1['cpu']:.2f}x the CPU time of the 1-worker run, so on "
              f"{info['usable']} cores it can be at most {ceiling:.2f}x as fast (LibRaw's own "
              "OpenMP threads already use part of the second core).", ""]  # fmt: skip
    return lines


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--size", default="1424x2128", help="HxW of each frame (even)")
    p.add_argument("--scenes", type=int, default=12, help="scenes (>= 3)")
    args = benchlib.parse(p, argv)
    args.size = parse_size("256x384" if args.quick else args.size)
    args.scenes = 3 if args.quick else args.scenes
    libraw = ".".join(str(v) for v in rawpy.libraw_version)
    info = benchlib.machine(False, rawpy=rawpy.__version__, LibRaw=libraw, OpenCV=cv2.__version__)
    began = time.perf_counter()
    with benchlib.scratch("convert", args.keep) as scratch:
        size = "{}x{}".format(*args.size)
        print(f"synthesising {args.scenes} scenes x {FRAMES + 1} frames of {size} ...")
        raw_dir = benchlib.make_raws(scratch / "raw", args.scenes, size, FRAMES)
        warm = scratch / "warm" / raw_dir.name  # the first scene: imports, allocator, LibRaw
        files = sorted(raw_dir.rglob("*.dng"))
        for path in files:  # into the page cache before any timing
            path.read_bytes()
            if path.name.split("_")[0] == min(f.name.split("_")[0] for f in files):
                (warm / path.relative_to(raw_dir)).parent.mkdir(parents=True, exist_ok=True)
                (warm / path.relative_to(raw_dir)).hardlink_to(path)
        bare(warm)
        stage(warm, 1, scratch)
        runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
        for rep in range(args.repeat):
            print(f"round {rep + 1}/{args.repeat}")
            for kind in KINDS:
                call = (bare, raw_dir) if kind == "bare" else (stage, raw_dir, int(kind[-1]),
                                                               scratch)  # fmt: skip
                runs[kind].append(benchlib.timed(*call))
        res = {kind: benchlib.best_of(kind_runs) for kind, kind_runs in runs.items()}
    res["elapsed"], res["waited"] = time.perf_counter() - began, benchlib.QUIET["waited"]
    benchlib.publish(SECTION, render(args, info, res), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
