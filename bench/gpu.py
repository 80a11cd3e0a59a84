"""GPU speed: training steps/s of the two-step GAN step against batch size, with and without AMP,
and the shipped model's latency on a 1080p and a 4K frame (bare forward in float32, float16 and
bfloat16, the tiled ``enhance`` path, onnxruntime's CUDA provider), against the 30 fps goal.

Writes the ``## gpu`` section of BENCHMARKS.md. About 8 minutes on one GPU: an internal time
budget (``--budget``) stops adding rows when it is spent. Without a CUDA device it does not
fail: it writes a section saying that it has not run yet and what it will measure.

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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import benchlib
from benchlib import table, yes_no
from lowlight import card, inference, modes, tiling
from lowlight.config import InferConfig, ModelConfig, Params, load_params
from lowlight.errors import LowlightError
from lowlight.export import export_onnx
from lowlight.rendering import RenderParams
from lowlight.train import Trainer, train_step

SECTION = "## gpu"
RECIPE = benchlib.ROOT / "pretrain" / "gpu.yaml"  # the GPU training recipe: model, patch, batch
GOAL_FRAME_MS = 33.0  # one 1080p frame at 30 fps (the seed's real-time target)
FRAMES = {"1080p": (1080, 1920), "4K": (2160, 3840)}  # output pixels (height, width)
BATCHES = (16, 32, 64, 128, 256, 512, 1024)  # training batch sizes, until OOM or the budget
PRECISIONS = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
RUNS = 20  # timed runs per latency row (their median)
ENHANCE_BATCHES = (1, 4)  # tiles per forward pass through ``enhance``
NEED_TRAIN, NEED_FRAME, NEED_ONNX = 10.0, 5.0, 60.0  # seconds a row is expected to need
SKIPPED = "skipped: time budget spent"
GAN_WEIGHT = 1.0  # lambda_adv of the GAN rows (TrainConfig's default; gpu.yaml trains L1 only)


class Budget:
    """Wall-clock seconds left of the run's allowance: a GPU is lent for minutes, so rows stop
    being added when it is spent instead of the run being killed with nothing written."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def allows(self, need: float) -> bool:
        return self.left() >= need


def sync(device: torch.device) -> None:
    """Wait for the device's queued kernels: CUDA calls return before the work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float:
    """Peak GPU memory allocated since ``reset_peak`` (NaN on the CPU)."""
    if device.type != "cuda":
        return float("nan")
    return torch.cuda.max_memory_allocated(device) / 2**20


def failed(exc: BaseException) -> str:
    """A row's note for an error: the run goes on (a lent GPU is not to be wasted on one row)."""
    if not isinstance(exc, LowlightError):  # a lowlight error's message says it all
        traceback.print_exception(exc, file=sys.stderr)
    return f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"


def recipe() -> Params:
    """pretrain/gpu.yaml's params: the shipped model's architecture, its patch and batch."""
    return load_params(RECIPE)


