"""The shipped models' goals. RAW: its test figures from `make pretrain-raw` against
amplify+BM3D per ratio, its tones, the L1 model against its GAN fine-tune (both rows), and its
bare forward time per raw megapixel on this machine. sRGB (--srgb): its test figures from
`make pretrain-srgb` against the best of the tools a user would reach for, per darkness level.
X-Trans (--xtrans): its test figures from `make pretrain-xtrans` against amplify+BM3D per
ratio, BM3D's noise scale on the X-T2's validation frames, how far a linear demosaic is from
its targets, and its forward time per raw megapixel against the shipped Bayer model's.

Writes the ``## pretrain`` (``## pretrain-srgb``, ``## pretrain-xtrans``) section of
BENCHMARKS.md.

    .venv/bin/python bench/pretrain.py            # reads pretrain/, times the shipped model
    .venv/bin/python bench/pretrain.py --srgb     # reads pretrain/srgb/
    .venv/bin/python bench/pretrain.py --xtrans   # reads pretrain/xtrans/, times both RAW models
    .venv/bin/python bench/pretrain.py --quick    # prints only
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import torch

import benchlib
from benchlib import table, yes_no
from lowlight import card

SECTION = "## pretrain"
RUN = benchlib.ROOT / "pretrain"
GOAL_GAIN = 3.0  # dB over amplify+BM3D at every ratio, on camera-like frames (issue 23)
GOAL_MS = 150.0  # forward pass per raw megapixel on 2 CPU cores
GOAL_MEAN_ERROR = 0.02  # per-channel mean within 2 % of the ground truth's (median over frames)
GOAL_DARK_LIFT = 1.0  # the darkest tenth lifted by at most 1/255 on average
FRAME = (1024, 1536)  # raw pixels of the timed frame


def forward_ms_per_mp(models: Path, repeat: int) -> float:
    """Bare generator forward on one packed frame of FRAME raw pixels, best of ``repeat``."""
    generator, model_card = card.load_generator(models)
    scale = model_card.mode.scale
    x = torch.rand(1, model_card.mode.channels, FRAME[0] // scale, FRAME[1] // scale)
    with torch.inference_mode():
        generator(x)  # oneDNN prepares its kernels on the first call: not timed
        seconds = benchlib.best_time(lambda: generator(x), repeat)
    return 1000 * seconds / (FRAME[0] * FRAME[1] / 1e6)


def picture(
    path: Path, pair_id: str, run: Path = RUN, input_mode: str = "bayer",
    baseline: str = "amplify+bm3d",
) -> None:  # fmt: skip
    """dark | a baseline | shipped model | ground truth of one test pair, a small JPEG."""
    import cv2

    from lowlight import baselines, conversion, evaluation, inference, pairs

    table_, converted = pairs.read_pairs(run / "data/pairs.parquet")
    row = next(r for r in table_.to_pylist() if r["pair_id"] == pair_id)
    shot = conversion.shot_of(row, conversion.read_shots(run / converted))
    fn, model_card = inference.load_model(card.shipped(input_mode), "cpu")
    mode = model_card.mode
    crop = (256, 384)
    model_input, whole, dark, bright = evaluation.load_scored(row, run / converted, mode, crop)
    out = inference.enhance(model_input, fn, 640, None, 1, model_card.multiple)
    model = mode.finish(out, evaluation.row_render(row))
    method = baselines.BASELINES[baseline]  # as evaluate runs it
    base = method.denoise(evaluation.brightened(method, shot, whole, mode, crop))
    columns = [("dark input", shot.as_taken(dark)), (baseline, base),
               ("shipped model", model), ("ground truth", bright)]  # fmt: skip
    grid = evaluation.comparison_grid(columns, zoom=3)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 85])  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, pair {pair_id})")


def median_pair(reports: Path, baseline: str = "amplify+bm3d") -> str:
    """The test pair whose model gain over ``baseline`` is the median: a fair picture, not the
    best."""
    with open(reports / "per_image.csv") as fh:
        rows = list(csv.DictReader(fh))
    psnr = {(r["pair_id"], r["method"]): float(r["psnr"]) for r in rows}
    gains = sorted((psnr[(p, "model")] - psnr[(p, baseline)], p)
                   for p, m in psnr if m == "model")  # fmt: skip
    return gains[len(gains) // 2][1]


SCALES = (1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 10.0, 12.0, 16.0, 24.0, 36.0, 54.0, 64.0, 80.0, 96.0, 120.0)
SRGB_SCALES = (2.0, 4.0, 8.0, 16.0, 32.0)


def one_draw_val_rows(run: Path) -> tuple[list[dict], str]:
    """``run``'s validation pairs, one noise draw a scene, and its converted folder."""
    from lowlight import pairs

    table_, converted = pairs.read_pairs(run / "data/pairs.parquet")
    rows = [r for r in table_.to_pylist() if r["split"] == "val" and "_00_" in r["pair_id"]]
    return rows, converted


