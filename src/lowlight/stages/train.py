"""train: the GAN on the patch parts, here or as a PyTorchJob; the models folder and reports."""

from __future__ import annotations

import time
from pathlib import Path

from lowlight import card, patches, storage
from lowlight.config import MlflowConfig, ModelConfig, TrainConfig
from lowlight.errors import DatasetError


def run(
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
    """Train; write the models folder, history and curves; track it all in MLflow.

    Checkpoints live in ``work_dir`` (default ``checkpoints/<models folder name>``); the models
    and reports are replaced only when training succeeds.
    """
    import mlflow

    from lowlight import distributed, tracking
    from lowlight import train as training

    models_dir, reports_dir = Path(models_dir), Path(reports_dir)
    work_dir = Path(work_dir) if work_dir else models_dir.parent / "checkpoints" / models_dir.name
    storage.check_output(models_dir, (patches_dir,), card.KNOWN)  # before hours of training
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
        run_id = (training.resumable_run(work_dir, model_cfg, cfg, seed, spec.pairs_sha256)
                  if resume else None)  # fmt: skip
        start = time.perf_counter()
        with tracking.run(mlflow_cfg, run_id=run_id or None, name="train") as active:
            if not run_id:
                tracking.log_training(model_cfg, cfg, spec, str(patches_dir), seed)
            trainer, progress = training.fit(
                model_cfg, cfg, patches_dir, work_dir, seed, resume, group
            )
            generator = trainer.plain_generator
            model_card = card.ModelCard(
                architecture=type(generator).__name__,
                arguments=dict(generator.config),
                input=model_cfg.input,
                patch_size=spec.size,
                dtype=spec.dtype,
                mlflow_run_id=active,
                pairs_sha256=spec.pairs_sha256,
                best_val_psnr=progress.best_psnr,
                epochs=progress.epoch,
                steps=progress.step,
                provenance={"patches": str(patches_dir)},
            )
            discriminator = training.unwrap(trainer.discriminator).state_dict()
            card.publish(models_dir, model_card, work_dir / training.BEST, discriminator)
            reports = training.publish_reports(reports_dir, work_dir, progress)
            for artifact in (*reports, models_dir / card.CARD):
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
