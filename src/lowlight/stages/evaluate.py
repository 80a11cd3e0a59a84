"""evaluate: the model and the classical baselines on every test pair (or validation pair, to
choose between models without touching the test split); metrics, grids, report."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from lowlight import conversion, evaluation, inference, pairs, storage
from lowlight.config import EvaluateConfig, InferConfig, MlflowConfig
from lowlight.errors import DatasetError


def run(
    cfg: EvaluateConfig,
    infer: InferConfig,
    mlflow_cfg: MlflowConfig,
    models_dir: Path,
    pairs_loc: storage.Location,
    converted: storage.Location | None,
    out: Path,
) -> dict:
    """Score the model and the baselines on ``cfg.split``; write metrics, grids and report."""
    from lowlight.baselines import BASELINES

    table, converted = pairs.read_pairs(pairs_loc, converted)
    rows = [
        r
        for r in sorted(table.to_pylist(), key=lambda r: r["pair_id"])
        if r["split"] == cfg.split and r["scene_id"] not in cfg.exclude_scenes
    ]
    if not rows:
        raise DatasetError(f"{pairs_loc}: no {cfg.split} pairs to evaluate (after excluded scenes)")
    model, card = inference.load_model(models_dir, infer.device, infer.precision)
    card.mode.check_pairs(rows, pairs_loc)
    methods = {name: BASELINES[name] for name in cfg.baselines}
    if cfg.bm3d_sigma_scale is not None and "amplify+bm3d" in methods:  # another camera's scale
        methods["amplify+bm3d"] = methods["amplify+bm3d"].at_scale(cfg.bm3d_sigma_scale)
    methods["model"] = partial(
        inference.enhance,
        model=model,
        tile=infer.tile,
        overlap=infer.overlap,
        batch=infer.batch,
        multiple=card.multiple,
    )
    out = Path(out)
    shots = conversion.read_shots(converted)
    with storage.staged_dir(out / "grids", known=("*.png",), stage="evaluate") as grids_dir:
        scores, grids = evaluation.score_pairs(rows, methods, converted, cfg, grids_dir, card.mode,
                                               shots)  # fmt: skip
    summary = evaluation.summarize(scores)
    evaluation.write_evaluation(out, summary, scores, grids, card, cfg)
    evaluation.log_evaluation(mlflow_cfg, card.mlflow_run_id, summary, out, cfg.split)
    model_psnr = summary["model"]["overall"]["psnr"]
    return {
        f"{cfg.split}_pairs": len(rows),
        **{f"psnr_{m}": s["overall"]["psnr"] for m, s in summary.items()},
        "ssim_model": summary["model"]["overall"]["ssim"],
        **{
            f"{name}_model": summary["model"]["overall"][name]
            for name in ("msssim", "brisque", "mean_error", "dark_lift")
        },
        "model_ms_per_mp": summary["model"]["overall"]["ms_per_mp"],
        "report": str(out / "report.md"),
        "best": max(summary, key=lambda m: summary[m]["overall"]["psnr"]) if model_psnr else "",
    }
