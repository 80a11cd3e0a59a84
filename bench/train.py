"""Training speed: steps/s and patches/s of the two-step GAN step, and how long it waits on data.

Writes the ``## train`` section of BENCHMARKS.md.

    .venv/bin/python bench/train.py            # full run
    .venv/bin/python bench/train.py --quick    # smoke run, prints only
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time

import torch

import benchlib
from lowlight import stages
from lowlight.config import ModelConfig, Params, TrainConfig
from lowlight.dataset import PatchStream
from lowlight.train import Trainer, epoch_loader, train_step

SECTION = "## train"
COMMAND = ".venv/bin/python bench/train.py"


def measure(patches, cfg: TrainConfig, steps: int, warmup: int = 3) -> dict:
    """Time ``steps`` training steps after ``warmup``: data wait vs step compute."""
    trainer = Trainer.create(ModelConfig(), cfg, seed=0)
    stream = PatchStream(patches / "train", seed=0, shuffle_buffer=cfg.shuffle_buffer)
    wait = compute = 0.0
    done = patches_seen = epoch = 0
    while done < warmup + steps:
        batches = iter(epoch_loader(stream, cfg, 0, epoch))
        while done < warmup + steps:
            start = time.perf_counter()
            try:
                dark, bright = next(batches)
            except StopIteration:
                epoch += 1
                break
            got = time.perf_counter()
            train_step(trainer, dark, bright)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            end = time.perf_counter()
            if done >= warmup:
                wait, compute, patches_seen = (
                    wait + got - start,
                    compute + end - got,
                    patches_seen + len(dark),
                )
            done += 1
    total = wait + compute
    return {
        "device": str(trainer.device),
        "workers": cfg.workers,
        "steps_s": steps / total,
        "patches_s": patches_seen / total,
        "wait_share": wait / total,
        "step_ms": 1000 * compute / steps,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run, no file written")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    steps = 4 if args.quick else args.steps
    work = benchlib.WORK / "train"
    shutil.rmtree(work, ignore_errors=True)
    try:
        pairs = benchlib.make_pairs(
            4 if args.quick else 8, "256x384" if args.quick else "512x768", work
        )
        stages.patch(Params().patch, pairs, work / "patches", seed=0)
        base = Params().train
        rows = [
            measure(work / "patches", base.model_copy(update={"workers": w}), steps)
            for w in (0, 1, 2)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = benchlib.machine()
    lines = [
        SECTION,
        "",
        "One training step = a discriminator step on real vs generated pairs, then a generator",
        "step (lambda * L1 + adversarial), on the default model (`model.*`: U-Net depth 3,",
        f"width 16) and batch size {base.batch_size} of 100x100 patches. Data wait = time blocked",
        "in the DataLoader; its share is of the whole loop (wait + step).",
        "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; code `{info['rev']}`",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB",
        f"- GPU: {info['gpu']}",
        f"- Python {info['python']}, torch {info['torch']} ({info['torch_threads']} threads)",
        f"- Command: `{COMMAND}` ({steps} timed steps after 3 warm-up steps per row)",
        "",
        "| device | DataLoader workers | steps/s | patches/s | step (ms) | data wait share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['device']} | {r['workers']} | {r['steps_s']:.2f} | {r['patches_s']:.1f} | "
            f"{r['step_ms']:.0f} | {100 * r['wait_share']:.1f} % |"
        )
    lines += [
        "",
        "No GPU was lent to the session that measured this; on CUDA the same script runs the",
        "step under mixed precision (`train.amp`).",
        "",
    ]
    benchlib.publish(SECTION, lines, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
