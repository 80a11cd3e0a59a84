"""One function per pipeline stage, shared by the CLI, dvc.yaml (through the CLI) and Kubeflow.

Each takes its validated config section plus input and output locations, does all the I/O and
returns a small summary dict.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lowlight import conversion, evaluation, imageio, inference, pairs, patches, sid, storage
from lowlight import synth as synthetic
from lowlight.config import (
    ConvertConfig,
    EvaluateConfig,
    InferConfig,
    MlflowConfig,
    ModelConfig,
    PairConfig,
    PatchConfig,
    RegisterConfig,
    SynthConfig,
    TrainConfig,
)
from lowlight.errors import DatasetError, LowlightError
from lowlight.raw import RAW_SUFFIXES

log = logging.getLogger(__name__)


def ingest(source: str, out: Path, repo: str | None = None, rev: str | None = None) -> dict:
    """Copy a RAW folder to ``out``: from an ``s3://`` URI, a local path, or ``source`` inside
    the DVC-tracked git repository ``repo`` at revision ``rev`` (pulled from its DVC remote)."""
    out = Path(out)
    start = time.perf_counter()
    with storage.staged_dir(out) as staging:
        if repo:
            storage.copy_from_dvc(repo, rev or None, source, staging)
        else:
            storage.copy_tree(source, staging)
        files = {p: p.stat().st_size for p in staging.rglob("*") if p.is_file()}
        if not files:
            raise DatasetError(f"{source}: no files to ingest")
    return {
        "source": f"{repo}@{rev or 'HEAD'}:{source}" if repo else source,
        "files": len(files),
        "raw_files": sum(1 for p in files if p.suffix.lower() in RAW_SUFFIXES),
        "megabytes": round(sum(files.values()) / 1e6, 1),
        "seconds": round(time.perf_counter() - start, 1),
        "out": str(out),
    }


def synth(cfg: SynthConfig, out: Path, seed: int) -> dict:
    """Write a SID-layout dataset: ``out/Sony/{short,long}/*.dng`` and the three list files."""
    photos = synthetic.load_photos(Path(cfg.photos) if cfg.photos else None)
    plans = synthetic.plan_scenes(cfg.scenes, len(photos), np.random.default_rng(seed))
    lines: dict[str, list[str]] = {split: [] for split in sid.SPLITS}
    with storage.staged_dir(out) as staging:
        for plan in tqdm(plans, desc="synth", unit="scene"):
            photo = photos[plan.photo][1]
            lines[plan.split] += synthetic.write_scene(
                staging / "Sony", plan, photo, cfg.size, cfg.frames, seed
            )
        for split, split_lines in lines.items():
            path = staging / sid.LIST_FILE.format(split=split)
            path.write_text("".join(f"{line}\n" for line in split_lines))
    return {
        "scenes": len(plans),
        "files": len(plans) * (cfg.frames + 1),
        "size": f"{cfg.size[0]}x{cfg.size[1]}",
        "splits": {split: len(v) // cfg.frames for split, v in lines.items()},
        "out": str(Path(out) / "Sony"),
    }


def convert(
    cfg: ConvertConfig,
    raw_dir: Path,
    out: Path,
    shard: tuple[int, int] | None = None,
    packed: bool = False,
) -> dict:
    """Convert every RAW under ``raw_dir`` (or one shard of them) and write the manifest.

    A whole conversion is built in a staging folder that replaces ``out`` only on success
    (unchanged files are linked over from the previous output); a shard writes into ``out``.
    ``packed`` (model.input: bayer): amplified frames also get their packed Bayer mosaic.
    """
    start = time.perf_counter()
    jobs = conversion.plan_jobs(conversion.list_raw_files(raw_dir), cfg, packed)
    if shard is not None:
        jobs = jobs[shard[0] :: shard[1]]
    manifest = conversion.manifest_name(shard)
    previous = conversion.previous_rows(storage.join(out, manifest))
    # S3 objects appear one by one (each whole), as the patch stage's do
    in_place = shard is not None or storage.is_remote(out)
    with contextlib.nullcontext(out) if in_place else storage.staged_dir(out) as target:
        rows = convert_jobs(jobs, cfg, raw_dir, target, previous, out)
        conversion.write_manifest(storage.join(target, manifest), rows, str(raw_dir))
        failed = [r for r in rows if r["status"] == "failed"]
        if rows and len(failed) == len(rows):
            raise DatasetError(
                f"{raw_dir}: every file failed to convert, first: {failed[0]['error']}"
            )
    skipped = sum(1 for r in rows if r.get("skipped"))
    megapixels = sum((r["width"] or 0) * (r["height"] or 0) for r in rows) / 1e6
    seconds = time.perf_counter() - start
    return {
        "files": len(rows),
        "converted": len(rows) - len(failed) - skipped,
        "skipped_unchanged": skipped,
        "failed": len(failed),
        "failed_files": [r["source"] for r in failed],
        "seconds": round(seconds, 2),
        "megapixels": round(megapixels, 2),
        "manifest": str(storage.join(out, manifest)),
    }


def convert_jobs(
    jobs: list,
    cfg: ConvertConfig,
    raw_dir: storage.Location,
    out: storage.Location,
    previous: dict,
    previous_dir: storage.Location,
) -> list[dict]:
    """Run the conversion jobs, in worker processes when ``cfg.workers`` > 1."""
    work = partial(conversion.convert_one, raw_dir, out, previous_dir=previous_dir)
    args = [(job, cfg, previous.get(job.source)) for job in jobs]
    bar = partial(tqdm, total=len(jobs), desc="convert", unit="file")
    if cfg.workers > 1 and len(jobs) > 1:
        # spawn, not fork: LibRaw's OpenMP and OpenCV's thread pools deadlock in forked children;
        # one OpenMP thread per worker, or N workers x one thread per core oversubscribe the CPU.
        spawn = multiprocessing.get_context("spawn")
        with (
            conversion.single_threaded_children(),
            ProcessPoolExecutor(max_workers=cfg.workers, mp_context=spawn) as pool,
        ):
            rows = list(bar(pool.map(work, *zip(*args, strict=True))))
    else:
        rows = [work(*a) for a in bar(args)]
    return rows


def merge_convert(out: Path, shard_dirs: list[Path] | None = None) -> dict:
    """Combine shard manifests written by ``convert(..., shard=(i, n))``.

    With ``shard_dirs`` (each shard converted into its own folder), ``out`` is built from them.
    """
    if not shard_dirs:
        return conversion.merge_manifests(out)
    with storage.staged_dir(out) as staging:
        conversion.gather_shards([Path(d) for d in shard_dirs], staging)
        summary = conversion.merge_manifests(staging)
    return {**summary, "manifest": str(Path(out) / conversion.MANIFEST)}


def pair(cfg: PairConfig, converted: Path, pairs_path: Path, lists_dir: Path | None = None) -> dict:
    """Pair short with long exposures from the converted manifest (+ SID list files)."""
    table, raw_dir = conversion.read_manifest(converted)
    rows = table.to_pylist()
    ok = [r for r in rows if r["status"] == "ok"]
    frames, outputs, packed, unnamed = [], {}, {}, 0
    for row in ok:
        name = sid.parse_name(row["source"])
        if name is None:
            unnamed += 1
            continue
        stem = Path(row["source"]).stem
        frames.append(sid.Frame(stem, name, row["iso"]))
        outputs[stem], packed[stem] = row["output"], row["packed"]
    lists = {}
    for folder in [lists_dir] if lists_dir else [raw_dir, storage.parent(raw_dir)]:
        if folder and storage.is_dir(folder):
            lists.update(sid.read_list_files(folder))
    found = sid.pair_frames(frames, cfg.select, lists)
    if not found:
        raise DatasetError(
            f"{converted}: no (short, long) pairs among {len(ok)} converted frames "
            "(no long exposures, or no SID-named files)"
        )
    pairs.write_pairs(pairs_path, found, outputs, str(converted), packed)
    splits = {s: sum(1 for p in found if p.split == s) for s in sid.SPLITS}
    ratios = sorted({round(p.ratio) for p in found})
    return {
        "pairs": len(found),
        "splits": splits,
        "ratios": ratios,
        "failed_conversions": len(rows) - len(ok),
        "not_sid_named": unnamed,
        "lists_used": bool(lists),
        "out": str(pairs_path),
    }


def patch(
    cfg: PatchConfig,
    pairs_loc: storage.Location,
    out: storage.Location,
    seed: int,
    images: storage.Location | None = None,
    packed: bool = False,
) -> dict:
    """Cut every train/val pair into overlapping windows and stream them into Parquet parts.

    Test pairs are not patched: evaluation uses whole images. ``packed`` (model.input: bayer):
    the dark windows come from the packed Bayer mosaics.
    """
    table, converted = pairs.read_pairs(pairs_loc)
    images = images or converted
    if packed and any(r["dark_packed"] is None for r in table.to_pylist() if r["split"] != "test"):
        raise DatasetError(f"{pairs_loc}: no packed Bayer input for model.input bayer; convert "
                           "and pair again with model.input bayer")  # fmt: skip
    make_spec = patches.PatchSpec.bayer if packed else patches.PatchSpec.rgb
    spec = make_spec(
        cfg.size, cfg.stride, cfg.format, hashlib.sha256(storage.read_bytes(pairs_loc)).hexdigest()
    )
    rows = sorted(table.to_pylist(), key=lambda r: r["pair_id"])
    summary: dict = {"skipped_pairs": []}
    # A local output is built aside and swapped in at the end; S3 objects appear one by one.
    staged = contextlib.nullcontext(out) if storage.is_remote(out) else storage.staged_dir(out)
    with staged as root:
        for split in ("train", "val"):
            write_split(root, split, [r for r in rows if r["split"] == split], images, spec,
                        cfg, seed, summary, packed)  # fmt: skip
    summary.update(size=cfg.size, stride=cfg.stride, dtype=cfg.format, input=spec.input,
                   out=str(out))  # fmt: skip
    summary["skipped"] = len(summary.pop("skipped_pairs"))
    return summary


def write_split(
    root: storage.Location,
    split: str,
    split_rows: list[dict],
    images: storage.Location,
    spec: patches.PatchSpec,
    cfg: PatchConfig,
    seed: int,
    summary: dict,
    packed: bool = False,
) -> None:
    """One split's parts under ``root/split``, replacing any stale ones."""
    folder = storage.join(root, split)
    storage.make_dirs(folder)
    for stale in patches.list_parts(folder):
        storage.remove(stale)
    with patches.PatchWriter(folder, spec, cfg.row_group, cfg.part_rows) as writer:
        for row in tqdm(split_rows, desc=f"patch {split}", unit="pair"):
            windows = patches.cut_pair(row, images, cfg, seed, packed)
            if isinstance(windows, str):
                log.warning("%s", windows)
                summary["skipped_pairs"].append(windows)
                continue
            writer.add(row["pair_id"], row["scene_id"], row["ratio"], *windows)
    summary[f"{split}_pairs"] = len(split_rows)
    summary[f"{split}_patches"] = writer.rows
    summary[f"{split}_parts"] = len(writer.parts)


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    mlflow_cfg: MlflowConfig,
    patches_dir: storage.Location,
    models_dir: Path,
    reports_dir: Path,
    seed: int,
    resume: bool = False,
    work_dir: Path | None = None,
) -> dict:
    """Train the GAN on the patch parts; write the models, history and curves; track in MLflow.

    Checkpoints live in ``work_dir`` (default ``checkpoints/<models folder name>``); the models
    and reports are replaced only when training succeeds.
    """
    import mlflow
    import torch

    from lowlight import distributed, tracking
    from lowlight import train as training

    models_dir, reports_dir = Path(models_dir), Path(reports_dir)
    work_dir = Path(work_dir) if work_dir else models_dir.parent / "checkpoints" / models_dir.name
    spec, _ = patches.scan(storage.join(patches_dir, "train"))
    if spec.input != model_cfg.input:
        raise DatasetError(
            f"{patches_dir}: the patches were cut for model.input {spec.input}, the model takes "
            f"{model_cfg.input}; run convert and patch with the same params"
        )
    with distributed.joined(cfg.device) as group:
        if not group.main:  # a torchrun worker: trains its share, rank 0 records and publishes
            _, progress = training.fit(model_cfg, cfg, patches_dir, work_dir, seed, resume, group)
            return {"rank": group.rank, "steps": progress.step}
        run_id = training.checkpoint_run_id(work_dir) if resume else None
        start = time.perf_counter()
        with tracking.run(mlflow_cfg, run_id=run_id or None, name="train") as active:
            if not run_id:
                mlflow.log_params(
                    {
                        **tracking.flatten("model", model_cfg.model_dump()),
                        **tracking.flatten("train", cfg.model_dump()),
                        **tracking.flatten("patch", {"size": spec.size, "stride": spec.stride}),
                        "seed": str(seed),
                    }
                )
                mlflow.set_tags(
                    {
                        "git_commit": tracking.git_commit(),
                        "data.pairs_sha256": spec.pairs_sha256,
                        "data.patches": str(patches_dir),
                        **tracking.dvc_lock_hashes(),
                    }
                )
            trainer, progress = training.fit(
                model_cfg, cfg, patches_dir, work_dir, seed, resume, group
            )
            generator = trainer.plain_generator
            architecture = {
                "architecture": type(generator).__name__,
                **generator.config,
                "input": model_cfg.input,
                "patch_size": spec.size,
                "dtype": spec.dtype,
                "best_val_psnr": progress.best_psnr,
                "epochs": progress.epoch,
                "steps": progress.step,
                "mlflow_run_id": active,
            }
            with storage.staged_dir(models_dir) as staging:
                shutil.copy2(work_dir / training.BEST, staging / "generator.pt")
                (staging / "generator.json").write_text(json.dumps(architecture, indent=2) + "\n")
                torch.save(training.unwrap(trainer.discriminator).state_dict(),
                           staging / "discriminator.pt")  # fmt: skip
            with storage.staged_dir(reports_dir / "samples") as staging:
                for sample in sorted((work_dir / "samples").glob("*.png")):
                    shutil.copy2(sample, staging / sample.name)
            history = reports_dir / "train_history.csv"
            training.write_history(history, progress.history)
            training.plot_curves(reports_dir / "train_curves.png", progress)
            for artifact in (
                history,
                reports_dir / "train_curves.png",
                models_dir / "generator.json",
            ):
                mlflow.log_artifact(str(artifact))
        last = progress.history[-1] if progress.history else {}
        return {
            "epochs": progress.epoch,
            "steps": progress.step,
            "best_val_psnr": round(progress.best_psnr, 3),
            "last_val_ssim": round(last.get("val_ssim", float("nan")), 4),
            "seconds": round(time.perf_counter() - start, 1),
            "device": str(trainer.device),
            "processes": group.world,
            "mlflow_run": active,
            "models": str(models_dir),
        }


def train_job(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    mlflow_cfg: MlflowConfig,
    seed: int,
    spec: dict,
    models_dir: Path,
    reports_dir: Path,
    timeout_s: float = 7 * 24 * 3600,
) -> dict:
    """Train as a PyTorchJob (``spec``: the fields of ``pytorchjob.JobSpec`` but the params) and
    bring its published models and reports here. The job's pods run ``lowlight train``."""
    import yaml

    from lowlight import pytorchjob

    sections = {
        "seed": seed,
        **{name: section.model_dump(mode="json")
           for name, section in (("model", model_cfg), ("train", cfg), ("mlflow", mlflow_cfg))},
    }  # fmt: skip
    job = pytorchjob.JobSpec(**spec, params_yaml=yaml.safe_dump(sections))
    start = time.perf_counter()
    pytorchjob.run(pytorchjob.manifest(job), timeout_s)
    with storage.staged_dir(models_dir) as staging:
        storage.copy_tree(f"{job.output}/models", staging)
    with storage.staged_dir(reports_dir) as staging:
        storage.copy_tree(f"{job.output}/reports", staging)
    config = json.loads((Path(models_dir) / "generator.json").read_text())
    return {
        "job": f"{job.namespace}/{job.name}",
        "nodes": job.nodes,
        "gpus_per_node": job.gpus_per_node,
        "best_val_psnr": config.get("best_val_psnr"),
        "steps": config.get("steps"),
        "mlflow_run": config.get("mlflow_run_id", ""),
        "seconds": round(time.perf_counter() - start, 1),
        "models": str(models_dir),
    }


def evaluate(
    cfg: EvaluateConfig,
    infer: InferConfig,
    mlflow_cfg: MlflowConfig,
    models_dir: Path,
    pairs_loc: storage.Location,
    converted: storage.Location | None,
    out: Path,
) -> dict:
    """Score the model and the baselines on every test pair; write metrics, grids and report."""
    from lowlight.baselines import BASELINES

    table, recorded = pairs.read_pairs(pairs_loc)
    converted = converted or recorded
    rows = [
        r
        for r in sorted(table.to_pylist(), key=lambda r: r["pair_id"])
        if r["split"] == "test" and r["scene_id"] not in cfg.exclude_scenes
    ]
    if not rows:
        raise DatasetError(f"{pairs_loc}: no test pairs to evaluate (after excluded scenes)")
    model, config = inference.load_model(models_dir, infer.device)
    packed = config.get("input") == "bayer"
    if packed and any(r["dark_packed"] is None for r in rows):
        raise DatasetError(f"{pairs_loc}: a bayer model needs packed inputs; convert and pair "
                           "with model.input bayer")  # fmt: skip
    methods = {name: BASELINES[name] for name in cfg.baselines}
    methods["model"] = partial(
        inference.enhance, model=model, tile=infer.tile, overlap=infer.overlap, batch=infer.batch
    )
    out = Path(out)
    with storage.staged_dir(out / "grids") as grids_dir:
        scores, grids = score_pairs(rows, methods, converted, cfg, grids_dir, packed)
    summary = evaluation.summarize(scores)
    evaluation.write_evaluation(out, summary, scores, grids, config, cfg)
    evaluation.log_evaluation(mlflow_cfg, config.get("mlflow_run_id", ""), summary, out)
    model_psnr = summary["model"]["overall"]["psnr"]
    return {
        "test_pairs": len(rows),
        **{f"psnr_{m}": s["overall"]["psnr"] for m, s in summary.items()},
        "ssim_model": summary["model"]["overall"]["ssim"],
        "model_ms_per_mp": summary["model"]["overall"]["ms_per_mp"],
        "report": str(out / "report.md"),
        "best": max(summary, key=lambda m: summary[m]["overall"]["psnr"]) if model_psnr else "",
    }


def score_pairs(
    rows: list[dict], methods: dict, converted: storage.Location, cfg: EvaluateConfig,
    grids_dir: Path, packed: bool = False,
) -> tuple[list[dict], list[tuple[str, str]]]:  # fmt: skip
    """Every method on every pair: score rows, and a comparison grid per pair in ``grids_dir``.

    ``packed``: the model gets the packed Bayer input; the baselines the RGB conversion of the
    same frame, both cropped to the same pixels.
    """
    scores, grids = [], []
    for row in tqdm(rows, desc="evaluate", unit="pair"):
        dark = inference.to_unit(imageio.read_image(storage.join(converted, row["dark"])))
        bright = inference.to_unit(imageio.read_image(storage.join(converted, row["bright"])))
        scale, model_input = 1, None
        if packed:
            bayer = imageio.read_packed(storage.join(converted, row["dark_packed"]))
            scale, size = 2, (2 * bayer.shape[0], 2 * bayer.shape[1])
            dark, bright = dark[: size[0], : size[1]], bright[: size[0], : size[1]]
            half = (cfg.crop[0] // 2, cfg.crop[1] // 2) if cfg.crop else None
            model_input = evaluation.crop_center(inference.to_unit(bayer), half)
        dark = evaluation.crop_center(dark, cfg.crop, scale)
        bright = evaluation.crop_center(bright, cfg.crop, scale)
        outputs = {}
        for name, method in methods.items():
            start = time.perf_counter()
            outputs[name] = method(model_input if name == "model" and packed else dark)
            seconds = time.perf_counter() - start
            scores.append(
                {
                    "pair_id": row["pair_id"],
                    "scene_id": row["scene_id"],
                    "ratio": row["ratio"],
                    "method": name,
                    **evaluation.score(outputs[name], bright),
                    "ms_per_mp": 1000 * seconds / evaluation.megapixels(dark),
                }
            )
        columns = [("dark input", evaluation.darken(dark, row["ratio"]))]
        columns += [(name, image) for name, image in outputs.items()]
        columns += [("ground truth", bright)]
        grid = grids_dir / f"{row['pair_id']}.png"
        imageio.write_image(grid, evaluation.comparison_grid(columns, cfg.zoom), "png")
        grids.append((row["pair_id"], f"grids/{grid.name}"))
    return scores, grids


def enhance(
    convert_cfg: ConvertConfig,
    infer: InferConfig,
    mlflow_cfg: MlflowConfig,
    model_location: str,
    inputs: list[str],
    out: Path,
    ratio: float | str = "auto",
) -> dict:
    """Enhance a photographer's files: RAWs (amplified by ``ratio``) and JPEG/PNG images.

    Writes ``<stem>_enhanced.png``, 16-bit for RAW and 16-bit inputs; a bad file is reported
    and the others go on.
    """
    from lowlight import raw

    files = inference.expand_inputs(inputs)
    if not files:
        raise DatasetError(f"no input files in {' '.join(inputs)}")
    from lowlight import tracking

    with tracking.using(tracking.tracking_uri(mlflow_cfg)):
        model, config = inference.load_model(model_location, infer.device)
    packed = config.get("input") == "bayer"
    out = Path(out)
    done, failed = [], []
    for path in tqdm(files, desc="enhance", unit="file"):
        try:
            is_raw = path.suffix.lower() in raw.RAW_SUFFIXES
            if packed and not is_raw:
                raise DatasetError(f"{path}: a bayer model enhances RAW files only")
            flip, dtype = 0, np.dtype(np.uint16)
            if packed:
                unit, _, flip = raw.decode_packed(path, ratio, auto_target=convert_cfg.auto_target,
                                                  max_gain=convert_cfg.max_ratio)  # fmt: skip
            elif is_raw:
                image, _, _ = raw.decode(
                    path, ratio, half_size=convert_cfg.half_size, bits=16,
                    auto_target=convert_cfg.auto_target, max_gain=convert_cfg.max_ratio,
                )  # fmt: skip
                unit = inference.to_unit(image)
            else:
                image = imageio.read_image(path)
                unit, dtype = inference.to_unit(image), image.dtype
            result = inference.enhance(unit, model, infer.tile, infer.overlap, infer.batch)
            result = np.ascontiguousarray(raw.upright(result, flip))  # as postprocess turns it
            target = out / f"{path.stem}_enhanced.png"
            fmt = "png16" if dtype == np.uint16 else "png"
            imageio.write_image(target, inference.from_unit(result, dtype), fmt)
            done.append(str(target))
        except LowlightError as exc:
            log.warning("%s", exc)
            failed.append(str(exc))
    if not done:
        raise DatasetError(f"no file could be enhanced; first error: {failed[0]}")
    return {"files": len(files), "enhanced": len(done), "failed": len(failed),
            "failed_files": failed, "out": str(out)}  # fmt: skip


def register(
    cfg: RegisterConfig,
    infer: InferConfig,
    mlflow_cfg: MlflowConfig,
    models_dir: Path,
    reports_dir: Path,
    out: Path | None = None,
) -> dict:
    """Log the generator as a pyfunc model under its training run, register it with lineage,
    make it ``challenger`` and, if it passes the gate, ``champion``.

    The result goes to ``out`` (default ``reports_dir/registration.json``)."""
    import tempfile

    import mlflow

    from lowlight import pyfunc, registry, tracking

    models_dir, reports_dir = Path(models_dir), Path(reports_dir)
    config = json.loads(_required(models_dir / "generator.json", "lowlight train").read_text())
    metrics = json.loads(_required(reports_dir / "metrics.json", "lowlight evaluate").read_text())
    run_id = config.get("mlflow_run_id") or ""
    if not run_id:
        raise registry.RegistryError(f"{models_dir}/generator.json names no MLflow training run")
    uri = tracking.tracking_uri(mlflow_cfg)
    c = registry.client(uri)
    name = cfg.model_name
    with registry.registry_errors(uri), tracking.using(uri):
        version = registry.find_version(c, name, run_id)
        created = version is None
        if created:
            run = c.get_run(run_id)
            tags = registry.lineage_tags(run, metrics, cfg.baseline, tracking.dvc_lock_hashes())
            with mlflow.start_run(run_id=run_id), tempfile.TemporaryDirectory() as staging:
                info = pyfunc.log_generator(models_dir, infer, Path(staging))
            version = mlflow.register_model(info.model_uri, name, tags=tags)
        c.set_registered_model_alias(name, registry.CHALLENGER, version.version)
        gate = registry.gate(c, cfg, metrics, str(version.version))
        if gate.passed and gate.reason != registry.ALREADY_CHAMPION:
            registry.promote(c, name, version.version, registry.CHAMPION)
        aliases = c.get_model_version(name, version.version).aliases
    result = {
        "name": name,
        "version": str(version.version),
        "created": created,
        "aliases": sorted(aliases),
        "gate_passed": gate.passed,
        "gate_reason": gate.reason,
        "model_uri": f"models:/{name}/{version.version}",
        "training_run": run_id,
    }
    with storage.atomic_path(out or reports_dir / "registration.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return result


def gate(cfg: RegisterConfig, mlflow_cfg: MlflowConfig, reports_dir: Path) -> dict:
    """Would the evaluated model become champion? (Kubeflow registers only if it would.)"""
    from lowlight import registry, tracking

    path = _required(Path(reports_dir) / "metrics.json", "lowlight evaluate")
    metrics = json.loads(path.read_text())
    uri = tracking.tracking_uri(mlflow_cfg)
    with registry.registry_errors(uri):
        result = registry.gate(registry.client(uri), cfg, metrics)
    return {"passed": result.passed, "reason": result.reason}


def _required(path: Path, command: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: not found; run `{command}` first")
    return path
