"""Scale-out: data-parallel training with 2 processes against 1, reading patches from S3 (a
moto_server on loopback) against local disk, and a paper estimate of the full SID Sony set on
one 8-GPU node.

Writes the ``## scale`` section of BENCHMARKS.md.

    .venv/bin/python bench/scale.py            # full run
    .venv/bin/python bench/scale.py --quick    # smoke run, prints only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

import benchlib
from lowlight import stages
from lowlight.config import ModelConfig, Params, override
from lowlight.dataset import PatchStream

SECTION = "## scale"
COMMAND = ".venv/bin/python bench/scale.py"
WORK = Path(__file__).with_name("_work") / "scale"
# SID's Sony subset (Chen et al. 2018): 2,697 short-exposure RAWs of 231 scenes, ~70 % train;
# frames 4240x2832 (the converted RGB is 4256x2848 with LibRaw's margins).
SID_SHORT_FRAMES, SID_TRAIN_SHARE, SID_FRAME = 2697, 0.7, (2848, 4256)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(scenes: int) -> Path:
    root = WORK / f"data-{scenes}"
    if (root / "patches/train").exists():
        return root / "patches"
    shutil.rmtree(root, ignore_errors=True)
    pairs = benchlib.make_pairs(scenes, "256x384", root)
    cfg = override(Params().patch, "patch", row_group=32)  # groups for two processes
    stages.patch(cfg, pairs, root / "patches", seed=0)
    return root / "patches"


def train(patches: Path, processes: int, epochs: int, batch: int) -> dict:
    """``lowlight train`` (torchrun with ``processes``); patches per second of the epochs."""
    run = WORK / f"train-{processes}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    params = {
        "train": {"epochs": epochs, "batch_size": batch, "workers": 0, "device": "cpu",
                  "checkpoint_every": 10_000, "val_patches": 64, "samples": 0},
        "mlflow": {"tracking_uri": f"sqlite:///{run / 'mlflow.db'}"},
    }  # fmt: skip
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "lowlight.cli", "train", str(patches), "models"]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                   f"--master_port={free_port()}", "-m", "lowlight.cli", "train", str(patches),
                   "models"]  # fmt: skip
    benchlib.QUIET.wait()
    start = time.perf_counter()
    subprocess.run(command, cwd=run, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    config = json.loads((run / "models/generator.json").read_text())
    history = [
        line.split(",") for line in (run / "reports/train_history.csv").read_text().splitlines()
    ]
    seconds = sum(float(row[history[0].index("seconds")]) for row in history[1:])
    patches_total = len(PatchStream(patches / "train", 0)) * epochs
    return {"processes": processes, "steps": config["steps"], "wall": wall,
            "epoch_seconds": seconds, "patches_s": patches_total / seconds}  # fmt: skip


def read_rate(location: str, repeats: int = 2) -> float:
    """Patches per second streamed by PatchStream (decode included, no training)."""
    stream = PatchStream(location, seed=0, shuffle_buffer=256)
    best = 0.0
    for epoch in range(repeats):
        stream.set_epoch(epoch)
        benchlib.QUIET.wait()
        start, count = time.perf_counter(), 0
        for _ in stream:
            count += 1
        best = max(best, count / (time.perf_counter() - start))
    return best


def s3_versus_local(patches: Path) -> dict:
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for _ in range(100):
            try:
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
                break
            except Exception:  # the server is still starting
                time.sleep(0.1)
        from lowlight import storage

        storage.copy_tree(patches / "train", "s3://bench/patches/train")
        local = read_rate(str(patches / "train"))
        remote = read_rate("s3://bench/patches/train")
    finally:
        server.terminate()
        server.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"local": local, "s3": remote}


def patch_flops(size: int = 100) -> float:
    """Training FLOPs per patch of the default model: G forward and backward, D twice."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lowlight.train import build_models

    generator, discriminator = build_models(ModelConfig(), 0)
    dark, bright = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
    with FlopCounterMode(display=False) as counter:
        fake = generator(dark)
        loss = discriminator(torch.cat([dark, dark]), torch.cat([bright, fake])).sum()
        loss = loss + discriminator(dark, fake).sum() + fake.abs().mean()
        loss.backward()
    return float(counter.get_total_flops())


