"""Benchmark of the patch stage and its reader; writes the ``## patches`` section of BENCHMARKS.md.

PatchWriter against bare pyarrow (goal <= 1.5x), peak RSS of the patch stage for 4x against 1x
the images (goal <= 1.2x), PatchStream loader against the training step (goal >= 5x).

    .venv/bin/python bench/patches.py           # full run, updates BENCHMARKS.md
    .venv/bin/python bench/patches.py --quick   # smoke run; prints only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import benchlib  # bench/benchlib.py, beside this script
from benchlib import table
from lowlight import modes, patches, windows
from lowlight.config import parse_size

SECTION = "## patches"
GOAL_WRITE = 1.5  # PatchWriter time / bare pyarrow time, at most
GOAL_RSS = 1.2  # peak RSS with 4x the images / with 1x, at most
GOAL_LOADER = 5.0  # loader patches/s / training step patches/s, at least
SIZE, STRIDE = 100, 50  # the seed's patch grid (PatchConfig defaults)
ROW_GROUP, PART_ROWS = 1024, 8192  # PatchConfig defaults
BATCH = 16


def make_windows(count: int, height: int, width: int) -> list[tuple]:
    """``count`` pairs as the patch stage hands them to the writer:
    (pair_id, scene_id, ratio, starts, dark windows, bright windows)."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        dark, bright = benchlib.synthetic_pair(rng, height, width)
        starts, dark_w = windows.cut_windows(dark, SIZE, STRIDE)
        bright_w = windows.cut_windows(bright, SIZE, STRIDE)[1]
        items.append((f"{i:05d}_00_0.1s", f"{i:05d}", 100.0, starts, dark_w, bright_w))
    return items


def write_lowlight(folder: Path, spec, items: list[tuple]) -> dict:
    folder.mkdir(parents=True)
    with patches.PatchWriter(folder, spec, ROW_GROUP, PART_ROWS) as writer:
        for item in items:
            writer.add(*item)
    return {"rows": writer.rows}


def write_bare(folder: Path, spec, items: list[tuple]) -> dict:
    """The same layout as PatchWriter (row groups, parts, zstd, ``spec.schema()``) with plain
    pyarrow, the pixel columns zero-copy from the numpy buffers."""
    folder.mkdir(parents=True)
    schema = spec.schema()
    types = [schema.field(name).type for name in ("dark", "bright")]
    tables = []
    for pair_id, scene_id, ratio, starts, *pixels in items:
        n, starts = len(starts), np.ascontiguousarray(starts, dtype=np.int32)
        ids = [pa.scalar(pair_id), pa.scalar(scene_id), pa.scalar(ratio, pa.float32())]
        columns = [*(pa.repeat(v, n) for v in ids), pa.array(starts[:, 0]), pa.array(starts[:, 1])]
        for kind, array in zip(types, pixels, strict=True):
            buffer = pa.py_buffer(np.ascontiguousarray(array))
            columns.append(pa.FixedSizeBinaryArray.from_buffers(kind, n, [None, buffer]))
        tables.append(pa.Table.from_arrays(columns, schema=schema))
    whole = pa.concat_tables(tables)
    for part, start in enumerate(range(0, len(whole), PART_ROWS)):
        path = folder / patches.PART_NAME.format(index=part)
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            writer.write_table(whole.slice(start, PART_ROWS), row_group_size=ROW_GROUP)
    return {"rows": len(whole)}


def layout(folder: Path) -> list:
    """(name, row group sizes, table) of each part: both writers must make the same."""
    parts = [(p, pq.ParquetFile(p).metadata) for p in sorted(folder.glob("*.parquet"))]
    return [(p.name, [m.row_group(i).num_rows for i in range(m.num_row_groups)], pq.read_table(p))
            for p, m in parts]  # fmt: skip


def bench_write(args, scratch: Path) -> dict:
    height, width = args.image_size
    print(f"cutting {args.images} synthetic pairs of {height}x{width} into windows ...")
    items = make_windows(args.images, height, width)
    spec = modes.get("rgb").patch_spec(SIZE, STRIDE, "uint8", "")
    count = sum(len(i[3]) for i in items)
    writers = {"lowlight `PatchWriter`": write_lowlight, "bare pyarrow": write_bare}
    for i, fn in enumerate(writers.values()):  # warm-up, and the fairness check
        fn(scratch / f"check-{i}", spec, items[:2])
    if layout(scratch / "check-0") != layout(scratch / "check-1"):
        raise SystemExit("PatchWriter and bare pyarrow wrote different parts")
    runs: dict[str, list[dict]] = {name: [] for name in writers}
    for rep in range(args.repeat):
        for i, (name, fn) in enumerate(writers.items()):
            folder = scratch / f"write-{i}-{rep}"
            run = benchlib.timed(fn, folder, spec, items)
            if run["rows"] != count:
                raise SystemExit(f"{name} wrote {run['rows']} rows, expected {count}")
            run["out_mb"] = sum(p.stat().st_size for p in folder.glob("*.parquet")) / 1e6
            runs[name].append(run)
    raw_mb = sum(i[4].nbytes + i[5].nbytes for i in items) / 1e6
    best = {k: benchlib.best_of(v) for k, v in runs.items()}
    return {"patches": count, "raw_mb": raw_mb, "runs": best}


