"""train_job (Kubeflow, ``--distributed``): train as a Training Operator PyTorchJob and bring
its models folder and reports here."""

from __future__ import annotations

import time
from pathlib import Path

from lowlight import card, storage
from lowlight.card import ModelCard
from lowlight.config import MlflowConfig, ModelConfig, TrainConfig


def run(
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
    with storage.staged_dir(models_dir, known=card.KNOWN, stage="train") as staging:
        storage.copy_tree(f"{job.output}/models", staging)
    with storage.staged_dir(reports_dir, stage="train") as staging:
        storage.copy_tree(f"{job.output}/reports", staging)
    model_card = ModelCard.load(models_dir)
    return {
        "job": f"{job.namespace}/{job.name}",
        "nodes": job.nodes,
        "gpus_per_node": job.gpus_per_node,
        "best_val_psnr": model_card.best_val_psnr,
        "steps": model_card.steps,
        "mlflow_run": model_card.mlflow_run_id,
        "seconds": round(time.perf_counter() - start, 1),
        "models": str(models_dir),
    }
