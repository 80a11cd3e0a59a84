"""MLflow tracking: where runs go, what they are tagged with. Credentials only from the env."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import yaml

from lowlight.config import MlflowConfig, ModelConfig, TrainConfig
from lowlight.errors import has_credentials
from lowlight.redact import guard_output

if TYPE_CHECKING:
    from lowlight.patches import PatchSpec


def tracking_uri(cfg: MlflowConfig) -> str:
    """``MLFLOW_TRACKING_URI`` wins over params; a local sqlite store's folder is created.

    A URI with credentials (only the environment may hold them) turns MLflow's "View run at:
    <uri>" lines off and guards this process's output (``guard_output``): every caller of the
    stages (the CLI, Kubeflow components, notebooks) would otherwise print the password.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if has_credentials(uri):
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        guard_output()
    return uri


# MLflow 3's UI opens an experiment by its kind; without the tag it guesses GenAI and shows an
# empty traces overview. A training experiment is a custom model's development.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(client: mlflow.MlflowClient, uri: str, name: str) -> str:
    """The experiment's id, creating it; a sqlite store keeps artifacts beside its database."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        for key, value in EXPERIMENT_TAGS.items():
            if key not in experiment.tags:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)


def flatten(prefix: str, values: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flatten(name, value))
        else:
            out[name] = str(value)
    return out


def git_commit(cwd: Path | None = None) -> str:
    """HEAD's commit, with ``-dirty`` when tracked files changed; empty outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f"{commit}-dirty" if dirty else commit


def dvc_lock_hashes(lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """md5 of every stage output recorded in dvc.lock, keyed ``dvc.<path>``."""
    if not lock.exists():
        return {}
    data = yaml.safe_load(lock.read_text()) or {}
    hashes = {}
    for stage in (data.get("stages") or {}).values():
        for out in stage.get("outs", []):
            if "md5" in out:
                hashes[f"dvc.{out['path']}"] = out["md5"]
    return hashes


@contextlib.contextmanager
def using(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for the block only.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment, which
    would then override params for the rest of the process: the variable is restored after.
    """
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


@contextlib.contextmanager
def run(cfg: MlflowConfig, run_id: str | None = None, name: str | None = None) -> Iterator[str]:
    """Start (or resume, given ``run_id``) a run; yields its id. Ends it FINISHED on success."""
    uri = tracking_uri(cfg)
    client = mlflow.MlflowClient(uri)
    exp = experiment_id(client, uri, cfg.experiment)
    with (
        using(uri),
        mlflow.start_run(run_id=run_id, experiment_id=None if run_id else exp, run_name=name) as r,
    ):
        yield r.info.run_id


def log_training(
    model_cfg: ModelConfig, cfg: TrainConfig, spec: PatchSpec, patches: str, seed: int
) -> None:
    """A new training run's params (the model and train sections, the patch grid, the seed)
    and lineage tags (code commit, the pairs the patches came from, DVC's recorded hashes)."""
    mlflow.log_params(
        {
            **flatten("model", model_cfg.model_dump()),
            **flatten("train", cfg.model_dump()),
            **flatten("patch", {"size": spec.size, "stride": spec.stride}),
            "seed": str(seed),
        }
    )
    mlflow.set_tags(
        {
            "git_commit": git_commit(),
            "data.pairs_sha256": spec.pairs_sha256,
            "data.patches": patches,
            **dvc_lock_hashes(),
        }
    )