def rss_child(pairs_path: Path, out: Path) -> None:
    """In a fresh process: the whole patch stage; prints its peak RSS as JSON."""
    from lowlight import stages
    from lowlight.config import Params

    imports, start = benchlib.peak_rss_mib(), time.perf_counter()
    summary = stages.patch.run(Params().patch, pairs_path, out, seed=0)
    wall = time.perf_counter() - start
    print(
        json.dumps(
            {"imports_mib": imports, "peak_mib": benchlib.peak_rss_mib(), "wall": wall, **summary}
        )
    )


def bench_rss(args, scratch: Path) -> dict:
    size, res = "{}x{}".format(*args.size), {}
    for label, scenes in (("1x", args.scenes), ("4x", 4 * args.scenes)):
        root = scratch / f"stage-{label}"
        print(f"{label}: synth + convert + pair of {scenes} scenes of {size}, patch in a child ...")
        pairs_path = benchlib.make_pairs(root, scenes, size)
        res[label] = benchlib.run_child(
            __file__, ["--rss-child", str(pairs_path), str(root / "patches")]
        )
        res[label]["scenes"] = scenes
    return res


def loader_epoch(folder: Path | None, workers: int, count: int) -> dict:
    """One epoch of PatchStream(folder) through a DataLoader, consumed by a loop that only
    counts; with no folder, ``count`` ready tensors (the cost of batching and transfer)."""
    import torch
    from torch.utils.data import DataLoader

    from lowlight.dataset import PatchStream

    item = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    dataset = PatchStream(folder, seed=0) if folder is not None else [(item, item)] * count
    start, seen, first = time.perf_counter(), 0, None
    for dark, _bright in DataLoader(dataset, batch_size=BATCH, num_workers=workers):
        seen += dark.shape[0]
        first = first or (time.perf_counter() - start, seen)
    if seen != len(dataset):
        raise SystemExit(f"an epoch yielded {seen} patches, the dataset holds {len(dataset)}")
    return {"patches": seen, "first_batch": first[0], "first_n": first[1]}


def train_step_rate(seconds: float) -> float:
    """Patches per second ``lowlight.train.train_step`` consumes at batch ``BATCH`` on the CPU,
    on ready random batches, over at least ``seconds`` and 3 steps after one warm-up step."""
    import torch

    from lowlight import train
    from lowlight.config import Params, override

    params = Params()
    cfg = override(params.train, "train", batch_size=BATCH, device="cpu")
    trainer = train.Trainer.create(params.model, cfg, seed=0)
    gen = torch.Generator().manual_seed(0)
    dark, bright = (torch.rand((BATCH, 3, SIZE, SIZE), generator=gen) for _ in range(2))
    train.train_step(trainer, dark, bright)
    benchlib.QUIET.wait()
    steps, start = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - start < seconds:
        train.train_step(trainer, dark, bright)
        steps += 1
    return steps * BATCH / (time.perf_counter() - start)


def bench_loader(args, folder: Path) -> dict:
    count = sum(g.rows for g in patches.scan(folder)[1])
    configs = {("`PatchStream`", w): folder for w in (2, 0)}
    configs |= {("ready tensors (reference)", w): None for w in (2, 0)}
    runs: dict[tuple, list[dict]] = {c: [] for c in configs}
    for _ in range(args.repeat):
        for (name, workers), source in configs.items():
            runs[name, workers].append(benchlib.timed(loader_epoch, source, workers, count))
    seconds = 2.0 if args.quick else 10.0
    best = {c: benchlib.best_of(r) for c, r in runs.items()}
    return {"runs": best, "train_rate": train_step_rate(seconds), "train_seconds": seconds}


