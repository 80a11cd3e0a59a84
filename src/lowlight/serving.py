"""Serving on Kubernetes: a KServe InferenceService for one registered model version.

The manifest names the version's artifacts in the S3 artifact store (KServe's storage
initializer downloads them to /mnt/models) and runs them in the ServingRuntime
``lowlight-mlflow`` (infra/k8s/serving: ``mlflow models serve`` in the lowlight image), as the
service account ``lowlight-serving``, whose secret ``lowlight-s3`` holds the S3 keys: the
manifest refers to them, it never holds them. Its name comes from the registered model's name
only, so after ``lowlight models promote`` or ``rollback`` the re-rendered manifest updates the
same InferenceService.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlparse

import mlflow
import yaml

from lowlight import cluster, registry
from lowlight.errors import ConfigError, LowlightError, scrub

API_VERSION = "serving.kserve.io/v1beta1"
# infra/k8s/serving creates both (tests/test_serve_manifest.py checks they agree)
RUNTIME = "lowlight-mlflow"
SERVICE_ACCOUNT = "lowlight-serving"
MODEL_FORMAT = "mlflow"
# One full-size 12 MP frame per request: about 8.7 s on 2 cores (BENCHMARKS.md, "serving")
# and 1.8 GiB peak resident memory in one process (model, decoded frame, tiles, PNG).
RESOURCES = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}
# KServe's hosts are `<name>-predictor-<namespace>.<domain>`: one DNS label, at most 63.
MAX_NAME = 40
DESTINATION_ENV = "MLFLOW_ARTIFACTS_DESTINATION"
ANNOTATION = "lowlight/"  # prefix of the annotations this module writes


class ServingError(LowlightError):
    """A version cannot be served from the cluster (where its artifacts are, which version)."""


@dataclass(frozen=True)
class Served:
    """The registered version a manifest serves, and where the registry keeps its files."""

    name: str
    version: str
    alias: str | None  # the alias it was chosen by, None when asked by number
    artifacts: str  # the registry's download URI of the version


def find(c: mlflow.MlflowClient, name: str, version: str | None, alias: str | None) -> Served:
    """VERSION, or the holder of ``alias`` (``champion`` when neither is given)."""
    if version and alias:
        raise ConfigError(f"give a VERSION ({version}) or --alias ({alias}), not both")
    if version:
        mv = c.get_model_version(name, version)  # an unknown one: the registry's error
    else:
        alias = alias or registry.CHAMPION
        mv = registry.alias_holder(c, name, alias)
        if mv is None:
            raise ServingError(f"model '{name}' has no version holding '{alias}' "
                               "(see `lowlight models list`)")  # fmt: skip
    number = str(mv.version)
    return Served(name, number, alias, c.get_model_version_download_uri(name, number))


def artifacts_destination(given: str | None = None) -> str:
    """Where the MLflow server's proxied artifacts live: ``given``, else the environment, else
    infra's default; an S3 URI, since that is what a cluster's storage initializer reads."""
    destination = given or os.environ.get(DESTINATION_ENV) or cluster.ARTIFACTS_DESTINATION
    if urlparse(destination).scheme != "s3" or not urlparse(destination).netloc:
        raise ConfigError(f"artifacts destination '{destination}': not an s3://BUCKET/ URI")
    return destination


def storage_uri(artifacts: str, destination: str) -> str:
    """The S3 URI of a version's artifacts: an ``s3://`` URI as it is, and MLflow's proxied
    ``mlflow-artifacts:/PATH`` as ``<destination>/PATH`` (what the server writes there)."""
    parsed = urlparse(artifacts)
    if parsed.scheme == "s3" and parsed.netloc:
        return artifacts
    if parsed.scheme == "mlflow-artifacts" and parsed.path.strip("/"):
        return f"{destination.rstrip('/')}/{parsed.path.strip('/')}"
    raise ServingError(f"the version's artifacts are at {scrub(artifacts)}, which a cluster "
                       "cannot read; register against an MLflow server whose artifact store is "
                       "S3 (infra/)")  # fmt: skip


def service_name(model_name: str) -> str:
    """A DNS-1035 label from the registered model's name: stable across its versions."""
    label = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")
    if not label[:1].isalpha():
        label = f"lowlight-{label}"
    return label[:MAX_NAME].rstrip("-")


def inference_service(served: Served, storage: str, namespace: str = cluster.NAMESPACE) -> dict:
    """The InferenceService serving ``served`` from ``storage`` (an S3 URI)."""
    annotations = {f"{ANNOTATION}model-uri": f"models:/{served.name}/{served.version}"}
    if served.alias:
        annotations[f"{ANNOTATION}alias"] = served.alias
    model = {
        "modelFormat": {"name": MODEL_FORMAT},
        "runtime": RUNTIME,
        "storageUri": storage,
        "resources": RESOURCES,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": service_name(served.name),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "lowlight"},
            "annotations": annotations,
        },
        "spec": {"predictor": {"serviceAccountName": SERVICE_ACCOUNT, "model": model}},
    }


def manifest(
    c: mlflow.MlflowClient,
    name: str,
    version: str | None = None,
    alias: str | None = None,
    namespace: str = cluster.NAMESPACE,
    destination: str | None = None,
) -> tuple[Served, dict]:
    """Read the registry: the version to serve and its InferenceService."""
    destination = artifacts_destination(destination)
    served = find(c, name, version, alias)
    return served, inference_service(served, storage_uri(served.artifacts, destination), namespace)


def to_yaml(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False)
