"""rgb against bayer at equal training time: the ``## modes`` section of BENCHMARKS.md.

Both model inputs learn from `make pretrain`'s data (pretrain/data: the same pairs, splits and
conversions), each cutting its own patches with the recipe's patch settings, and train with
the recipe (pretrain/params.yaml) for the same minutes of training steps (``train.max_minutes``:
the cosine decays over that time). Both are scored on the test split, the model alone.
The rgb model is the RGB-in, RGB-out U-Net of the same depth and width with a global residual.

    .venv/bin/python bench/modes.py [--minutes 10]     # after `make pretrain`
    .venv/bin/python bench/modes.py --quick            # 1 minute each, prints only
    .venv/bin/python bench/modes.py --report           # the table again from the last run
"""

from __future__ import annotations

import json
import sys

import benchlib
from benchlib import table
from lowlight import card, stages
from lowlight.config import Params, load_params
from pretrain import forward_ms_per_mp  # bench/pretrain.py: the shipped model's forward time

SECTION = "## modes"
RUN = benchlib.ROOT / "pretrain"
WORK = benchlib.WORK / "modes"
RESULT = WORK / "result.json"  # read by bench/pretrain.py for its goal table
MODES = ("rgb", "bayer")


def mode_params(p: Params, mode: str, minutes: float) -> Params:
    """The recipe with ``model.input`` = ``mode``, a time budget instead of an epoch count, and
    its own MLflow store."""
    data = p.model_dump()
    data["model"]["input"] = mode
    data["train"].update(max_minutes=minutes, epochs=10_000, init="none")
    data["mlflow"] = {"tracking_uri": f"sqlite:///{WORK / 'mlflow.db'}",
                      "experiment": "lowlight-modes"}  # fmt: skip
    data["evaluate"]["baselines"] = []
    return Params.model_validate(data)


def run_mode(p: Params, mode: str) -> None:
    """Cut the mode's patches, train it for the time budget, score it (all in WORK/mode)."""
    out = WORK / mode
    # the pairs file's paths are relative to pretrain/ (where `make pretrain` runs)
    pairs, converted = RUN / "data" / "pairs.parquet", RUN / "data" / "converted"
    stages.patch.run(p.patch, pairs, out / "patches", p.seed, converted, mode=mode)
    stages.train.run(p.model, p.train, p.mlflow, out / "patches", out / "models",
                     out / "reports", p.seed, work_dir=out / "checkpoints")  # fmt: skip
    stages.evaluate.run(p.evaluate, p.infer, p.mlflow, out / "models", pairs, converted,
                        out / "reports")  # fmt: skip


def collect(mode: str) -> dict:
    """What a finished ``run_mode`` left in WORK/mode, for the table (the forward timed now)."""
    import pyarrow.parquet as pq

    out = WORK / mode
    model_card = card.ModelCard.load(out / "models")
    parts = sorted((out / "patches" / "train").glob("*.parquet"))
    return {"mode": mode, "steps": model_card.steps, "epochs": model_card.epochs,
            "train_patches": sum(pq.ParquetFile(part).metadata.num_rows for part in parts),
            "parameters": card.parameter_count(model_card.arguments),
            "ms_per_mp": forward_ms_per_mp(out / "models", 3),
            "metrics": json.loads((out / "reports/metrics.json").read_text())["model"]}  # fmt: skip


TIE_DB = 0.05  # a PSNR difference below this (about 1 % of the MSE) is reported as a tie


def main(argv: list[str]) -> int:
    parser = benchlib.parser(__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per mode")
    parser.add_argument("--report", action="store_true", help="the section again from the "
                        "last run's models and reports")  # fmt: skip
    args = benchlib.parse(parser, argv)
    minutes = 1.0 if args.quick else args.minutes
    if not (RUN / "data" / "pairs.parquet").exists():
        raise SystemExit("bench/modes.py: run `make pretrain` first (it reads pretrain/data)")
    recipe = load_params(RUN / "params.yaml")
    if args.report:
        minutes = json.loads(RESULT.read_text())["minutes"]
    else:
        with benchlib.scratch("modes", keep=True):
            for mode in MODES:
                run_mode(mode_params(recipe, mode, minutes), mode)
    runs = [collect(mode) for mode in MODES]
    buckets = sorted(b for b in runs[0]["metrics"] if b.startswith("ratio_")) + ["overall"]
    rows = []
    for r in runs:
        m = r["metrics"]
        psnr = [f"{m[b]['psnr']:.2f}" for b in buckets]
        rows.append([r["mode"], f"{r['parameters'] / 1e6:.2f} M", f"{r['ms_per_mp']:.0f}",
                     r["steps"], r["epochs"], r["train_patches"], *psnr,
                     f"{m['overall']['ssim']:.4f}"])  # fmt: skip
    rgb, bayer = (r["metrics"]["overall"]["psnr"] for r in runs)
    verdict = "**yes**" if bayer >= rgb else "**tie**" if rgb - bayer < TIE_DB else "**no**"
    ssim = {r["mode"]: r["metrics"]["overall"]["ssim"] for r in runs}
    speed = runs[0]["ms_per_mp"] / runs[1]["ms_per_mp"]
    result = {"minutes": minutes, "rgb": rgb, "bayer": bayer, "verdict": verdict,
              "ssim_rgb": ssim["rgb"], "ssim_bayer": ssim["bayer"]}  # fmt: skip
    lines = benchlib.header(
        SECTION,
        f"rgb and bayer models at equal training time: {minutes:g} minutes of training steps "
        "each (`train.max_minutes`), the recipe of `make pretrain` otherwise (pretrain/"
        "params.yaml: depth, width, residual, L1, lr and its cosine over the time budget), on "
        "its data and scored on its test split (test scenes from photos never trained on).",
        benchlib.machine(),
        benchlib.command(args),
    )
    heads = [b.replace("ratio_", "x").replace("overall", "all") for b in buckets]
    lines += table(["input", "parameters", "forward ms / raw MP", "steps", "epochs (last partial)",
                    "train patches", *(f"PSNR {h}" for h in heads), "SSIM all"], rows)  # fmt: skip
    lines += [f"At equal training time bayer scores {bayer:.3f} dB against rgb's {rgb:.3f} dB "
              f"overall ({bayer - rgb:+.3f} dB; below {TIE_DB:g} dB is a tie), SSIM "
              f"{ssim['bayer']:.3f} against {ssim['rgb']:.3f}, with a forward pass "
              f"{speed:.1f}x faster per raw megapixel; bayer >= rgb: {verdict}. "
              f"Each bayer step is ~{runs[1]['steps'] / runs[0]['steps']:.1f}x cheaper (a "
              "quarter of the pixels in, the same patches), so bayer saw more steps in the same "
              "time.", ""]  # fmt: skip
    if not args.quick:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2))
    benchlib.publish(SECTION, lines, None if args.quick else args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
