"""What a GPU does: training steps/s of the two-step GAN step against batch size, with and
without AMP, and the shipped model's latency on a 1080p and a 4K frame (bare forward in float32,
float16 and bfloat16, the tiled ``enhance`` path), against the 30 fps goal.

Writes the ``## gpu`` section of BENCHMARKS.md: about 8 minutes on one GPU (``--budget`` stops
adding rows), or, without a CUDA device, what it will measure.

    .venv/bin/python bench/gpu.py                        # full run, on one GPU
    .venv/bin/python bench/gpu.py --quick                # smaller GPU run, prints only
    .venv/bin/python bench/gpu.py --device cpu --quick   # the code paths on the CPU, tiny sizes
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import sys
import time
import traceback
from functools import partial

import numpy as np
import torch

import benchlib
from benchlib import table, yes_no
from lowlight import card, inference, modes, tiling
from lowlight.config import InferConfig, Params, load_params
from lowlight.rendering import RenderParams
from lowlight.train import Trainer, train_step

SECTION = "## gpu"
RECIPE = benchlib.ROOT / "pretrain" / "gpu.yaml"  # the GPU training recipe: model, patch, batch
GOAL_FRAME_MS = 33.0  # one 1080p frame at 30 fps (the seed's real-time target)
FRAMES = {"1080p": (1080, 1920), "4K": (2160, 3840)}  # output pixels (height, width)
BATCHES = (16, 32, 64, 128, 256, 512, 1024)  # training batch sizes, until OOM or the budget
PRECISIONS = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
RUNS = 20  # timed runs per latency row (their median)
# SID's Sony training split (Chen et al. 2018): ~70 % of its 2,697 short frames, each 4,760
# windows of 100x100 at stride 50 (56 x 85 on the 2848x4256 conversion)
SID_EPOCH_PATCHES = round(2697 * 0.7) * 4760


def sync(device: torch.device) -> None:
    """Wait for the device's queued kernels: CUDA calls return before the work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> str:
    """Peak GPU memory allocated since ``reset_peak`` (n/a on the CPU)."""
    if device.type != "cuda":
        return "n/a"
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f}"