def sigma_study(
    scales: tuple[float, ...] = SCALES, run: Path = RUN, brighten: str = "amplify"
) -> dict[str, float]:
    """Mean PSNR of BM3D after ``brighten`` (a baseline's name) at each scale of skimage's
    noise estimate on the VALIDATION pairs (one noise draw per scene, the evaluation crop);
    cached beside the run's data (a training run replaces its reports), since BM3D is slow."""
    cache = run / (f"data/bm3d_sigma_val_{brighten}.json" if brighten != "amplify"
                   else "reports/bm3d_sigma_val.json")  # fmt: skip
    if cache.exists():
        return json.loads(cache.read_text())
    import numpy as np

    from lowlight import baselines, conversion, evaluation, imageio, metrics, modes

    rows, converted = one_draw_val_rows(run)
    shots = conversion.read_shots(run / converted)
    found: dict[str, list[float]] = {f"x{s:g}": [] for s in scales}
    for row in rows:
        whole, bright = (modes.to_unit(imageio.read_image(run / converted / row[k]))
                         for k in ("dark", "bright"))  # fmt: skip
        bright = evaluation.crop_center(bright, (256, 384))
        shot = conversion.shot_of(row, shots)  # brightened as evaluate does: the whole frame
        base = evaluation.brightened(baselines.BASELINES[brighten], shot, whole,
                                     modes.get("rgb"), (256, 384))  # fmt: skip
        for scale in scales:
            found[f"x{scale:g}"].append(
                metrics.psnr(baselines.amplify_bm3d(base, sigma_scale=scale), bright)
            )
    result = {k: float(np.mean(v)) for k, v in found.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=2))
    return result


def modes_row() -> list[str]:
    """bench/modes.py's verdict (its own section has the table), if it has run on this data."""
    result = benchlib.WORK / "modes" / "result.json"
    if not result.exists():
        return ["bayer >= rgb at equal training time", "not measured (bench/modes.py)", "",
                "**no**"]  # fmt: skip
    r = json.loads(result.read_text())
    return ["bayer >= rgb at equal training time (## modes)",
            f"{r['bayer']:.3f} vs {r['rgb']:.3f} dB (SSIM {r['ssim_bayer']:.3f} vs "
            f"{r['ssim_rgb']:.3f}) in {r['minutes']:g} min", ">=", r["verdict"]]  # fmt: skip


def versus_rows(l1: dict, gan: dict) -> list[list]:
    """L1 model and GAN fine-tune on the test split, overall and per ratio: every metric."""
    rows = []
    for bucket in sorted(b for b in l1 if b.startswith("ratio_")) + ["overall"]:
        for name, m in (("L1", l1[bucket]), ("GAN fine-tune", gan[bucket])):
            rows.append([bucket.replace("ratio_", "x"), name, f"{m['psnr']:.2f}",
                         f"{m['ssim']:.4f}", f"{m['msssim']:.4f}", f"{m['brisque']:.1f}",
                         f"{m['mean_error']:.1%}", f"{m['dark_lift']:+.2f}"])  # fmt: skip
    return rows