def train_rate(params: Params, device: torch.device, batch: int, amp: bool, lambda_adv: float,
               steps: int, seconds: float, warmup: int) -> dict:  # fmt: skip
    """Steps/s of ``train_step`` on one random batch already on the device (no data loading:
    the GPU's own rate), at least ``steps`` steps and ``seconds`` after ``warmup`` untimed ones;
    peak memory from the trainer's creation on (weights, Adam states, the batch, activations)."""
    mode = modes.get(params.model.input)
    update = {"device": device.type, "amp": amp, "batch_size": batch, "lambda_adv": lambda_adv}
    cfg = params.train.model_copy(update=update)
    reset_peak(device)
    curve = params.convert.curve if mode.renders else ""
    trainer = Trainer.create(params.model, cfg, seed=0, curve=curve)
    size = params.patch.size
    gen = torch.Generator(device=trainer.device).manual_seed(0)
    dark_shape = (batch, mode.channels, size // mode.scale, size // mode.scale)
    dark = torch.rand(dark_shape, generator=gen, device=trainer.device)
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
    result = {"steps_s": done / wall, "patches_s": done * batch / wall,
              "step_ms": 1000 * wall / done, "peak_mib": peak_mib(trainer.device)}  # fmt: skip
    del trainer, dark, bright, render
    return result


def median_ms(fn: Callable[[], object], device: torch.device, runs: int, warmup: int) -> float:
    """Median wall ms of ``runs`` calls of ``fn`` after ``warmup`` untimed ones, each call
    synchronised before and after (what a caller waits for one frame)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def forward_row(generator: torch.nn.Module, shape: tuple[int, ...], precision: str,
                device: torch.device, runs: int, warmup: int) -> dict:  # fmt: skip
    """The bare generator forward on one frame already on the device; float16 and bfloat16 as
    autocast, as training and ``inference.load_torch`` run them on CUDA."""
    dtype = PRECISIONS[precision]
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(device)

    def once() -> None:
        cast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with torch.inference_mode(), cast:
            generator(x)

    reset_peak(device)
    ms = median_ms(once, device, runs, warmup)
    return {"ms": ms, "peak_mib": peak_mib(device)}


def enhance_row(image: np.ndarray, precision: str, batch: int, infer: InferConfig,
                device: torch.device, runs: int, warmup: int) -> dict:  # fmt: skip
    """``inference.enhance`` (tiled, host image in, host image out) with the shipped model, as
    ``lowlight enhance`` runs it; the copies to and from the device are part of the time."""
    fn, model_card = inference.load_torch(card.shipped(), device.type, precision)
    grid = tiling.tile_grid(*image.shape[:2], infer.tile, infer.overlap, model_card.multiple)
    tiles = len(grid[1])

    def once() -> None:
        inference.enhance(image, fn, infer.tile, infer.overlap, batch, model_card.multiple)

    reset_peak(device)
    ms = median_ms(once, device, runs, warmup)
    return {"ms": ms, "peak_mib": peak_mib(device), "tiles": tiles}


def onnx_session(path: Path, provider: str):
    """An onnxruntime session on ``provider`` alone (plus the CPU for what it cannot run), not
    ``load_onnx``'s every available provider: TensorRT's engine build would be timed too."""
    import onnxruntime as ort

    providers = list(dict.fromkeys([provider, "CPUExecutionProvider"]))
    session = ort.InferenceSession(str(path), providers=providers)
    if session.get_providers()[0] != provider:
        raise RuntimeError(f"onnxruntime fell back to {session.get_providers()[0]}")
    return session


def onnx_row(session, shape: tuple[int, ...], multiple: int, runs: int, warmup: int) -> dict:
    """One padded frame through the exported graph (the U-Net's body), host arrays in and out,
    as ``inference.load_onnx`` runs it."""
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    padded, _, _ = tiling.pad_to_multiple(x, multiple)
    name = session.get_inputs()[0].name
    ms = median_ms(lambda: session.run(None, {name: padded}), torch.device("cpu"), runs, warmup)
    return {"ms": ms, "peak_mib": float("nan")}


def fmt_mib(value: float) -> str:
    return "n/a" if value != value else f"{value:,.0f}"


def measure_training(
    params: Params,
    device: torch.device,
    batches: tuple[int, ...],
    budget: Budget,
    steps: int,
    seconds: float,
    warmup: int,
) -> list[list]:
    """The GAN step at each batch size, AMP on and off (AMP only on CUDA: ``Trainer`` ignores
    it on the CPU), then gpu.yaml's own L1-only step at its batch size; a setting stops at its
    first OOM."""
    amps = (True, False) if device.type == "cuda" else (False,)
    runs = [("GAN (D + G)", GAN_WEIGHT, b, a) for b in batches for a in amps]
    own = params.train.batch_size if params.train.batch_size in batches else batches[0]
    runs += [("L1 only (gpu.yaml)", 0.0, own, a) for a in amps]
    rows, oom = [], set()
    for step, weight, batch, amp in runs:
        label = [step, "float16" if amp else "off", batch]
        if (step, amp) in oom:
            rows.append([*label, "", "", "", "", "skipped: smaller batch ran out of memory"])
            continue
        if not budget.allows(NEED_TRAIN):
            rows.append([*label, "", "", "", "", SKIPPED])
            continue
        try:
            r = train_rate(params, device, batch, amp, weight, steps, seconds, warmup)
            rows.append([*label, f"{r['steps_s']:.2f}", f"{r['patches_s']:,.0f}",
                         f"{r['step_ms']:.1f}", fmt_mib(r["peak_mib"]), ""])  # fmt: skip
        except torch.cuda.OutOfMemoryError:
            oom.add((step, amp))
            rows.append([*label, "", "", "", "", "out of GPU memory"])
        except Exception as exc:  # recorded in the row; the run goes on
            rows.append([*label, "", "", "", "", failed(exc)])
        reset_peak(device)
        print(benchlib.row(rows[-1]), flush=True)
    return rows


class Latency:
    """The latency table so far and the ms per (frame, path), filled row by row; a row is
    printed as soon as it is measured (a run cut short still shows what it got)."""

    def __init__(self, budget: Budget, device: torch.device) -> None:
        self.budget, self.device = budget, device
        self.rows: list[list] = []
        self.ms: dict[tuple[str, str], list[tuple[float, str, int]]] = {}

    def add(self, frame: str, path: str, precision: str, batch: int,
            measure: Callable[[], dict]) -> None:  # fmt: skip
        label = [frame, path, precision, batch]
        if not self.budget.allows(NEED_FRAME):
            self.rows.append([*label, "", "", "", "", SKIPPED])
        else:
            try:
                r = measure()
                self.ms.setdefault((frame, path), []).append((r["ms"], precision, batch))
                self.rows.append([*label, r.get("tiles", 1), f"{r['ms']:.2f}",
                                  f"{1000 / r['ms']:.1f}", fmt_mib(r["peak_mib"]), ""])  # fmt: skip
            except Exception as exc:  # recorded in the row; the run goes on
                self.rows.append([*label, "", "", "", "", failed(exc)])
        reset_peak(self.device)
        print(benchlib.row(self.rows[-1]), flush=True)

    def note(self, path: str, text: str) -> None:
        """One row for every frame: why ``path`` was not measured."""
        self.rows.append(["all", path, "float32", 1, "", "", "", "", text])
        print(benchlib.row(self.rows[-1]), flush=True)


def packed(frames: dict[str, tuple[int, int]], mode: modes.InputMode) -> dict:
    """The model's input size of each output frame (a bayer model's: half, 4 channels)."""
    return {name: (h // mode.scale, w // mode.scale) for name, (h, w) in frames.items()}


def measure_frames(lat: Latency, frames: dict[str, tuple[int, int]], runs: int,
                   warmup: int) -> None:  # fmt: skip
    """Every frame through the bare forward in each precision, then through ``enhance``."""
    device = lat.device
    generator, model_card = card.load_generator(card.shipped())
    generator.to(device)
    mode, infer = model_card.mode, InferConfig()
    shapes = packed(frames, mode)
    precisions = [p for p in PRECISIONS if device.type == "cuda" or p != "float16"]
    for frame, (h, w) in shapes.items():
        for p in precisions:
            lat.add(frame, "bare forward", p, 1,
                    lambda h=h, w=w, p=p, g=generator: forward_row(
                        g, (1, mode.channels, h, w), p, device, runs, warmup))  # fmt: skip
    generator.cpu()
    del generator
    rng = np.random.default_rng(0)
    for frame, (h, w) in shapes.items():
        image = rng.random((h, w, mode.channels), dtype=np.float32)
        for p in ("float32", "bfloat16"):
            for b in ENHANCE_BATCHES:
                lat.add(frame, f"enhance (tile {infer.tile}, default overlap)", p, b,
                        lambda image=image, p=p, b=b: enhance_row(image, p, b, infer, device,
                                                                  runs, warmup))  # fmt: skip


def measure_onnx(lat: Latency, frames: dict[str, tuple[int, int]], runs: int, warmup: int,
                 keep: bool) -> None:  # fmt: skip
    """The exported float32 graph on onnxruntime's provider for the device (CUDA, or the CPU's
    in a CPU smoke run), or one row saying why it did not run."""
    provider = "CUDAExecutionProvider" if lat.device.type == "cuda" else "CPUExecutionProvider"
    path = f"onnxruntime {provider.removesuffix('ExecutionProvider')}"
    try:
        import onnxruntime as ort

        available = ort.get_available_providers()
    except ImportError:
        available = []
    if provider not in available:
        lat.note(path, f"not available: onnxruntime offers {', '.join(available) or 'nothing'}")
        return
    if not lat.budget.allows(NEED_ONNX):
        lat.note(path, SKIPPED)
        return
    model_card = card.ModelCard.load(card.shipped())
    with benchlib.scratch("gpu", keep) as work:
        try:
            export_onnx(card.shipped(), work / "float.onnx")
            session = onnx_session(work / "float.onnx", provider)
        except Exception as exc:  # recorded in the row; the run goes on
            lat.note(path, failed(exc))
            return
        for frame, (h, w) in packed(frames, model_card.mode).items():
            lat.add(frame, path, "float32", 1,
                    lambda h=h, w=w: onnx_row(session, (1, model_card.mode.channels, h, w),
                                              model_card.multiple, runs, warmup))  # fmt: skip


def goal_rows(ms: dict, frame: str) -> list[list]:
    """The 30 fps goal on the 1080p frame: the fastest bare forward and the fastest through
    ``enhance`` (what a user's frame goes through)."""
    rows = []
    for (name, path), found in sorted(ms.items()):
        if name != frame or path.startswith("onnxruntime"):
            continue
        best, precision, batch = min(found)
        what = f"{frame} frame, {path.split(' (')[0]} ({precision}, batch {batch})"
        rows.append(
            [what, f"{best:.1f} ms", f"< {GOAL_FRAME_MS:g} ms", yes_no(best < GOAL_FRAME_MS)]
        )
    return rows or [[f"{frame} frame", "not measured", f"< {GOAL_FRAME_MS:g} ms", yes_no(False)]]


def machine() -> dict:
    """benchlib's machine plus what a GPU's figures depend on: CUDA, cuDNN, onnxruntime."""
    versions = {"CUDA": torch.version.cuda or "none (torch built without CUDA)"}
    if torch.cuda.is_available():
        versions["cuDNN"] = str(torch.backends.cudnn.version())
    with contextlib.suppress(ImportError):
        import onnxruntime as ort

        versions["onnxruntime"] = ort.__version__
    return benchlib.machine(**versions)


def unet(m: ModelConfig) -> str:
    """The generator in words, for the sections' text."""
    residual = "residual " if m.residual else ""
    return f"{m.input} {residual}U-Net, depth {m.depth}, width {m.width}"


def plan(params: Params) -> list[str]:
    """What a full run measures, for the section written before any GPU ran it."""
    m, size = params.model, params.patch.size
    return [
        f"Training: `lowlight.train.train_step` (a discriminator step, then a generator step) on "
        f"pretrain/gpu.yaml's model ({unet(m)}: the shipped model's architecture) with random "
        f"{size}x{size} patches "
        "already on the GPU; steps/s, patches/s and peak GPU memory at batch sizes "
        f"{', '.join(map(str, BATCHES))} (until out of memory), AMP (float16) on and off, plus "
        f"gpu.yaml's own L1-only step at batch {params.train.batch_size}.",
        "Latency of the shipped model (`card.shipped()`) on a 1080p and a 4K frame (a bayer "
        "model's input is the packed mosaic at half size: 540x960x4 and 1080x1920x4): the bare "
        "forward in float32, float16 autocast and bfloat16 autocast (warm-up, then the median "
        f"of {RUNS} synchronised runs), `lowlight.inference.enhance` (tiled, default tile and "
        "overlap, batch 1 and 4, float32 and bfloat16), and onnxruntime's CUDA execution "
        "provider when onnxruntime offers it.",
        f"The goal: a 1080p frame in under {GOAL_FRAME_MS:g} ms (30 fps), met or not.",
    ]


def not_run(args, params: Params) -> int:
    """No CUDA device: say so; unless ``--quick``, write a section saying it has not run yet."""
    print("no CUDA device available: torch sees no GPU; nothing measured")
    if args.quick:
        return 0
    info = machine()
    where = f"{info['cpu']}, {info['cores']} cores, {info['os']}; GPU: {info['gpu']}"
    lines = benchlib.header(
        SECTION,
        "**Not run yet**: no GPU was available on the machine that ran this script "
        f"({where}), so nothing below is measured. On a machine with one CUDA GPU, "
        "`.venv/bin/python bench/gpu.py` (about 8 minutes) replaces this section with the "
        "figures.",
        info,
        benchlib.command(args),
    )
    lines += ["What it will measure:", "", *(f"1. {item}" for item in plan(params)), ""]
    lines += [f"Command to run: `.venv/bin/python bench/gpu.py` (about 8 minutes on one GPU; "
              f"it stops adding rows after `--budget` {args.budget:g} s).", ""]  # fmt: skip
    benchlib.publish(SECTION, lines, args.output)
    return 0


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: smoke-test the code paths (prints only)")  # fmt: skip
    p.add_argument(
        "--budget",
        type=float,
        default=420.0,
        help="seconds after which no more rows are added (a GPU is lent for 8 min)",
    )
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per training row")
    p.add_argument("--runs", type=int, default=RUNS, help="timed runs per latency row (median)")
    args = benchlib.parse(p, argv)
    budget, params = Budget(args.budget), recipe()
    if args.device == "cuda" and not torch.cuda.is_available():
        return not_run(args, params)
    device = torch.device(args.device)
    if device.type == "cpu":
        args.output = None  # the section is for a GPU's figures
    cpu_quick = args.quick and device.type == "cpu"
    if cpu_quick:  # (batches, frames, steps, seconds, runs, warm-up)
        sizes = (2,), {"64x96": (64, 96)}, 2, 0.0, 2, 1
    elif args.quick:
        sizes = (16, 64), {"1080p": FRAMES["1080p"]}, 5, 1.0, 5, 2
    else:
        sizes = BATCHES, FRAMES, 10, args.seconds, args.runs, 3
    batches, frames, steps, seconds, runs, warmup = sizes
    goal_frame = next(iter(frames))
    info = machine()
    print(f"device {device} ({info['gpu'] if device.type == 'cuda' else benchlib.cpu_model()}), "
          f"budget {args.budget:g} s", flush=True)  # fmt: skip
    lat = Latency(budget, device)  # the goal's rows first, the slow ONNX export last
    measure_frames(lat, frames, runs, warmup)
    training = measure_training(params, device, batches, budget, steps, seconds, warmup)
    measure_onnx(lat, frames, runs, warmup, args.keep)
    m, size = params.model, params.patch.size
    more = [f"Time budget {args.budget:g} s; {budget.left():.0f} s were left at the end"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        more.append(f"GPU memory {props.total_memory / 2**30:.1f} GiB; cuDNN autotuning "
                    f"{'on' if torch.backends.cudnn.benchmark else 'off'} (as lowlight runs); "
                    f"TF32 convolutions {'allowed' if torch.backends.cudnn.allow_tf32 else 'off'} "
                    "(torch's default) in the float32 rows")  # fmt: skip
    lines = benchlib.header(
        SECTION,
        f"On {device.type.upper()}: the training step of pretrain/gpu.yaml's model ({unet(m)}: "
        f"the shipped model's architecture) on random {size}x{size} patches already on the "
        f"device, timed over at least {steps} steps and {seconds:g} s after {warmup} untimed "
        f"warm-up step(s) per row; then the shipped model's time per frame: the median of {runs} "
        f"synchronised runs after {warmup} warm-up run(s).",
        info,
        benchlib.command(args),
        *more,
    )
    lines += ["### Training steps", ""]
    lines += table(["step", "AMP", "batch", "steps/s", "patches/s", "step (ms)",
                    "peak GPU memory (MiB)", "note"], training, "lllrrrrl")  # fmt: skip
    lines += ["### Latency of the shipped model", ""]
    lines += table(["frame", "path", "precision", "batch", "tiles", "median (ms)", "fps",
                    "peak GPU memory (MiB)", "note"], lat.rows, "lllrrrrrl")  # fmt: skip
    lines += ["### Goal", ""]
    lines += table(["goal", "measured", "target", "met"], goal_rows(lat.ms, goal_frame), "lrrc")
    benchlib.publish(SECTION, lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
