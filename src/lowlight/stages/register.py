"""register: the evaluated generator into the MLflow model registry, gated against baselines."""

from __future__ import annotations

import json
from pathlib import Path

from lowlight import evaluation, storage
from lowlight.card import ModelCard
from lowlight.config import ConvertConfig, InferConfig, MlflowConfig, RegisterConfig


def run(
    cfg: RegisterConfig,
    infer: InferConfig,
    mlflow_cfg: MlflowConfig,
    models_dir: Path,
    reports_dir: Path,
    out: Path | None = None,
    convert: ConvertConfig | None = None,
) -> dict:
    """Log the generator as a pyfunc model under its training run, register it with lineage,
    make it ``challenger`` and, if it passes the gate, ``champion``.

    The result goes to ``out`` (default ``reports_dir/registration.json``); ``convert`` (how
    RAW files are decoded, as ``enhance`` does) travels with the model."""
    import tempfile

    import mlflow

    from lowlight import pyfunc, registry, tracking

    models_dir, reports_dir = Path(models_dir), Path(reports_dir)
    card = ModelCard.load(models_dir)
    metrics = evaluation.read_metrics(reports_dir)
    run_id = card.mlflow_run_id
    if not run_id:
        raise registry.RegistryError(f"{models_dir}: the model card names no MLflow training run")
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
                info = pyfunc.log_generator(models_dir, infer, Path(staging), convert)
            version = mlflow.register_model(info.model_uri, name, tags=tags)
            c.update_model_version(name, version.version, description=card.describe())
        c.set_registered_model_alias(name, registry.CHALLENGER, version.version)
        gate_result = registry.gate(c, cfg, metrics, str(version.version))
        if gate_result.passed and gate_result.reason != registry.ALREADY_CHAMPION:
            registry.promote(c, name, version.version, registry.CHAMPION)
        aliases = c.get_model_version(name, version.version).aliases
    result = {
        "name": name,
        "version": str(version.version),
        "created": created,
        "aliases": sorted(aliases),
        "gate_passed": gate_result.passed,
        "gate_reason": gate_result.reason,
        "model_uri": f"models:/{name}/{version.version}",
        "training_run": run_id,
    }
    with storage.atomic_path(out or reports_dir / "registration.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return result


def gate(cfg: RegisterConfig, mlflow_cfg: MlflowConfig, reports_dir: Path) -> dict:
    """Would the evaluated model become champion? (Kubeflow registers only if it would.)"""
    from lowlight import registry, tracking

    metrics = evaluation.read_metrics(reports_dir)
    uri = tracking.tracking_uri(mlflow_cfg)
    with registry.registry_errors(uri):
        result = registry.gate(registry.client(uri), cfg, metrics)
    return {"passed": result.passed, "reason": result.reason}