def ratio_rows(model: dict, bm3d: dict, goal_gain: float) -> tuple[list[list], list[bool]]:
    """The model against amplify+BM3D per ratio and overall (PSNR gain of at least
    ``goal_gain`` dB and SSIM at least BM3D's), and whether each ratio met it."""
    rows, met = [], []
    for bucket in sorted(b for b in model if b.startswith("ratio_")) + ["overall"]:
        m, b = model[bucket], bm3d[bucket]
        gain, ssim_ok = m["psnr"] - b["psnr"], m["ssim"] >= b["ssim"]
        ok = gain >= goal_gain and ssim_ok
        if bucket != "overall":
            met.append(ok)
        rows.append([bucket.replace("ratio_", "x"), f"{b['psnr']:.2f}", f"{m['psnr']:.2f}",
                     f"{gain:+.2f}", f"{b['ssim']:.4f}", f"{m['ssim']:.4f}", m["images"],
                     yes_no(ok)])  # fmt: skip
    return rows, met


def ratio_table(rows: list[list], goal_gain: float) -> list[str]:
    return table(["ratio", "BM3D PSNR", "model PSNR", "gain (dB)", "BM3D SSIM", "model SSIM",
                  "images", f"gain >= {goal_gain} dB and SSIM >= BM3D"], rows,
                 "lrrrrrrc")  # fmt: skip


def sigma_line(
    run: Path, frames: str, recipe: str | None = None, scales: tuple[float, ...] = SCALES
) -> list[str]:
    """BM3D's noise scale on ``run``'s validation pairs: the best, and whether the a7S II's
    (baselines.BM3D_SIGMA_SCALE) and the one the run's evaluate used (its ``recipe``'s
    evaluate.bm3d_sigma_scale, when it sets one) are it."""
    from lowlight.baselines import BM3D_SIGMA_SCALE
    from lowlight.config import load_params

    sigma = sigma_study(scales, run=run)
    best = max(sigma, key=sigma.get)
    levels = ", ".join(f"{k} the estimate {v:.2f} dB" for k, v in sigma.items())

    def verdict(what: str, scale: float) -> str:
        key = f"x{scale:g}"
        below = f" ({sigma[best] - sigma[key]:.2f} dB below it)" if key in sigma else ""
        return f"{what} = {scale:g}{below}: {yes_no(key == best)}"

    said = [verdict("baselines.BM3D_SIGMA_SCALE (the a7S II's)", BM3D_SIGMA_SCALE)]
    chosen = load_params(benchlib.ROOT / recipe).evaluate.bm3d_sigma_scale if recipe else None
    if chosen is not None:
        said.append(
            verdict(f"{recipe}'s evaluate.bm3d_sigma_scale, what its evaluate used", chosen)
        )
    return [f"BM3D's noise level (mean PSNR on {frames} validation pairs): {levels}; best {best}; "
            + "; ".join(said), ""]  # fmt: skip


def metrics_of(reports: Path) -> dict:
    return json.loads((reports / "metrics.json").read_text())["model"]


def training_minutes(reports: Path) -> float:
    path = reports / "train_history.csv"
    if not path.exists():
        return float("nan")
    with open(path) as fh:
        return sum(float(r.get("seconds") or 0) for r in csv.DictReader(fh)) / 60


SRGB_SECTION, SRGB_RUN = "## pretrain-srgb", RUN / "srgb"
GOAL_SRGB_GAIN = 2.0  # dB over the best of the user's tools at every darkness level (issue 24)


