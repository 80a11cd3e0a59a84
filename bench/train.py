"""How fast is training: steps/s and patches/s of the two-step GAN step on this machine, and
how long it waits on data; the ``## train`` section of BENCHMARKS.md. (What a GPU does, and an
epoch of the full SID set on 8 of them, is bench/gpu.py's.)

    .venv/bin/python bench/train.py            # full run
    .venv/bin/python bench/train.py --quick    # smoke run, prints only
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

import benchlib
from benchlib import table
from lowlight import stages
from lowlight.config import ModelConfig, Params, TrainConfig
from lowlight.dataset import PatchStream
from lowlight.train import Trainer, epoch_loader, train_step

SECTION = "## train"
WARMUP = 3  # untimed steps first: allocator, kernels, worker start-up


def measure(patches: Path, cfg: TrainConfig, steps: int) -> dict:
    """Time ``steps`` training steps after the warm-up: data wait vs step compute."""
    trainer = Trainer.create(ModelConfig(), cfg, seed=0)
    stream = PatchStream(patches / "train", seed=0, shuffle_buffer=cfg.shuffle_buffer)
    wait = compute = 0.0
    done = seen = epoch = 0
    while done < WARMUP + steps:
        batches = iter(epoch_loader(stream, cfg, 0, epoch))
        epoch, start = epoch + 1, time.perf_counter()
        for dark, bright in batches:
            got = time.perf_counter()
            train_step(trainer, dark, bright)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            end = time.perf_counter()
            if done >= WARMUP:
                wait, compute, seen = wait + got - start, compute + end - got, seen + len(dark)
            done += 1
            if done == WARMUP + steps:
                break
            start = time.perf_counter()
    total = wait + compute
    return {"device": str(trainer.device), "workers": cfg.workers, "steps_s": steps / total,
            "patches_s": seen / total, "wait_share": wait / total,
            "step_ms": 1000 * compute / steps}  # fmt: skip


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--steps", type=int, default=40, help="timed steps per row")
    args = benchlib.parse(p, argv)
    steps = 4 if args.quick else args.steps
    base, model, patch = Params().train, ModelConfig(), Params().patch
    with benchlib.scratch("train", args.keep) as work:
        size = "256x384" if args.quick else "512x768"
        pairs = benchlib.make_pairs(work, 4 if args.quick else 8, size)
        stages.patch.run(patch, pairs, work / "patches", seed=0)
        rows = [measure(work / "patches", base.model_copy(update={"workers": w}), steps)
                for w in (0, 1, 2)]  # fmt: skip
    lines = benchlib.header(
        SECTION,
        "One training step = a discriminator step on real vs generated pairs, then a generator "
        f"step (lambda * L1 + adversarial), on the default model (U-Net depth {model.depth}, width "
        f"{model.width}, input {model.input}), batch size {base.batch_size} of "
        f"{patch.size}x{patch.size} patches. Data wait = time blocked in the DataLoader; its share "
        "is of the whole loop (wait + step).",
        benchlib.machine(),
        benchlib.command(args),
        f"{steps} timed steps after {WARMUP} warm-up steps per row",
    )
    lines += table(
        ["device", "DataLoader workers", "steps/s", "patches/s", "step (ms)", "data wait share"],
        [[r["device"], r["workers"], f"{r['steps_s']:.2f}", f"{r['patches_s']:.1f}",
          f"{r['step_ms']:.0f}", f"{100 * r['wait_share']:.1f} %"] for r in rows],
    )  # fmt: skip
    fastest, waits = max(rows, key=lambda r: r["steps_s"]), max(r["wait_share"] for r in rows)
    bottleneck = "the data loader" if waits > 0.5 else "the training step itself"
    lines += [f"Fastest with {fastest['workers']} DataLoader workers ({fastest['steps_s']:.2f} "
              f"steps/s); the data wait is at most {100 * waits:.1f} % of the loop, so the "
              f"bottleneck is {bottleneck}.", ""]  # fmt: skip
    benchlib.publish(SECTION, lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
