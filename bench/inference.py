"""How fast is inference on the CPU: the shipped model over a whole Sony frame, tiled against one
bare forward pass; reduced precision (static int8 ONNX, bfloat16) with its cost in dB on test
images; amplify+BM3D beside it. (The bare forward on a 1024x1536 frame, against its goal, is
bench/pretrain.py's; a GPU's latency is bench/gpu.py's.)

Uses the shipped model (``--models``) and, for the test images and the int8 calibration
patches, ``make pretrain``'s data (``--run pretrain``), else the demo's (``--run .``). Writes the
``## inference`` section of BENCHMARKS.md.

    .venv/bin/python bench/inference.py            # full run, about 6 minutes on 2 cores
    .venv/bin/python bench/inference.py --quick    # smoke run on a small frame, prints only
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

import benchlib
from benchlib import table, yes_no
from lowlight import baselines, card, evaluation, imageio, metrics, pairs
from lowlight.config import InferConfig
from lowlight.export import export_onnx
from lowlight.inference import enhance, load_model, load_torch
from lowlight.tiling import default_overlap, tile_grid

SECTION = "## inference"
SONY = (2832, 4240)  # the a7S II's raw mosaic (rows, columns): 12.0 raw megapixels
BORDER = 16  # output pixels left out at the image border when comparing with the bare pass
GOAL_INT8, GOAL_TILED = 0.67, 1.25


def sony_frame(run: Path, quick: bool) -> tuple[np.ndarray, str]:
    """A packed dark test frame of ``run``, mirrored out to a whole Sony frame (real content
    and noise at every tile), or noise when the run has no data."""
    shape = (SONY[0] // 8, SONY[1] // 8) if quick else (SONY[0] // 2, SONY[1] // 2)
    rows = test_rows(run)
    if not rows:
        rng = np.random.default_rng(0)
        return rng.random((*shape, 4), dtype=np.float32) * 0.2, "uniform noise in [0, 0.2]"
    table_, converted = pairs.read_pairs(run / "data/pairs.parquet")
    row = rows[0]
    packed = imageio.decode_signed16(imageio.read_packed(run / converted / row["dark_packed"]))
    reps = (-(-shape[0] // packed.shape[0]), -(-shape[1] // packed.shape[1]), 1)
    tiled = np.pad(packed, [(0, (r - 1) * s) for r, s in zip(reps, packed.shape, strict=True)],
                   mode="symmetric")  # fmt: skip
    return np.ascontiguousarray(tiled[: shape[0], : shape[1]]), f"test pair {row['pair_id']}"


def test_rows(run: Path) -> list[dict]:
    path = run / "data/pairs.parquet"
    if not path.exists():
        return []
    table_, _ = pairs.read_pairs(path)
    return [r for r in table_.to_pylist() if r["split"] == "test" and r["dark_packed"]]


def where(path: Path) -> str:
    return str(Path(path).resolve()).removeprefix(f"{benchlib.ROOT}/")


def bare_fn(generator: torch.nn.Module, dtype: torch.dtype = torch.float32):
    @torch.inference_mode()
    def run(image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(dtype)
        return generator(x)[0].float().numpy().transpose(1, 2, 0).clip(0, 1)

    return run


def time_rounds(runs: dict, repeat: int) -> dict[str, list[float]]:
    """Every configuration once per round, rounds interleaved: wall seconds per configuration."""
    walls: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            walls[name].append(benchlib.timed(fn)["wall"])
    return walls


def psnr_rows(run: Path, methods: dict, limit: int) -> dict[str, float]:
    """Mean PSNR of each tile function on the run's test pairs (whole frames, as rendered)."""
    rows = test_rows(run)[:limit]
    _, converted = pairs.read_pairs(run / "data/pairs.parquet")
    scores: dict[str, list[float]] = {name: [] for name in methods}
    infer = InferConfig()
    for row in rows:
        for name, (fn, model_card) in methods.items():
            model_input, _, bright = evaluation.load_pair(row, run / converted, model_card.mode,
                                                          None)  # fmt: skip
            out = enhance(model_input, fn, infer.tile, infer.overlap, 1, model_card.multiple)
            rendered = model_card.mode.finish(out, evaluation.row_render(row))
            scores[name].append(metrics.psnr(rendered, bright))
    return {name: float(np.mean(v)) for name, v in scores.items()} | {"images": len(rows)}


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--models", type=Path, default=card.shipped())
    pretrain = benchlib.ROOT / "pretrain"
    run = pretrain if (pretrain / "data/pairs.parquet").exists() else benchlib.ROOT
    p.add_argument("--run", type=Path, default=run,
                   help="a run folder with data/pairs.parquet and data/patches [default: "
                   "pretrain/ after make pretrain, else the demo's]")  # fmt: skip
    p.add_argument("--images", type=int, default=60, help="test images for the PSNR columns")
    args = benchlib.parse(p, argv)
    repeat, infer = args.repeat, InferConfig()
    model_card = card.ModelCard.load(args.models)
    frame, content = sony_frame(args.run, args.quick)
    height, width = frame.shape[:2]
    raw_mp = 4 * height * width / 1e6
    generator, _ = card.load_generator(args.models)
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    multiple = model_card.multiple
    with benchlib.scratch("inference", args.keep) as work:
        fp32_onnx, int8_onnx = work / "float32.onnx", work / "int8.onnx"
        export_onnx(args.models, fp32_onnx)
        calibration = args.run / "data/patches/train"
        export_onnx(args.models, int8_onnx, int8=True, calibration=calibration)
        sizes = {k: p.stat().st_size / 1e6 for k, p in (("fp32", fp32_onnx), ("int8", int8_onnx))}
        loaded = {"torch float32": load_torch(args.models, "cpu"),
                  "onnxruntime float32": load_model(fp32_onnx),
                  "onnxruntime int8 (static)": load_model(int8_onnx)}  # fmt: skip
        if bf16:
            loaded["torch bfloat16"] = load_torch(args.models, "cpu", "bfloat16")
        tiles = {name: fn for name, (fn, _) in loaded.items()}
        (tile_h, tile_w), grid = tile_grid(height, width, infer.tile, infer.overlap, multiple)

        def tiled(fn, tile=infer.tile, overlap=infer.overlap, batch=infer.batch):
            return lambda: enhance(frame, fn, tile, overlap, batch, multiple)

        runs = {"bare forward, float32": lambda: bare_fn(generator)(frame)}
        if bf16:
            bf16_generator, _ = card.load_generator(args.models)
            bf16_generator.to(torch.bfloat16)
            runs["bare forward, bfloat16"] = lambda: bare_fn(bf16_generator, torch.bfloat16)(frame)
        runs |= {f"tiled, {name}": tiled(fn) for name, fn in tiles.items()}
        runs["tiled, torch float32, batch 4"] = tiled(tiles["torch float32"], batch=4)
        runs["tiled, torch float32, old tiles (256, overlap 32)"] = tiled(tiles["torch float32"],
                                                                          256, 32, 4)  # fmt: skip
        walls = time_rounds(runs, repeat)
        outputs = {name: fn() for name, fn in runs.items()}
        bare = outputs["bare forward, float32"]
        inner = np.s_[BORDER:-BORDER, BORDER:-BORDER]
        diffs = {k: 255 * float(np.abs(v[inner] - bare[inner]).max()) for k, v in outputs.items()}
        grid_pixels = len(grid) * tile_h * tile_w / (height * width)
        limit = 2 if args.quick else args.images  # the accuracy of reduced precision
        quality = psnr_rows(args.run, loaded, limit) if test_rows(args.run) else {}
    crop = np.random.default_rng(0).random((256, 384, 3), dtype=np.float32) * 0.1
    bm3d_ms = 1000 * benchlib.best_time(lambda: baselines.amplify_bm3d(crop), 1) / 0.098304

    ms = {name: 1000 * min(v) / raw_mp for name, v in walls.items()}
    bare_ms = ms["bare forward, float32"]
    tiled_ms = ms["tiled, torch float32"]
    int8_ratio = ms["tiled, onnxruntime int8 (static)"] / ms["tiled, onnxruntime float32"]
    info = benchlib.machine(onnxruntime=__import__("onnxruntime").__version__)
    lines = benchlib.header(
        SECTION,
        f"The model in `{where(args.models)}` ({model_card.architecture},"
        f" depth {model_card.arguments['depth']}, width {model_card.arguments['width']}, input "
        f"{model_card.input}) on a whole Sony a7S II frame ({SONY[1]}x{SONY[0]} raw pixels, "
        f"packed {width}x{height}x4; content: {content}, mirrored out to the frame), on the CPU.",
        info,
        benchlib.command(args),
        f"Timing: wall time of the whole call, best of {repeat} interleaved rounds; ms per raw "
        "megapixel. Bare forward: the network once over the whole frame. Tiled: "
        f"`lowlight.inference.enhance` with the `infer` defaults (tile {infer.tile}, overlap "
        f"{default_overlap(multiple)} = 12 x 2**depth, batch {infer.batch}): {len(grid)} tiles "
        f"of {tile_w}x{tile_h}, "
        f"{grid_pixels:.2f}x the frame's pixels; each tile keeps what lies >= overlap/2 from its "
        "cut edges, tiles start on the network's pooling grid.",
        f"max diff: the largest difference from the bare float32 output, in 1/255 steps of the "
        f"network's [0, 1] output, {BORDER} pixels from the image border left out.",
    )
    rows = [[name, f"{1000 * min(walls[name]):.0f}", f"{ms[name]:.0f}",
             f"{ms[name] / bare_ms:.2f}x", f"{diffs[name]:.2f}"]
            for name in runs]  # fmt: skip
    lines += table(["configuration", "ms / frame", "ms / raw MP", "vs bare float32",
                    "max diff (/255)"], rows)  # fmt: skip
    if quality:
        base = quality["torch float32"]
        lines += [
            f"Reduced precision on {quality['images']} test images of `{args.run.name}` (whole "
            "frames, rendered as the files say, against the long exposure):",
            "",
        ]
        size = {"onnxruntime float32": sizes["fp32"], "onnxruntime int8 (static)": sizes["int8"]}
        qrows = [[name, f"{quality[name]:.3f}", f"{base - quality[name]:+.3f}",
                  f"{size[name]:.2f}" if name in size else "-"]
                 for name in loaded]  # fmt: skip
        lines += table(["precision", "PSNR (dB)", "cost (dB)", "ONNX size (MB)"], qrows)
    lines += [f"int8 is static: weights per channel, activations calibrated on 64 dark patches of "
              f"`{where(calibration)}`, the full-resolution layers kept float32.", ""]  # fmt: skip
    lines += [f"amplify+BM3D: {bm3d_ms:.0f} ms per megapixel (one 256x384 RGB crop); the tiled "
              f"model is {bm3d_ms / tiled_ms:.0f}x faster.", ""]  # fmt: skip
    checks = [
        ("int8 / float32 time (onnxruntime, tiled frame)", int8_ratio, "<=", GOAL_INT8),
        ("tiled whole frame / bare forward (torch float32)", tiled_ms / bare_ms, "<=", GOAL_TILED),
    ]
    lines += benchlib.goals(*checks)  # the GPU's goal (1080p in 33 ms) is bench/gpu.py's
    if quality:
        cost = quality["onnxruntime float32"] - quality["onnxruntime int8 (static)"]
        lines += [f"int8's accuracy: {cost:+.3f} dB against float32 (goal <= 0.1 dB): "
                  f"{yes_no(cost <= 0.1)}.", ""]  # fmt: skip
    benchlib.publish(SECTION, lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