def srgb_main(args) -> int:
    """The sRGB model against the best baseline at each darkness level, and its picture."""
    shipped = card.ModelCard.load(card.shipped("rgb"))
    metrics = json.loads((SRGB_RUN / "reports/metrics.json").read_text())
    model = metrics.pop("model")
    rows, met = [], []
    for bucket in sorted((b for b in model if b.startswith("ratio_")),
                         key=lambda b: float(b[6:])) + ["overall"]:  # fmt: skip
        best = max(metrics, key=lambda name: metrics[name][bucket]["psnr"])
        sharpest = max(metrics, key=lambda name: metrics[name][bucket]["ssim"])
        m, b, s = model[bucket], metrics[best][bucket], metrics[sharpest][bucket]
        gain, ok = m["psnr"] - b["psnr"], m["psnr"] - b["psnr"] >= GOAL_SRGB_GAIN
        ok = ok and m["ssim"] > s["ssim"]
        if bucket != "overall":
            met.append(ok)
        level = "1/" + bucket[6:] if bucket != "overall" else "overall"
        rows.append([level, best, f"{b['psnr']:.2f}", f"{m['psnr']:.2f}", f"{gain:+.2f}",
                     f"{s['ssim']:.4f} ({sharpest})", f"{m['ssim']:.4f}", m["images"],
                     yes_no(ok)])  # fmt: skip
    if args.picture:
        baseline = max(metrics, key=lambda name: metrics[name]["overall"]["psnr"])
        picture(args.picture, median_pair(SRGB_RUN / "reports", baseline), SRGB_RUN, "rgb",
                baseline)  # fmt: skip
    others = ", ".join(f"{name} {v['overall']['psnr']:.2f} dB" for name, v in metrics.items())
    lines = benchlib.header(
        SRGB_SECTION,
        "The shipped sRGB model (src/lowlight/pretrained/rgb/, trained by `make pretrain-srgb` "
        "on dark JPEGs made as a camera makes them) on test scenes made from photos it never saw "
        "in any form, against the best at each darkness level of the tools a user would reach "
        "for (exposure, as a photo editor's exposure control gives it: the model's own input; "
        "gamma + CLAHE; LIME; each then BM3D), every method on the same central crop. The SSIM "
        "goal is against the highest SSIM of any of them.",
        benchlib.machine(),
        benchlib.command(args),
        f"Model: {shipped.input} U-Net {json.dumps(shipped.arguments)}: {shipped.epochs} epochs, "
        f"{shipped.steps} steps, {training_minutes(SRGB_RUN / 'reports'):.1f} min of training",
        f"Figures: `make pretrain-srgb` (pretrain/srgb/reports/metrics.json); every baseline "
        f"overall: {others}",
    )
    lines += table(["darkness", "best baseline", "its PSNR", "model PSNR", "gain (dB)",
                    "highest baseline SSIM", "model SSIM", "images",
                    f"gain >= {GOAL_SRGB_GAIN:g} dB and SSIM higher"], rows,
                   "llrrrrrrc")  # fmt: skip
    lines += [f"Every darkness level: {sum(met)} of {len(met)} met: {yes_no(all(met))}", ""]
    benchlib.publish(SRGB_SECTION, lines, args.output)
    return 0


XTRANS_SECTION, XTRANS_RUN = "## pretrain-xtrans", RUN / "xtrans"
# around the recipe's x6 and the a7S II's x36: the X-T2's amplified frames are far less noisy
XTRANS_SCALES = (3.0, 4.5, 6.0, 8.0, 12.0, 36.0)
GOAL_XTRANS_GAIN = 1.5  # dB over amplify+BM3D at every ratio, SSIM above it (issue 26)
GOAL_XTRANS_SPEED = 1.5  # forward time per raw megapixel at most 1.5x the Bayer model's


def demosaic_line(run: Path, recipe: str) -> list[str]:
    """How far LibRaw's LINEAR demosaic of the clean long frames is from the targets (its own
    X-Trans demosaic of the same frames), per ratio on the validation pairs' evaluation crop:
    the ceiling of a model whose path to full size is a linear demosaic."""
    import numpy as np
    import rawpy

    from lowlight import evaluation, metrics, raw
    from lowlight.config import load_params

    params = load_params(benchlib.ROOT / recipe)
    found: dict[int, list[float]] = {}
    for row in one_draw_val_rows(run)[0]:  # the long frame is the same for all three draws
        dng = (run / params.data.raw_dir / row["bright"]).with_suffix(".dng")
        target, linear = (
            evaluation.crop_center(raw.decode(dng, bits=16, demosaic=algorithm)[0] / 65535.0,
                                   params.evaluate.crop)
            for algorithm in (None, rawpy.DemosaicAlgorithm.LINEAR)
        )  # fmt: skip
        found.setdefault(int(row["ratio"]), []).append(metrics.psnr(linear, target))
    said = ", ".join(f"x{r} {np.mean(v):.2f} dB" for r, v in sorted(found.items()))
    return [f"LibRaw's LINEAR demosaic of the clean long frames against the targets (its X-Trans "
            f"demosaic), validation pairs: {said} (what a model whose path to full size is "
            "linear could score with no noise)", ""]  # fmt: skip


