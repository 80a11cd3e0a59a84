"""Scale-out: DDP training with 2 processes against 1, patches from S3 (moto) against local disk,
and a paper estimate of the full SID Sony set on one 8-GPU node: the ``## scale`` section.

    .venv/bin/python bench/scale.py            # full run
    .venv/bin/python bench/scale.py --quick    # smoke run, prints only
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import yaml

import benchlib
from benchlib import table, yes_no
from lowlight import stages
from lowlight.card import ModelCard
from lowlight.config import ModelConfig, Params, override
from lowlight.dataset import PatchStream

SECTION = "## scale"
BATCH = 16
# SID's Sony subset (Chen et al. 2018): 2,697 short-exposure RAWs of 231 scenes, ~70 % train;
# frames 4240x2832 (the converted RGB is 4256x2848 with LibRaw's margins).
SID_SHORT_FRAMES, SID_TRAIN_SHARE, SID_FRAME = 2697, 0.7, (2848, 4256)
GPU_TFLOPS = 0.3 * 989  # an H100 SXM's dense fp16/bf16 tensor peak at 30 % utilisation


def train(work: Path, patches: Path, processes: int, epochs: int) -> dict:
    """``lowlight train`` (under torchrun with ``processes``); patches per second of the epochs."""
    run = work / f"train-{processes}"
    run.mkdir(parents=True)
    params = {
        "train": {"epochs": epochs, "batch_size": BATCH, "workers": 0, "device": "cpu",
                  "checkpoint_every": 10_000, "val_patches": 64, "samples": 0},
        "mlflow": {"tracking_uri": f"sqlite:///{run / 'mlflow.db'}"},
    }  # fmt: skip
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    launch = ["-m", "torch.distributed.run", f"--nproc_per_node={processes}",
              f"--master_port={benchlib.free_port()}"] if processes > 1 else []  # fmt: skip
    command = [sys.executable, *launch, "-m", "lowlight.cli", "train", str(patches), "models"]
    benchlib.QUIET.wait()
    subprocess.run(command, cwd=run, env=env, check=True, capture_output=True)
    history = [
        line.split(",") for line in (run / "reports/train_history.csv").read_text().splitlines()
    ]
    seconds = sum(float(row[history[0].index("seconds")]) for row in history[1:])
    total = len(PatchStream(patches / "train", 0)) * epochs
    steps = ModelCard.load(run / "models").steps
    return {
        "processes": processes,
        "steps": steps,
        "seconds": seconds,
        "patches_s": total / seconds,
    }


def read_rate(location: str, repeats: int = 2) -> float:
    """Patches per second streamed by PatchStream (decode included, no training); best epoch."""
    stream, best = PatchStream(location, seed=0, shuffle_buffer=256), 0.0
    for epoch in range(repeats):
        stream.set_epoch(epoch)
        benchlib.QUIET.wait()
        start = time.perf_counter()
        count = sum(1 for _ in stream)
        best = max(best, count / (time.perf_counter() - start))
    return best


def s3_versus_local(patches: Path) -> dict:
    import boto3

    from lowlight import storage

    port = benchlib.free_port()
    endpoint = f"http://127.0.0.1:{port}"  # moto_server below
    moto = str(Path(sys.executable).with_name("moto_server"))
    server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    try:
        with mock.patch.dict(os.environ, env):
            for _ in range(100):
                try:
                    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
                    break
                except Exception:  # noqa: BLE001 - the server is still starting
                    time.sleep(0.1)
            storage.copy_tree(patches / "train", "s3://bench/patches/train")
            local = read_rate(str(patches / "train"))
            return {"local": local, "s3": read_rate("s3://bench/patches/train")}
    finally:
        server.terminate()
        server.wait()


def patch_flops(size: int) -> float:
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


def estimate(s3_rate: float, size: int = 100, stride: int = 50) -> list[str]:
    """Time per epoch of the full SID Sony training split on 8 GPUs, from FLOPs and bytes."""
    rows, cols = (-(-(n - size) // stride) + 1 for n in SID_FRAME)
    train_frames = round(SID_SHORT_FRAMES * SID_TRAIN_SHARE)
    patches = train_frames * rows * cols
    flops = patch_flops(size)
    seconds = patches * flops / (8 * GPU_TFLOPS * 1e12)
    data_gb = patches * 2 * size * size * 3 / 1e9  # uint8 dark + bright, before zstd
    need = patches / seconds
    return [
        f"- training patches per epoch: {train_frames} frames x {rows * cols:,} windows "
        f"({rows} x {cols} at {size}/{stride}) = **{patches / 1e6:.1f} M**",
        f"- training FLOPs per patch (default model, FlopCounterMode): {flops / 1e9:.2f} GFLOP",
        f"- 8 GPUs at {GPU_TFLOPS:.0f} TFLOP/s each (an H100 at 30 %): **{seconds / 60:.1f} min "
        f"per epoch** of compute; the data path must deliver {need / 1e3:.0f} k patches/s, "
        f"{data_gb / seconds:.1f} GB/s of uint8 pixels ({data_gb:.0f} GB per epoch, no zstd): "
        f"{need / s3_rate:,.0f}x the S3 read rate of one stream measured above",
        f"- 4000 epochs (the seed's) would take {4000 * seconds / 3600:.0f} node hours",
    ]


def main(argv: list[str]) -> int:
    args = benchlib.parse(benchlib.parser(__doc__), argv)
    scenes, epochs = (6, 1) if args.quick else (16, 2)
    with benchlib.scratch("scale", args.keep) as work:
        pairs = benchlib.make_pairs(work / "data", scenes, "256x384")
        cfg = override(Params().patch, "patch", row_group=32)  # groups for two processes
        stages.patch.run(cfg, pairs, work / "patches", seed=0)
        patches = work / "patches"
        count = len(PatchStream(patches / "train", 0))
        one, two = (train(work, patches, n, epochs) for n in (1, 2))
        reads = s3_versus_local(patches)
    info = benchlib.machine()
    intro = f"Synthetic data: {scenes} scenes of 256x384, {count} training patches of 100x100."
    lines = benchlib.header(SECTION, intro, info, benchlib.command(args))
    lines += ["### Data-parallel training (torchrun, gloo, CPU)", ""]
    rows = [[r["processes"], BATCH, r["steps"], f"{r['seconds']:.1f}", f"{r['patches_s']:.1f}"]
            for r in (one, two)]  # fmt: skip
    head = ["processes", "global batch", "steps", "epoch seconds", "patches/s"]
    lines += table(head, rows, "rrrrr")
    speedup, rate = two["patches_s"] / one["patches_s"], one["patches_s"]
    lines += [
        f"2 processes / 1: **{speedup:.2f}x** throughput on {info['usable']} usable cores "
        f"(ideal 2x; a speed-up of at least 1.5x: {yes_no(speedup >= 1.5)}). Epoch seconds "
        "include rank 0's validation.",
        "",
        "### Reading patches: S3 (moto_server on loopback) against local disk",
        "",
        *table(["source", "patches/s"], [["local Parquet parts", f"{reads['local']:.0f}"],
                                         ["s3:// (S3FileSystem, moto)", f"{reads['s3']:.0f}"]]),
        f"S3 / local: **{reads['s3'] / reads['local']:.2f}x**. The slower source delivers "
        f"{min(reads.values()) / one['patches_s']:.0f}x what a training step consumes here "
        f"({one['patches_s']:.0f} patches/s): enough: {yes_no(min(reads.values()) >= rate)}.",
        "",
        "### Paper estimate: the full SID Sony set on one 8-GPU node",
        "",
        *estimate(reads["s3"]),
        "",
    ]  # fmt: skip
    benchlib.publish(SECTION, lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
