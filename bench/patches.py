"""How fast is patch: the patch stage's speed and peak RSS for 4x against 1x the images (goal
<= 1.2x: it streams), and reading: PatchStream through a DataLoader from the local disk and from
S3 (moto_server on loopback; the S3 row was ``## scale``'s). Whether training waits for the
loader is bench/train.py's data-wait share. Writes the ``## patches`` section of BENCHMARKS.md.

    .venv/bin/python bench/patches.py           # full run, updates BENCHMARKS.md
    .venv/bin/python bench/patches.py --quick   # smoke run; prints only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock

import pyarrow as pa

import benchlib  # bench/benchlib.py, beside this script
from benchlib import table
from lowlight.config import Params, parse_size

SECTION = "## patches"
GOAL_RSS = 1.2  # peak RSS with 4x the images / with 1x, at most
BATCH = 16  # TrainConfig.batch_size


def rss_child(pairs_path: Path, out: Path) -> None:
    """In a fresh process: the whole patch stage; prints its peak RSS as JSON."""
    from lowlight import stages

    imports, start = benchlib.peak_rss_mib(), time.perf_counter()
    summary = stages.patch.run(Params().patch, pairs_path, out, seed=0)
    wall = time.perf_counter() - start
    print(json.dumps({"imports_mib": imports, "peak_mib": benchlib.peak_rss_mib(), "wall": wall,
                      **summary}))  # fmt: skip


def bench_rss(args, scratch: Path) -> dict:
    size, res = "{}x{}".format(*args.size), {}
    for label, scenes in (("1x", args.scenes), ("4x", 4 * args.scenes)):
        root = scratch / f"stage-{label}"
        print(f"{label}: synth + convert + pair of {scenes} scenes of {size}, patch in a child ...")
        child = ["--rss-child", str(benchlib.make_pairs(root, scenes, size)), str(root / "patches")]
        res[label] = {**benchlib.run_child(__file__, child), "scenes": scenes}
    return res


def loader_epoch(source: str, workers: int) -> dict:
    """One epoch of PatchStream(source) through a DataLoader, consumed by a loop that only
    counts; the time to the first batch (worker start-up, the shuffle buffer's fill)."""
    from torch.utils.data import DataLoader

    from lowlight.dataset import PatchStream

    dataset = PatchStream(source, seed=0)
    start, seen, first = time.perf_counter(), 0, None
    for dark, _bright in DataLoader(dataset, batch_size=BATCH, num_workers=workers):
        seen += dark.shape[0]
        first = first or (time.perf_counter() - start, seen)
    if seen != len(dataset):
        raise SystemExit(f"an epoch yielded {seen} patches, the dataset holds {len(dataset)}")
    return {"patches": seen, "first_batch": first[0], "first_n": first[1]}


@contextlib.contextmanager
def moto_bucket(folder: Path):
    """``folder`` copied to s3://bench/ on a moto_server on loopback, with the environment that
    points pyarrow's S3 client at it; the server stops afterwards."""
    from lowlight import storage

    port = benchlib.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    log = folder.parent / "moto.log"
    with benchlib.server(moto, endpoint, log), mock.patch.dict(os.environ, env):
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        storage.copy_tree(folder, f"s3://bench/{folder.name}")
        yield f"s3://bench/{folder.name}"


def bench_loader(args, folder: Path) -> dict:
    configs = {("`PatchStream`, local disk", w): str(folder) for w in (2, 0)}
    runs: dict[tuple, list[dict]] = {c: [] for c in configs}
    for _ in range(args.repeat):
        for (name, workers), source in configs.items():
            runs[name, workers].append(benchlib.timed(loader_epoch, source, workers))
    with moto_bucket(folder) as uri:  # the same patches from S3
        s3 = [benchlib.timed(loader_epoch, uri, 0) for _ in range(args.repeat)]
    runs[("`PatchStream`, s3:// (moto_server)", 0)] = s3
    return {c: benchlib.best_of(r) for c, r in runs.items()}


def render(args, info: dict, res: dict) -> list[str]:
    cfg = Params().patch
    lines = benchlib.header(
        SECTION,
        "The patch stage and the reader of its Parquet parts (`stages.patch.run`, "
        f"`lowlight.dataset.PatchStream`); {cfg.size}x{cfg.size} RGB uint8 windows at stride "
        f"{cfg.stride}, row groups of {cfg.row_group}, zstd (the `patch` defaults in params).",
        info,
        benchlib.command(args),
        f"Timing: best of {args.repeat} interleaved runs; CPU/wall = user+sys CPU time (with "
        "children) / wall time; others = cores other processes used meanwhile.",
    )
    one, four = res["rss"]["1x"], res["rss"]["4x"]
    patched = {k: v["train_patches"] + v["val_patches"] for k, v in res["rss"].items()}
    lines += ["### Peak RSS of the patch stage: 1x vs 4x the images", "",
              f"`stages.patch.run(Params().patch, pairs, out, seed=0)` in a fresh subprocess per "
              f"size, over `stages.synth` scenes ({args.size[0]}x{args.size[1]}, 1 short frame "
              "each, seed 0) converted and paired. Peak = the child's `VmHWM`.", ""]  # fmt: skip
    rows = [[k, v["scenes"], f"{v['train_pairs'] + v['val_pairs']} ({v['train_pairs']} + "
             f"{v['val_pairs']})", patched[k], f"{v['imports_mib']:.0f}", f"{v['peak_mib']:.0f}",
             f"{v['wall']:.2f}", f"{patched[k] / v['wall']:,.0f}"]
            for k, v in res["rss"].items()]  # fmt: skip
    head = ["data", "scenes", "patched pairs (train + val)", "patches", "RSS after imports (MiB)"]
    lines += table([*head, "peak RSS (MiB)", "stage wall (s)", "patches/s"], rows)
    what = f"peak RSS 4x / 1x (patches {patched['4x'] / patched['1x']:.2f}x)"
    lines += benchlib.goals((what, four["peak_mib"] / one["peak_mib"], "<=", GOAL_RSS))
    return lines + render_loader(res["loader"])


def render_loader(runs: dict) -> list[str]:
    lines = ["### Loader throughput: PatchStream + DataLoader", "",
             f"One epoch of the 4x run's train patches through `DataLoader(batch_size={BATCH})`; "
             "steady = after the first batch; s3:// = the same parts copied to a moto_server "
             "bucket on loopback (pyarrow's S3FileSystem).", ""]  # fmt: skip
    rows = []
    for (name, workers), v in runs.items():
        steady = (v["patches"] - v["first_n"]) / (v["wall"] - v["first_batch"])
        rows.append([name, workers, v["patches"], f"{v['wall']:.2f}", f"{v['first_batch']:.2f}",
                     f"{v['patches'] / v['wall']:,.0f}", f"{steady:,.0f}",
                     f"{v['cpu'] / v['wall']:.2f}", f"{v['others']:.2f}"])  # fmt: skip
    head = ["dataset", "num_workers", "patches", "epoch wall (s)", "first batch (s)"]
    lines += table([*head, "patches/s", "steady patches/s", "CPU/wall", "others"], rows)
    local, s3 = (runs[k]["wall"] for k in runs if k[1] == 0)
    return lines + [f"S3 / local (0 workers): **{local / s3:.2f}x** the rate. Whether training "
                    "waits for the loader: `bench/train.py`'s data-wait share.", ""]  # fmt: skip


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--scenes", type=int, default=8, help="scenes at 1x for RSS (>= 3)")
    p.add_argument("--size", default="1024x1536", help="HxW of the synth frames for RSS")
    p.add_argument("--rss-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = benchlib.parse(p, argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    if args.quick:
        args.scenes, args.size = 3, "256x384"
    args.size = parse_size(args.size)
    info = benchlib.machine(pyarrow=pa.__version__)
    with benchlib.scratch("patches", args.keep) as scratch:
        res = {"rss": bench_rss(args, scratch)}
        res["loader"] = bench_loader(args, scratch / "stage-4x" / "patches" / "train")
    benchlib.publish(SECTION, render(args, info, res), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
