"""Whole-image inference speed: torch vs onnxruntime on CPU, a tile-size sweep, int8, BM3D.

Needs a trained model in ``models/`` (``make demo`` makes one, or ``--models``); writes the
``## inference`` section of BENCHMARKS.md.

    .venv/bin/python bench/inference.py            # full run
    .venv/bin/python bench/inference.py --quick    # smoke run, prints only
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import benchlib
from benchlib import table, yes_no
from lowlight import baselines, metrics
from lowlight.card import ModelCard
from lowlight.export import export_onnx
from lowlight.imageio import read_image
from lowlight.inference import enhance, load_model
from lowlight.modes import to_unit
from lowlight.pairs import read_pairs

SECTION = "## inference"
FRAME = (1080, 1920)  # one 1080p frame
GOAL_FRAME_MS = 33  # the seed's real-time target per 1080p frame (on a GPU)
OVERLAP, BATCH = 32, 4  # tiles blended with this overlap, this many per batch


def test_images(pairs_path: Path, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(amplified dark, long exposure) float images of the first test pairs."""
    table_, converted = read_pairs(pairs_path)
    rows = [r for r in table_.to_pylist() if r["split"] == "test"][:limit]
    return [
        tuple(to_unit(read_image(Path(converted) / r[k])) for k in ("dark", "bright")) for r in rows
    ]


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--models", type=Path, default=benchlib.ROOT / "models")
    p.add_argument("--pairs", type=Path, default=benchlib.ROOT / "data" / "pairs.parquet")
    args = benchlib.parse(p, argv)
    frame = (270, 480) if args.quick else FRAME
    card = ModelCard.load(args.models)
    with benchlib.scratch("inference", args.keep) as work:
        export_onnx(args.models, work / "float.onnx")
        export_onnx(args.models, work / "int8.onnx", int8=True)
        sizes = {k: (work / f"{k}.onnx").stat().st_size / 1e6 for k in ("float", "int8")}
        torch_model = load_model(args.models, "cpu")[0]
        onnx = {(f"onnxruntime{' int8' * (k == 'int8')}", 256): load_model(work / f"{k}.onnx")[0]
                for k in ("float", "int8")}  # fmt: skip
        rng = np.random.default_rng(0)
        image = rng.random((*frame, card.arguments["in_channels"]), dtype=np.float32)
        mp = frame[0] * frame[1] / 1e6
        runs = {("torch", t): torch_model for t in (128, 256, 512)} | onnx
        ms = {(name, t): 1000 * benchlib.best_time(
                  lambda m=m, t=t: enhance(image, m, t, OVERLAP, BATCH), args.repeat)
              for (name, t), m in runs.items()}  # fmt: skip
        # BM3D on a 256x384 (0.098304 MP) RGB crop, scaled per megapixel (it is ~linear in pixels).
        crop = rng.random((256, 384, 3), dtype=np.float32)
        bm3d_ms_mp = benchlib.best_time(lambda: baselines.amplify_bm3d(crop), 1) / 0.098304 * 1e3
        # int8 against float32 on test images, against the long exposure.
        pairs = test_images(args.pairs, 2 if args.quick else 6) if args.pairs.exists() else []
        scores = [[metrics.psnr(enhance(dark, m, 256, OVERLAP, BATCH), bright)
                   for m in onnx.values()] for dark, bright in pairs]  # fmt: skip
    psnr_float, psnr_int8 = np.mean(scores, axis=0) if scores else (float("nan"),) * 2
    fastest = min(ms, key=ms.get)
    torch_best = min((k for k in ms if k[0] == "torch"), key=ms.get)
    info = benchlib.machine()
    lines = benchlib.header(
        SECTION,
        f"Whole-image enhancement of a {frame[1]}x{frame[0]} frame with the model in "
        f"`{args.models.name}/` ({card.architecture}, depth {card.arguments['depth']}, width "
        f"{card.arguments['width']}, input {card.input}), tiles blended with overlap {OVERLAP}, "
        f"{BATCH} tiles per batch; best of {args.repeat} runs.",
        info,
        benchlib.command(args),
    )
    rows = [[n, t, f"{v / mp:.0f}", f"{v:.0f}"] for (n, t), v in ms.items()]
    rows += [["BM3D (amplify+bm3d baseline)", "-", f"{bm3d_ms_mp:.0f}", f"{bm3d_ms_mp * mp:.0f}"]]
    lines += table(["runtime", "tile", "ms / MP", "ms / frame"], rows)
    frame_ms = ms[fastest] * (FRAME[0] * FRAME[1] / 1e6) / mp
    lines += [f"Model (torch, tile {torch_best[1]}) vs BM3D per megapixel: "
              f"{bm3d_ms_mp / (ms[torch_best] / mp):.1f}x faster. Fastest: {fastest[0]}, tile "
              f"{fastest[1]}, {frame_ms:.0f} ms per 1080p frame on the CPU (GPU: {info['gpu']}); "
              f"real-time goal <= {GOAL_FRAME_MS} ms: {yes_no(frame_ms <= GOAL_FRAME_MS)}.",
              ""]  # fmt: skip
    lines += table(
        ["ONNX model", "size (MB)", "PSNR on the test images (dB)"],
        [["float32", f"{sizes['float']:.2f}", f"{psnr_float:.2f}"],
         ["int8 (dynamic quantisation)", f"{sizes['int8']:.2f}", f"{psnr_int8:.2f}"]],
    )  # fmt: skip
    lines += [f"int8 costs {psnr_float - psnr_int8:.2f} dB against float32 on those images.", ""]
    benchlib.publish(SECTION, lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