def estimate(size: int = 100, stride: int = 50) -> list[str]:
    """Time per epoch of the full SID Sony training split on 8 GPUs, from FLOPs and bytes."""
    rows = -(-(SID_FRAME[0] - size) // stride) + 1
    cols = -(-(SID_FRAME[1] - size) // stride) + 1
    per_frame = rows * cols
    train_frames = round(SID_SHORT_FRAMES * SID_TRAIN_SHARE)
    patches = train_frames * per_frame
    flops = patch_flops(size)
    gpu_tflops = 0.3 * 989  # an H100 SXM's dense fp16/bf16 tensor peak at 30 % utilisation
    seconds = patches * flops / (8 * gpu_tflops * 1e12)
    data_gb = patches * 2 * size * size * 3 / 1e9  # uint8 dark + bright, before zstd
    return [
        f"- training patches per epoch: {train_frames} frames x {per_frame:,} windows "
        f"({rows} x {cols} at {size}/{stride}) = **{patches / 1e6:.1f} M**",
        f"- training FLOPs per patch (default model, measured with torch's FlopCounterMode): "
        f"{flops / 1e9:.2f} GFLOP",
        f"- 8 x H100 at 30 % of 989 TFLOP/s: **{seconds / 60:.1f} min per epoch** of compute; "
        f"the data path must deliver {patches / seconds / 1e3:.0f} k patches/s, "
        f"{data_gb / seconds:.1f} GB/s of uint8 pixels ({data_gb:.0f} GB per epoch before "
        "zstd): more than one node's S3 client streams comfortably, so use patch.max_per_image "
        "or stride 100 (a quarter of the windows) and several loader workers per GPU",
        f"- the seed's 4000 epochs would take {4000 * seconds / 3600:.0f} GPU-node hours at "
        "that rate: sample windows per epoch instead (SID itself trains on one random "
        "512x512 crop per image per epoch)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, print only")
    args = parser.parse_args()
    scenes, epochs = (6, 1) if args.quick else (16, 2)
    benchlib.QUIET = benchlib.Quiet(0.0 if args.quick else 60.0)
    patches = prepare(scenes)
    one = train(patches, 1, epochs, 16)
    two = train(patches, 2, epochs, 16)
    reads = s3_versus_local(patches)
    info = benchlib.machine()
    lines = [
        SECTION,
        "",
        f"`{COMMAND}` on {dt.date.today()}, {info['cpu']}, {info['cores']} cores, "
        f"torch {info['torch']}, rev {info['rev']}. Synthetic data: {scenes} scenes of 256x384, "
        f"{len(PatchStream(patches / 'train', 0))} training patches of 100x100.",
        "",
        "### Data-parallel training (torchrun, gloo, CPU)",
        "",
        "| processes | global batch | steps | epoch seconds | patches/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for run in (one, two):
        lines.append(f"| {run['processes']} | 16 | {run['steps']} | {run['epoch_seconds']:.1f} | "
                     f"{run['patches_s']:.1f} |")  # fmt: skip
    lines += [
        "",
        f"2 processes / 1: **{two['patches_s'] / one['patches_s']:.2f}x** throughput; steps "
        f"{two['steps']} vs {one['steps']}: each process takes half of every global batch, and "
        "when the row groups split unevenly the process with more runs a step or two more while "
        "the other joins without gradient. Epoch seconds include rank 0's validation. On this "
        "2-core machine one process already uses both cores (torch's intra-op "
        "threads) while torchrun gives each of two processes one thread, so the ratio shows the "
        "cost of the gradient all-reduce rather than a speed-up; on N GPUs the compute splits "
        "N ways.",
        "",
        "### Reading patches: S3 (moto_server on loopback) against local disk",
        "",
        "| source | patches/s |",
        "|---|---:|",
        f"| local Parquet parts | {reads['local']:.0f} |",
        f"| s3:// (pyarrow S3FileSystem, moto) | {reads['s3']:.0f} |",
        "",
        f"S3 / local: **{reads['s3'] / reads['local']:.2f}x**. Both are far above what a training "
        f"step consumes here ({one['patches_s']:.0f} patches/s).",
        "",
        "### Paper estimate: the full SID Sony set on one 8-GPU node",
        "",
        *estimate(),
        "",
    ]
    benchlib.publish(SECTION, lines, args.quick)


if __name__ == "__main__":
    main()