def train_rate(params: Params, device: torch.device, batch: int, amp: bool, lambda_adv: float,
               steps: int, seconds: float, warmup: int) -> list:  # fmt: skip
    """Steps/s of ``train_step`` on one random batch already on the device (no data loading:
    the GPU's own rate), at least ``steps`` steps and ``seconds`` after ``warmup`` untimed ones;
    peak memory from the trainer's creation on (weights, Adam states, the batch, activations)."""
    mode, size = modes.get(params.model.input), params.patch.size
    update = {"device": device.type, "amp": amp, "batch_size": batch, "lambda_adv": lambda_adv}
    reset_peak(device)
    trainer = Trainer.create(params.model, params.train.model_copy(update=update), seed=0,
                             curve=params.convert.curve if mode.renders else "")  # fmt: skip
    gen = torch.Generator(device=trainer.device).manual_seed(0)
    dark = torch.rand((batch, mode.channels, size // mode.scale, size // mode.scale),
                      generator=gen, device=trainer.device)  # fmt: skip
    bright = torch.rand((batch, 3, size, size), generator=gen, device=trainer.device)
    render = None
    if mode.renders:  # the pairs' white balance and colour matrix, as patch rows store them
        vector = torch.from_numpy(RenderParams.neutral().vector)
        render = vector.expand(batch, -1).contiguous().to(trainer.device)
    for _ in range(warmup):  # allocator, cuDNN's algorithm choice, the GradScaler's first scale
        train_step(trainer, dark, bright, render=render)
    sync(trainer.device)
    done, start = 0, time.perf_counter()
    while done < steps or time.perf_counter() - start < seconds:
        train_step(trainer, dark, bright, render=render)  # its .item() calls synchronise
        done += 1
    sync(trainer.device)
    wall = time.perf_counter() - start
    return [f"{done / wall:.2f}", f"{done * batch / wall:,.0f}", f"{1000 * wall / done:.1f}",
            peak_mib(trainer.device)]  # fmt: skip


def latency(fn, device: torch.device, runs: int, warmup: int, tiles: int = 1) -> list:
    """Median wall ms of ``runs`` calls of ``fn`` after ``warmup`` untimed ones, each call
    synchronised before and after (what a caller waits for one frame); fps; peak memory."""
    for _ in range(warmup):
        fn()
    reset_peak(device)
    times = []
    for _ in range(runs):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(1000 * (time.perf_counter() - start))
    ms = statistics.median(times)
    return [tiles, f"{ms:.2f}", f"{1000 / ms:.1f}", peak_mib(device)]


def attempt(label: list, width: int, need: float, deadline: float, measure) -> list:
    """One row: ``label`` and ``measure()``'s ``width`` cells, or a note in their place (budget
    spent, out of memory, an error): a lent GPU is not to be wasted on one failed row."""
    note, cells = "", [""] * width
    if time.perf_counter() + need > deadline:
        note = "skipped: time budget spent"
    else:
        try:
            cells = measure()
        except torch.cuda.OutOfMemoryError:
            note = "out of GPU memory"
        except Exception as exc:  # recorded in the row; the run goes on
            traceback.print_exception(exc, file=sys.stderr)
            note = f"failed: {type(exc).__name__}: {str(exc).strip()[:120]}"
    reset_peak(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    print(benchlib.row([*label, *cells, note]), flush=True)
    return [*label, *cells, note]


def measure_training(params: Params, device: torch.device, batches: tuple[int, ...],
                     deadline: float, timing: tuple) -> list[list]:  # fmt: skip
    """The GAN step at each batch size, AMP on and off (AMP only on CUDA: ``Trainer`` ignores
    it on the CPU), then gpu.yaml's own L1-only step."""
    amps = (True, False) if device.type == "cuda" else (False,)
    own = params.train.batch_size if params.train.batch_size in batches else batches[0]
    runs = [("GAN (D + G)", 1.0, b, a) for b in batches for a in amps]  # TrainConfig's lambda_adv
    runs += [("L1 only (gpu.yaml)", 0.0, own, a) for a in amps]
    return [attempt([step, "float16" if amp else "off", batch], 4, 10.0, deadline,
                    partial(train_rate, params, device, batch, amp, weight, *timing))
            for step, weight, batch, amp in runs]  # fmt: skip


def measure_frames(device: torch.device, frames: dict, deadline: float, runs: int,
                   warmup: int) -> list[list]:  # fmt: skip
    """Every frame through the bare forward in each precision (autocast, as training and
    ``inference.load_torch`` run them on CUDA), then through ``enhance`` (host image in and
    out, as ``lowlight enhance`` runs it)."""
    generator, model_card = card.load_generator(card.shipped())
    generator.to(device)
    mode, infer, rows = model_card.mode, InferConfig(), []
    shapes = {name: (h // mode.scale, w // mode.scale) for name, (h, w) in frames.items()}

    @torch.inference_mode()
    def forward(x: torch.Tensor, dtype: torch.dtype | None) -> None:
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            generator(x)

    for frame, (h, w) in shapes.items():
        x = torch.rand((1, mode.channels, h, w), generator=torch.Generator().manual_seed(0))
        for p, dtype in PRECISIONS.items():
            if device.type == "cuda" or p != "float16":
                once = partial(forward, x.to(device), dtype)
                rows.append(attempt([frame, "bare forward", p, 1], 4, 5.0, deadline,
                                    partial(latency, once, device, runs, warmup)))  # fmt: skip
    for frame, (h, w) in shapes.items():
        image = np.random.default_rng(0).random((h, w, mode.channels), dtype=np.float32)
        tiles = len(tiling.tile_grid(h, w, infer.tile, infer.overlap, model_card.multiple)[1])
        for p in ("float32", "bfloat16"):
            fn, _ = inference.load_torch(card.shipped(), device.type, p)
            for b in (1, 4):
                once = partial(inference.enhance, image, fn, infer.tile, infer.overlap, b,
                               model_card.multiple)  # fmt: skip
                measure = partial(latency, once, device, runs, warmup, tiles)
                label = [frame, f"enhance (tile {infer.tile})", p, b]
                rows.append(attempt(label, 4, 5.0, deadline, measure))
    return rows


def intro(params: Params, steps: int, seconds: float, warmup: int, runs: int) -> str:
    m, size = params.model, params.patch.size
    return (f"The training step of pretrain/gpu.yaml's model ({m.input} U-Net, depth {m.depth}, "
            f"width {m.width}: the shipped model's architecture) on random {size}x{size} patches "
            f"already on the device, GAN (D + G) at batch sizes up to {BATCHES[-1]} (until out of "
            f"memory) with AMP on and off, and gpu.yaml's own L1-only step; at least {steps} "
            f"steps and {seconds:g} s after {warmup} warm-up step(s) per row. Then the shipped "
            "model's time per 1080p and 4K frame (a bayer model's input: the packed mosaic at "
            "half size), bare forward in float32, float16 and bfloat16 autocast and through "
            f"`lowlight.inference.enhance` (batch 1 and 4): the median of {runs} synchronised "
            f"runs after {warmup} warm-up run(s). Goal: a 1080p frame in under "
            f"{GOAL_FRAME_MS:g} ms (30 fps).")  # fmt: skip


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: smoke-test the code paths (prints only)")  # fmt: skip
    p.add_argument("--budget", type=float, default=420.0, help="seconds after which no more "
                   "rows are added (a GPU is lent for 8 min)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per training row")
    p.add_argument("--runs", type=int, default=RUNS, help="timed runs per latency row (median)")
    args = benchlib.parse(p, argv)
    deadline, params = time.perf_counter() + args.budget, load_params(RECIPE)
    versions = {"CUDA": torch.version.cuda or "none (torch built without CUDA)"}
    if torch.cuda.is_available():
        versions["cuDNN"] = str(torch.backends.cudnn.version())
    info = benchlib.machine(**versions)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device available: torch sees no GPU; nothing measured")
        lines = benchlib.header(SECTION, "**Not run yet**: no GPU was available on the machine "
                                "that ran this script, so nothing is measured. On a machine with "
                                "one CUDA GPU, this command (about 8 minutes) replaces this "
                                "section with the figures: " + intro(params, 10, args.seconds, 3,
                                args.runs), info, benchlib.command(args))  # fmt: skip
        benchlib.publish(SECTION, lines, None if args.quick else args.output)
        return 0
    device = torch.device(args.device)
    if device.type == "cpu":
        args.output = None  # the section is for a GPU's figures
    if args.quick and device.type == "cpu":  # (batches, frames, steps, seconds, runs, warm-up)
        sizes = (2,), {"64x96": (64, 96)}, 2, 0.0, 2, 1
    elif args.quick:
        sizes = (16, 64), {"1080p": FRAMES["1080p"]}, 5, 1.0, 5, 2
    else:
        sizes = BATCHES, FRAMES, 10, args.seconds, args.runs, 3
    batches, frames, steps, seconds, runs, warmup = sizes
    print(f"device {device} ({info['gpu']}), budget {args.budget:g} s", flush=True)
    frame_rows = measure_frames(device, frames, deadline, runs, warmup)  # the goal's rows first
    training = measure_training(params, device, batches, deadline, (steps, seconds, warmup))
    more = [f"Time budget {args.budget:g} s; {deadline - time.perf_counter():.0f} s were left"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        more.append(f"GPU memory {props.total_memory / 2**30:.1f} GiB; cuDNN autotuning "
                    f"{'on' if torch.backends.cudnn.benchmark else 'off'} (as lowlight runs); "
                    f"TF32 convolutions {'allowed' if torch.backends.cudnn.allow_tf32 else 'off'}"
                    " in the float32 rows")  # fmt: skip
    lines = benchlib.header(SECTION, f"On {device.type.upper()}: "
                            + intro(params, steps, seconds, warmup, runs), info,
                            benchlib.command(args), *more)  # fmt: skip
    lines += ["### Training steps", ""]
    lines += table(["step", "AMP", "batch", "steps/s", "patches/s", "step (ms)",
                    "peak GPU memory (MiB)", "note"], training, "lllrrrrl")  # fmt: skip
    rates = [float(r[4].replace(",", "")) for r in training if r[4]]
    if rates:
        minutes = SID_EPOCH_PATCHES / (8 * max(rates)) / 60
        lines += [f"An epoch of the full SID Sony set ({SID_EPOCH_PATCHES / 1e6:.1f} M patches of "
                  f"100x100 at stride 50) on 8 such GPUs at the fastest row's rate, perfectly "
                  f"scaled: {minutes:.1f} min; the data path must then deliver "
                  f"{8 * max(rates) / 1e3:,.0f} k patches/s.", ""]  # fmt: skip
    lines += ["### Latency of the shipped model", ""]
    lines += table(["frame", "path", "precision", "batch", "tiles", "median (ms)", "fps",
                    "peak GPU memory (MiB)", "note"], frame_rows, "lllrrrrrl")  # fmt: skip
    goal_frame, found = next(iter(frames)), {}
    for r in frame_rows:
        if r[0] == goal_frame and r[5]:
            path = r[1].split(" (")[0]
            found[path] = min(found.get(path, (float("inf"),)), (float(r[5]), r[2], r[3]))
    goal = [[f"{goal_frame} frame, {path} ({p}, batch {b})", f"{ms:.1f} ms",
             f"< {GOAL_FRAME_MS:g} ms", yes_no(ms < GOAL_FRAME_MS)]
            for path, (ms, p, b) in found.items()]  # fmt: skip
    goal = goal or [[f"{goal_frame} frame", "not measured", f"< {GOAL_FRAME_MS:g} ms", "**no**"]]
    lines += ["### Goal", "", *table(["goal", "measured", "target", "met"], goal, "lrrc")]
    benchlib.publish(SECTION, lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