def render(args, info: dict, res: dict) -> list[str]:
    lines = benchlib.header(
        SECTION,
        "Writing, memory and reading of the patch Parquet parts (`lowlight.patches`, "
        "`stages.patch.run`, `lowlight.dataset.PatchStream`); "
        f"{SIZE}x{SIZE} RGB uint8 windows at stride {STRIDE}, row groups of {ROW_GROUP}, "
        f"parts of {PART_ROWS} rows, zstd (the `patch` defaults in params).",
        info,
        benchlib.command(args),
        f"Timing: best of {args.repeat} interleaved runs; CPU/wall = user+sys CPU time (with "
        "children) / wall time; others = cores other processes used meanwhile.",
    )
    w, (h, wd) = res["write"], args.image_size
    low, bare = w["runs"].values()
    lines += [
        "### 1. Write throughput: PatchWriter vs bare pyarrow",
        "",
        f"The same {w['patches']} windows ({w['raw_mb']:.0f} MB of pixels) from {args.images} "
        f"synthetic {h}x{wd} uint8 pairs, in memory, to the local disk; bare pyarrow writes the "
        "same tables and row groups (checked) with zero-copy pixel columns.",
        "",
    ]
    rows = [[name, f"{r['wall']:.2f}", f"{w['patches'] / r['wall']:,.0f}",
             f"{w['raw_mb'] / r['wall']:.0f}", f"{r['cpu'] / r['wall']:.2f}", f"{r['others']:.2f}",
             f"{r['out_mb']:.0f}", ", ".join(f"{v:.2f}" for v in r["walls"])]
            for name, r in w["runs"].items()]  # fmt: skip
    head = ["writer", "best wall (s)", "patches/s", "MB/s (pixels)", "CPU/wall", "others"]
    lines += table([*head, "on disk (MB)", "all walls (s)"], rows, "l" + "r" * 6 + "l")
    lines += benchlib.goals(
        ("PatchWriter time / bare pyarrow time", low["wall"] / bare["wall"], "<=", GOAL_WRITE)
    )
    one, four = res["rss"]["1x"], res["rss"]["4x"]
    patched = {k: v["train_patches"] + v["val_patches"] for k, v in res["rss"].items()}
    lines += [
        "### 2. Peak RSS of the patch stage: 1x vs 4x the images",
        "",
        f"`stages.patch.run(Params().patch, pairs, out, seed=0)` in a fresh subprocess per size, "
        f"over `stages.synth` scenes ({args.size[0]}x{args.size[1]}, 1 short frame each, seed 0) "
        "converted with the default params and paired. Peak = the child's `VmHWM` at the end.",
        "",
    ]
    rows = [[k, v["scenes"], f"{v['train_pairs'] + v['val_pairs']} ({v['train_pairs']} + "
             f"{v['val_pairs']})", patched[k], f"{v['imports_mib']:.0f}", f"{v['peak_mib']:.0f}",
             f"{v['wall']:.2f}", f"{patched[k] / v['wall']:,.0f}"]
            for k, v in res["rss"].items()]  # fmt: skip
    head = ["data", "scenes", "patched pairs (train + val)", "patches", "RSS after imports (MiB)"]
    lines += table([*head, "peak RSS (MiB)", "stage wall (s)", "patches/s"], rows)
    what = f"peak RSS 4x / 1x (patches {patched['4x'] / patched['1x']:.2f}x)"
    lines += benchlib.goals((what, four["peak_mib"] / one["peak_mib"], "<=", GOAL_RSS))
    return lines + render_loader(res["loader"])


def render_loader(r: dict) -> list[str]:
    lines = [
        "### 3. Loader throughput: PatchStream + DataLoader",
        "",
        f"One epoch of the 4x run's train patches through `DataLoader(batch_size={BATCH})`; "
        "steady = after the first batch; ready tensors = the DataLoader's own cost.",
        "",
    ]
    rows = []
    for (name, workers), v in r["runs"].items():
        steady = (v["patches"] - v["first_n"]) / (v["wall"] - v["first_batch"])
        rows.append([name, workers, v["patches"], f"{v['wall']:.2f}", f"{v['first_batch']:.2f}",
                     f"{v['patches'] / v['wall']:,.0f}", f"{steady:,.0f}",
                     f"{v['cpu'] / v['wall']:.2f}", f"{v['others']:.2f}"])  # fmt: skip
    head = ["dataset", "num_workers", "patches", "epoch wall (s)", "first batch (s)"]
    lines += table([*head, "patches/s", "steady patches/s", "CPU/wall", "others"], rows)
    rate = {w: v["patches"] / v["wall"] for (name, w), v in r["runs"].items() if "Stream" in name}
    lines += [
        f"Loader: {rate[2]:,.0f} patches/s with 2 workers, {rate[0]:,.0f} with 0; training step "
        f"(`lowlight.train.train_step`, default model and params, CPU, batch {BATCH} of ready "
        f"patches, over {r['train_seconds']:.0f} s): {r['train_rate']:,.1f} patches/s.",
        "",
    ]
    return lines + benchlib.goals(
        ("loader (2 workers) / training step", rate[2] / r["train_rate"], ">=", GOAL_LOADER)
    )


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--images", type=int, default=8, help="pairs for the write benchmark")
    p.add_argument("--image-size", default="1416x2120", help="HxW of the write benchmark's images")
    p.add_argument("--scenes", type=int, default=8, help="scenes at 1x for RSS (>= 3)")
    p.add_argument("--size", default="1024x1536", help="HxW of the synth frames for RSS")
    p.add_argument("--rss-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = benchlib.parse(p, argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    if args.quick:
        args.images, args.image_size, args.scenes, args.size = 2, "356x530", 3, "256x384"
    args.image_size, args.size = parse_size(args.image_size), parse_size(args.size)
    info = benchlib.machine(pyarrow=pa.__version__)
    with benchlib.scratch("patches", args.keep) as scratch:
        res = {"write": bench_write(args, scratch), "rss": bench_rss(args, scratch)}
        res["loader"] = bench_loader(args, scratch / "stage-4x" / "patches" / "train")
    benchlib.publish(SECTION, render(args, info, res), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