def xtrans_main(args) -> int:
    """The X-Trans model against amplify+BM3D per ratio, BM3D's scale on the X-T2's validation
    frames, and its forward time beside the shipped Bayer model's."""
    shipped = card.ModelCard.load(card.shipped("xtrans"))
    reports = XTRANS_RUN / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    rows, met = ratio_rows(metrics["model"], metrics["amplify+bm3d"], GOAL_XTRANS_GAIN)
    if args.picture:
        picture(args.picture, median_pair(reports), XTRANS_RUN, "xtrans")
    # the two models in turn, three rounds, each its best: a shared machine that slows down for
    # a while slows both (one round once read 1.9x where the others read 1.3x)
    rounds = [(m, forward_ms_per_mp(card.shipped(m), args.repeat))
              for _ in range(3) for m in ("xtrans", "bayer")]  # fmt: skip
    xtrans_ms, bayer_ms = (min(ms for n, ms in rounds if n == m) for m in ("xtrans", "bayer"))
    lines = benchlib.header(
        XTRANS_SECTION,
        "The shipped X-Trans model (src/lowlight/pretrained/xtrans/, trained by `make "
        "pretrain-xtrans` on synthetic Fujifilm X-T2 frames whose noise is the a7S II's scaled "
        "to the X-T2's levels, not calibrated) on test scenes made from photos it never saw in "
        "any form, against amplify+BM3D, every method on the same central crop.",
        benchlib.machine(),
        benchlib.command(args),
        f"Model: {shipped.input} U-Net {json.dumps(shipped.arguments)}: {shipped.epochs} "
        f"epochs, {shipped.steps} steps, {training_minutes(reports):.1f} min of training",
        "Figures: `make pretrain-xtrans` (pretrain/xtrans/reports/metrics.json); forward time: "
        "this script",
    )
    lines += ratio_table(rows, GOAL_XTRANS_GAIN)
    lines += sigma_line(XTRANS_RUN, "the X-T2's", "pretrain/xtrans.yaml", XTRANS_SCALES)
    lines += demosaic_line(XTRANS_RUN, "pretrain/xtrans.yaml")
    speed = xtrans_ms / bayer_ms
    lines += table(["goal", "measured", "target", "met"], [
        ["every ratio: gain and SSIM", f"{sum(met)} of {len(met)}", "all", yes_no(all(met))],
        [f"forward per raw MP ({FRAME[0]}x{FRAME[1]} frame), X-Trans vs Bayer model",
         f"{xtrans_ms:.0f} vs {bayer_ms:.0f} ms ({speed:.2f}x)",
         f"<= {GOAL_XTRANS_SPEED:g}x", yes_no(speed <= GOAL_XTRANS_SPEED)],
    ], "lrrc")  # fmt: skip
    benchlib.publish(XTRANS_SECTION, lines, args.output)
    return 0


