"""Scoring methods against the long exposure, aggregating per ratio, and the report's pictures."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from lowlight import imageio, metrics, storage
from lowlight.baselines import Baseline
from lowlight.card import ModelCard
from lowlight.config import EvaluateConfig, MlflowConfig
from lowlight.conversion import Shot, shot_of
from lowlight.errors import DatasetError
from lowlight.modes import InputMode, to_unit
from lowlight.rendering import RenderParams

log = logging.getLogger(__name__)

# SID's evaluation reports ratios x100, x250 and x300 separately.
RATIO_BUCKETS = (100, 250, 300)


def crop_center(
    image: np.ndarray, crop: tuple[int, int] | None, scale: int = 1, step: int = 1
) -> np.ndarray:
    """The central ``crop`` (H, W) of an image, or the image when ``crop`` is None or larger.

    ``scale`` 2: the same region of an image twice the size of ``crop``'s reference (the RGB
    images beside a packed Bayer input), so both crops stay aligned. ``step``: the crop starts
    on a multiple of it, in the reference's pixels (a packed X-Trans input: 2, its 6x6 period).
    """
    if crop is None:
        return image
    height, width = image.shape[0] // scale, image.shape[1] // scale
    h, w = min(crop[0] // scale, height), min(crop[1] // scale, width)
    y, x = (height - h) // 2 // step * step, (width - w) // 2 // step * step
    return image[y * scale : (y + h) * scale, x * scale : (x + w) * scale]


def ratio_bucket(ratio: float) -> int:
    """The nearest of SID's ratios (100 / 250 / 300: 10 s / 0.033 s is 303) within 5 %, else the
    ratio itself rounded (the sRGB data's darkness levels, 4 to 64)."""
    nearest = min(RATIO_BUCKETS, key=lambda bucket: abs(bucket - ratio))
    return nearest if abs(nearest - ratio) <= 0.05 * nearest else round(ratio)


def score(estimate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Every per-image metric of float images in [0, 1] (data range 1): fidelity (PSNR, SSIM,
    MS-SSIM), naturalness (BRISQUE, of the estimate alone) and tone (issue 23's point 2)."""
    errors = metrics.channel_mean_error(estimate, reference)
    return {
        "psnr": metrics.psnr(estimate, reference),
        "ssim": metrics.ssim(estimate, reference),
        "msssim": metrics.msssim(estimate, reference),
        "msssim_scales": metrics.msssim_scales(*reference.shape[:2]),
        "brisque": metrics.brisque(estimate),
        "mean_error": float(np.max(np.abs(errors))),
        **{f"mean_error_{c}": float(e) for c, e in zip(("r", "g", "b"), errors, strict=True)},
        "dark_lift": metrics.dark_lift(estimate, reference),
    }


# How each per-image metric is summarised over images (metrics.json), and its decimals: the
# channel mean error by its median over frames (issue 23's goal: within 2 %), the time per
# megapixel by its median too (the first frame pays the warm-up: 100x the others), the rest by
# their mean; the NaN of an image a metric is undefined on (too small, flat, a black channel)
# skipped.
SUMMARY: dict[str, tuple] = {
    "psnr": (np.mean, 4),
    "ssim": (np.mean, 4),
    "msssim": (np.nanmean, 4),
    "brisque": (np.nanmean, 2),
    "mean_error": (np.nanmedian, 4),
    "mean_error_r": (np.nanmedian, 4),
    "mean_error_g": (np.nanmedian, 4),
    "mean_error_b": (np.nanmedian, 4),
    "dark_lift": (np.mean, 3),
    "ms_per_mp": (np.median, 2),
}


def summarize(rows: list[dict]) -> dict:
    """Per method, overall and per ratio bucket: each of ``SUMMARY``'s metrics the rows have,
    summarised as it says, and the number of images.

    ``rows`` have method, ratio and the metrics (at least psnr, ssim, ms_per_mp).
    """
    groups: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[row["method"]]["overall"].append(row)
        groups[row["method"]][f"ratio_{ratio_bucket(row['ratio'])}"].append(row)
    result: dict = {}
    for method, buckets in groups.items():
        result[method] = {
            name: {
                **{
                    key: _summary(how, [r[key] for r in items], decimals)
                    for key, (how, decimals) in SUMMARY.items()
                    if key in items[0]
                },
                "images": len(items),
            }
            for name, items in sorted(buckets.items())
        }
    return result


def _summary(how, values: list[float], decimals: int) -> float:
    """``how`` of the values, rounded; NaN (not a warning) when there is nothing to summarise."""
    values = np.asarray(values, np.float64)
    if np.isnan(values).all():
        return float("nan")
    return round(float(how(values)), decimals)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def comparison_grid(columns: list[tuple[str, np.ndarray]], zoom: int = 3) -> np.ndarray:
    """Labelled columns side by side, and below them the same central crop zoomed ``zoom`` x.

    Images are float HxWx3 in [0, 1]; the result is uint8 RGB.
    """
    height, width = columns[0][1].shape[:2]
    ch, cw = max(height // zoom, 1), max(width // zoom, 1)
    y, x = (height - ch) // 2, (width - cw) // 2
    tiles = []
    for label, image in columns:
        full = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
        crop = full[y : y + ch, x : x + cw]
        zoomed = cv2.resize(crop, (width, height), interpolation=cv2.INTER_NEAREST)
        tiles.append(np.concatenate([_label(full, label), zoomed], axis=0))
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    parts = [part for tile in tiles for part in (tile, gap)][:-1]
    return np.concatenate(parts, axis=1)


# The report's columns: heading and format of each summary key (a key a summary lacks shows -).
COLUMNS = {
    "psnr": ("PSNR (dB)", "{:.2f}"),
    "ssim": ("SSIM", "{:.4f}"),
    "msssim": ("MS-SSIM", "{:.4f}"),
    "brisque": ("BRISQUE", "{:.1f}"),
    "mean_error": ("mean error", "{:.1%}"),
    "dark_lift": ("dark lift (/255)", "{:+.2f}"),
    "ms_per_mp": ("ms / MP", "{:.0f}"),
    "images": ("images", "{}"),
}


def markdown_table(summary: dict, bucket: str) -> list[str]:
    lines = [
        "| method | " + " | ".join(head for head, _ in COLUMNS.values()) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for method, buckets in summary.items():
        if bucket in buckets:
            b = buckets[bucket]
            cells = [fmt.format(b[k]) if k in b else "-" for k, (_, fmt) in COLUMNS.items()]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def report_markdown(
    summary: dict, grids: list[tuple[str, str]], note: str, split: str = "test"
) -> str:
    """``report.md``: overall and per-ratio tables, then every comparison grid."""
    lines = [f"# Evaluation on the {split} split", "", note, "", "## Overall", ""]
    lines += markdown_table(summary, "overall")
    buckets = {b for m in summary.values() for b in m if b.startswith("ratio_")}
    for bucket in sorted(buckets, key=lambda b: int(b.removeprefix("ratio_"))):
        lines += ["", f"## Ratio x{bucket.removeprefix('ratio_')}", ""]
        lines += markdown_table(summary, bucket)
    columns = ["dark input", *(m for m in summary if m != "model"), "model", "ground truth"]
    lines += ["", "## Images", "", " | ".join(columns) + ";"]
    lines += ["second row: the centre zoomed.", ""]
    for pair_id, path in grids:
        lines += [f"### {pair_id}", "", f"![{pair_id}]({path})", ""]
    return "\n".join(lines)


def megapixels(image: np.ndarray) -> float:
    return image.shape[0] * image.shape[1] / 1e6


def timed(fn, *args):
    """``fn(*args)`` and the seconds it took."""
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def load_pair(
    row: dict, converted: storage.Location, mode: InputMode, crop: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(model input, RGB dark, RGB bright) of a test pair, cropped to the same scene pixels.

    A model whose output is ``mode.scale`` times its input (bayer) gets its input cropped at
    the input's scale; the RGB images are first cut to what that input covers.
    """
    dark = to_unit(imageio.read_image(storage.join(converted, row["dark"])))
    bright = to_unit(imageio.read_image(storage.join(converted, row["bright"])))
    model_input, scale = mode.model_input(dark, row, converted), mode.scale
    size = (scale * model_input.shape[0], scale * model_input.shape[1])
    dark, bright = dark[: size[0], : size[1]], bright[: size[0], : size[1]]
    return (
        crop_input(model_input, mode, crop),
        crop_rgb(dark, mode, crop),
        crop_rgb(bright, mode, crop),
    )


def load_scored(
    row: dict, converted: storage.Location, mode: InputMode, crop: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(model input, whole RGB dark, RGB dark, RGB bright): ``load_pair``'s frames cut to
    ``crop``, and the whole dark frame a baseline meters (``brightened``)."""
    model_input, whole, bright = load_pair(row, converted, mode, None)
    return (crop_input(model_input, mode, crop), whole, crop_rgb(whole, mode, crop),
            crop_rgb(bright, mode, crop))  # fmt: skip


def crop_rgb(image: np.ndarray, mode: InputMode, crop: tuple[int, int] | None) -> np.ndarray:
    """An RGB frame's central ``crop``, aligned with ``crop_input``'s."""
    return crop_center(image, crop, mode.scale, mode.period // mode.scale)


def crop_input(image: np.ndarray, mode: InputMode, crop: tuple[int, int] | None) -> np.ndarray:
    """A model input's central ``crop`` (given in output pixels), on the colour pattern's
    period (in input pixels, so its phase is kept)."""
    small = (crop[0] // mode.scale, crop[1] // mode.scale) if crop else None
    return crop_center(image, small, 1, mode.period // mode.scale)


def row_render(row: dict) -> RenderParams | None:
    """The dark frame's rendering parameters, as a user's file of it would give them."""
    return RenderParams.from_dict(json.loads(row["dark_render"])) if row["dark_render"] else None


def brightened(
    method: Baseline, shot: Shot, whole: np.ndarray, mode: InputMode, crop: tuple[int, int] | None
) -> np.ndarray:
    """A baseline's brightening of the dark frame as its tools get it (``Shot``), cut to the
    evaluation crop: of the whole frame where it meters the whole photo (``Baseline.whole``),
    as a user's tool does, else of the crop."""
    if method.whole:
        return crop_rgb(method.brighten(shot.for_baselines(whole)), mode, crop)
    return method.brighten(shot.for_baselines(crop_rgb(whole, mode, crop)))


def score_pairs(
    rows: list[dict], methods: dict, converted: storage.Location, cfg: EvaluateConfig,
    grids_dir: Path, mode: InputMode, shots: dict[str, Shot] | None = None,
) -> tuple[list[dict], list[tuple[str, str]]]:  # fmt: skip
    """Every method on every pair: score rows, and a comparison grid per pair in ``grids_dir``.

    The model gets the mode's input; the baselines the RGB conversion of the same frame, or
    for a JPEG/PNG the dark photo as it was taken (they brighten it themselves, as a user's
    tools would). A ``Baseline`` brightens the whole frame, as a user's tool meters the whole
    photo, and BM3D (slow) runs on the evaluation crop only. ``shots``: how convert brightened
    each converted file (the grid shows the dark input as it was before; default: by the
    pair's ratio).
    """
    shots = shots or {}
    scores, grids = [], []
    for row in tqdm(rows, desc="evaluate", unit="pair"):
        model_input, whole, dark, bright = load_scored(row, converted, mode, cfg.crop)
        shot = shot_of(row, shots)
        reference_brisque = metrics.brisque(bright)  # what "natural" reads on these scenes
        # each brightening once (lime and lime+bm3d share it), its time counted in both; a
        # time per megapixel of what each step ran on (the whole frame or the crop)
        outputs, bright_of = {}, {}
        for name, method in methods.items():
            if name == "model":  # the mode's input, and its output as the file renders it
                restored, seconds = timed(method, model_input)
                outputs[name], rendering = timed(mode.finish, restored, row_render(row))
                rate = 1000 * (seconds + rendering) / megapixels(dark)
            else:  # a Baseline
                if method.brighten not in bright_of:
                    image, seconds = timed(brightened, method, shot, whole, mode, cfg.crop)
                    area = whole if method.whole else dark
                    bright_of[method.brighten] = image, 1000 * seconds / megapixels(area)
                image, brighten_rate = bright_of[method.brighten]
                outputs[name], seconds = timed(method.denoise, image)
                rate = brighten_rate + 1000 * seconds / megapixels(dark)
            scores.append(
                {
                    "pair_id": row["pair_id"],
                    "scene_id": row["scene_id"],
                    "ratio": row["ratio"],
                    "method": name,
                    **score(outputs[name], bright),
                    "brisque_ground_truth": reference_brisque,
                    "ms_per_mp": rate,
                }
            )
        columns = [("dark input", shot.as_taken(dark))]
        columns += [(name, image) for name, image in outputs.items()]
        columns += [("ground truth", bright)]
        grid = grids_dir / f"{row['pair_id']}.png"
        imageio.write_image(grid, comparison_grid(columns, cfg.zoom), "png")
        grids.append((row["pair_id"], f"grids/{grid.name}"))
    return scores, grids


def read_metrics(reports_dir: Path) -> dict:
    """A report folder's metrics.json (``write_evaluation``), or one line saying to evaluate."""
    path = Path(reports_dir) / "metrics.json"
    if not path.exists():
        raise DatasetError(f"{path}: not found; run `lowlight evaluate` first")
    return json.loads(path.read_text())


def write_evaluation(
    out: Path, summary: dict, scores: list[dict], grids: list, card: ModelCard, cfg: EvaluateConfig
) -> None:
    """metrics.json (DVC metrics), per_image.csv, psnr_by_ratio.csv (DVC plot), report.md."""
    import csv

    with storage.atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    with storage.atomic_path(out / "per_image.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(scores[0]))
        writer.writeheader()
        writer.writerows(scores)
    methods = list(summary)
    with storage.atomic_path(out / "psnr_by_ratio.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ratio", *methods])
        keys = {k for m in methods for k in summary[m] if k.startswith("ratio_")}
        for bucket in sorted(int(k.removeprefix("ratio_")) for k in keys):
            key = f"ratio_{bucket}"
            if all(key in summary[m] for m in methods):
                writer.writerow([bucket, *(summary[m][key]["psnr"] for m in methods)])
    crop = f"the central {cfg.crop[0]}x{cfg.crop[1]} pixels" if cfg.crop else "whole images"
    note = (
        f"Every method is scored on the same pixels ({crop}) against the long exposure; PSNR and "
        "SSIM from scikit-image with data range 1. Excluded scenes (misaligned in SID): "
        f"{', '.join(cfg.exclude_scenes) or 'none'}. Model: {card.architecture} "
        f"depth {card.arguments.get('depth')} width {card.arguments.get('width')}, input "
        f"{card.input}.\n\n" + metrics_note(scores)
    )
    with storage.atomic_path(out / "report.md") as tmp:
        tmp.write_text(report_markdown(summary, grids, note, cfg.split) + "\n")


def metrics_note(scores: list[dict]) -> str:
    """What the report's columns measure, which way is better, and how small images were
    scored."""
    scales = sorted({r["msssim_scales"] for r in scores if "msssim_scales" in r})
    full = len(metrics.MSSSIM_BETAS)
    small = [s for s in scales if s < full]
    scale_text = (
        f"; images under 176 px on a side had {' / '.join(map(str, small))} scales here, with "
        "the first weights renormalised to sum to 1 (under 11 px: not scored)"
        if small
        else ""
    )
    natural = [r["brisque_ground_truth"] for r in scores if "brisque_ground_truth" in r]
    natural_text = (
        f" (the long exposures here: {np.nanmean(natural):.1f})"
        if natural and not np.isnan(natural).all()
        else ""
    )
    return (
        "Higher is better for PSNR, SSIM and MS-SSIM, lower for BRISQUE, nearer 0 for the "
        "mean error and the dark lift. **MS-SSIM**: multi-scale SSIM (torchmetrics, "
        f"Wang et al. 2003's {full} scales and weights, 11 px Gaussian window, RGB, data range "
        f"1), structure and contrast from fine to coarse{scale_text}. **BRISQUE**: no-reference "
        "naturalness (Mittal et al. 2012, the SVM shipped in the `brisque` package, of the "
        "output alone at full size); lower is more natural, about 0-20 for clean photos, higher "
        f"with noise or blur{natural_text}. **mean error**: per channel (mean(output) - "
        "mean(truth)) / mean(truth) on the sRGB values, the largest of R, G, B in magnitude; "
        "summarised by the median over images (goal: within 2 %; metrics.json and per_image.csv "
        "keep each channel's signed error). **dark lift**: mean of output - truth over the "
        "darkest tenth of the truth's pixels (by luminance), in 1/255; positive = lifted "
        "blacks (goal: at most 1). The others are means over images."
    )


def log_evaluation(
    mlflow_cfg: MlflowConfig, run_id: str, summary: dict, out: Path, split: str = "test"
) -> None:
    """Add the split's metrics (``test_*``, ``val_*``) and the report to the training run,
    when it can be found."""
    import mlflow

    from lowlight import tracking

    if not run_id:
        log.warning("the model card names no MLflow run: evaluation not logged to MLflow")
        return
    try:
        with tracking.run(mlflow_cfg, run_id=run_id):
            flat = {
                f"{split}_{bucket}_{name}_{method}".replace("+", "_"): value
                for method, buckets in summary.items()
                for bucket, values in buckets.items()
                for name, value in values.items()
                if name in SUMMARY
            }
            mlflow.log_metrics(flat)
            folder = "evaluation" if split == "test" else f"evaluation-{split}"
            mlflow.log_artifacts(str(out), folder)
    except mlflow.exceptions.MlflowException as exc:
        log.warning("could not log the evaluation to MLflow run %s: %s", run_id, exc)