def main(argv: list[str]) -> int:
    p = benchlib.parser(__doc__)
    p.add_argument("--picture", type=Path, help="also write the README's comparison JPEG here")
    p.add_argument("--srgb", action="store_true", help="the sRGB model (make pretrain-srgb)")
    p.add_argument("--xtrans", action="store_true", help="the X-Trans model (pretrain-xtrans)")
    args = benchlib.parse(p, argv)
    if args.srgb:
        return srgb_main(args)
    if args.xtrans:
        return xtrans_main(args)
    shipped = card.ModelCard.load(card.shipped())
    gan_shipped = shipped.provenance.get("chosen", "").startswith("the GAN")
    folder = "models-gan" if gan_shipped else "models"
    reports = RUN / ("reports-gan" if gan_shipped else "reports")
    if args.picture:
        picture(args.picture, median_pair(reports))
    metrics = json.loads((reports / "metrics.json").read_text())
    trained = card.ModelCard.load(RUN / folder)
    model = metrics["model"]
    rows, met = ratio_rows(model, metrics["amplify+bm3d"], GOAL_GAIN)
    ms = forward_ms_per_mp(card.shipped(), args.repeat)
    info = benchlib.machine()
    lines = benchlib.header(
        SECTION,
        "The shipped RAW model (src/lowlight/pretrained/bayer/, trained by `make pretrain` on "
        "synthetic "
        "Sony a7S II frames) on test scenes made from photos it never saw in any form, against "
        "amplify+BM3D (its noise level chosen on the validation split), every method on the "
        "same central crop.",
        info,
        benchlib.command(args),
        f"Model: {trained.input} U-Net {json.dumps(trained.arguments)}, {folder}: "
        f"{trained.epochs} epochs, {trained.steps} steps, "
        f"{training_minutes(RUN / 'reports'):.1f} min of L1 training"
        + (f" + {training_minutes(reports):.1f} min of GAN fine-tune" if gan_shipped else ""),
        f"Shipped: {shipped.provenance.get('chosen', 'the L1 model (no fine-tune compared)')}",
        f"Figures: `make pretrain` (pretrain/{reports.name}/metrics.json); forward time: this "
        "script",
    )
    lines += ratio_table(rows, GOAL_GAIN)
    lines += sigma_line(RUN, "the a7S II's")
    overall = model["overall"]
    errors = {c: overall[f"mean_error_{c}"] for c in ("r", "g", "b")}
    channels = ", ".join(f"{c.upper()} {v:+.1%}" for c, v in errors.items())
    worst = max(abs(v) for v in errors.values())
    goals = [
        ["every ratio: gain and SSIM", f"{sum(met)} of {len(met)}", "all", yes_no(all(met))],
        ["per-channel mean vs ground truth (each channel's median over frames; the largest "
         "channel per frame in brackets)",
         f"{channels} ({overall['mean_error']:.1%})", f"<= {GOAL_MEAN_ERROR:.0%}",
         yes_no(worst <= GOAL_MEAN_ERROR)],
        ["darkest tenth lifted (mean, /255)", f"{overall['dark_lift']:+.2f}",
         f"<= {GOAL_DARK_LIFT:g}", yes_no(overall["dark_lift"] <= GOAL_DARK_LIFT)],
    ]  # fmt: skip
    gan_path = RUN / "reports-gan/metrics.json"
    if gan_path.exists():
        l1, gan = metrics_of(RUN / "reports"), metrics_of(RUN / "reports-gan")
        lines += ["L1 model and its GAN fine-tune on the same test pairs (MS-SSIM: higher is "
                  "better; BRISQUE: lower is more natural; mean error: the largest channel's, "
                  "median over frames; dark lift: the darkest tenth, /255):", ""]  # fmt: skip
        lines += table(["ratio", "model", "PSNR", "SSIM", "MS-SSIM", "BRISQUE", "mean error",
                        "dark lift"], versus_rows(l1, gan), "llrrrrrr")  # fmt: skip
        a, b = l1["overall"], gan["overall"]
        better = b["msssim"] > a["msssim"] and b["brisque"] < a["brisque"]
        goals.append(["GAN: both perceptual scores better than L1's (test)",
                      f"MS-SSIM {a['msssim']:.4f} -> {b['msssim']:.4f}, BRISQUE "
                      f"{a['brisque']:.1f} -> {b['brisque']:.1f}", "both",
                      yes_no(better)])  # fmt: skip
    lines += table(["goal", "measured", "target", "met"], [
        *goals,
        [f"forward per raw MP ({FRAME[0]}x{FRAME[1]} frame)", f"{ms:.0f} ms",
         f"<= {GOAL_MS:g} ms", yes_no(ms <= GOAL_MS)],
        modes_row(),
    ], "lrrc")  # fmt: skip
    benchlib.publish(SECTION, lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
