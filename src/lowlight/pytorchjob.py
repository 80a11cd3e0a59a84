"""Training on several nodes as a Kubeflow Training Operator PyTorchJob: its manifest, creating
it and waiting for it to finish.

Every pod runs ``torchrun -m lowlight.cli train`` (the operator gives torchrun the node count,
node rank and master address through ``PET_*`` variables), reading the patches from S3; the
master pod then publishes ``models/`` and ``reports/`` under the job's output prefix.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

from lowlight.errors import LowlightError

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"
# The operator finds the training container by this name.
CONTAINER = "pytorch"
WORK = "/tmp/lowlight"
SCRIPT = f"""set -eu
printf '%s' "$LOWLIGHT_PARAMS" > {WORK}.params.yaml
torchrun -m lowlight.cli train "$LOWLIGHT_PATCHES" {WORK}/models --reports {WORK}/reports \\
  --checkpoints {WORK}/checkpoints --params {WORK}.params.yaml
if [ "${{PET_NODE_RANK:-0}}" = 0 ]; then
  for part in models reports; do
    python -c 'import sys; from lowlight import storage; storage.copy_tree(*sys.argv[1:])' \\
      "{WORK}/$part" "$LOWLIGHT_OUTPUT/$part"
  done
fi
"""


class JobError(LowlightError):
    """The PyTorchJob could not be created, failed, or did not finish in time."""


@dataclass(frozen=True)
class JobSpec:
    name: str
    namespace: str
    image: str
    nodes: int  # pods: one master and nodes - 1 workers
    gpus_per_node: int  # 0: CPU processes (gloo), one per node
    patches: str  # s3:// URI of the patch folder
    output: str  # s3:// prefix the master publishes models/ and reports/ under
    params_yaml: str  # the model / train / mlflow / seed sections
    service_account: str
    config_map: str
    secrets: tuple[str, ...] = ()
    resources: dict = field(default_factory=lambda: {"cpu": "4", "memory": "16G"})
    gpu_resource: str = "nvidia.com/gpu"


def manifest(spec: JobSpec) -> dict:
    """The PyTorchJob object for ``spec`` (what ``kubectl apply`` would take)."""
    if spec.nodes < 1:
        raise JobError(f"a PyTorchJob needs at least one node, got {spec.nodes}")
    limits = {"memory": spec.resources["memory"]}
    if spec.gpus_per_node:
        limits[spec.gpu_resource] = str(spec.gpus_per_node)
    container = {
        "name": CONTAINER,
        "image": spec.image,
        "command": ["sh", "-c", SCRIPT],
        "env": [
            {"name": "LOWLIGHT_PARAMS", "value": spec.params_yaml},
            {"name": "LOWLIGHT_PATCHES", "value": spec.patches},
            {"name": "LOWLIGHT_OUTPUT", "value": spec.output.rstrip("/")},
        ],
        # credentials: the secrets' keys are the variable names (never in the manifest itself)
        "envFrom": [{"configMapRef": {"name": spec.config_map}}]
        + [{"secretRef": {"name": name, "optional": True}} for name in spec.secrets],
        "resources": {"requests": dict(spec.resources), "limits": limits},
    }

    def replicas(count: int) -> dict:
        pod = {"serviceAccountName": spec.service_account, "containers": [copy.deepcopy(container)]}
        return {"replicas": count, "restartPolicy": "OnFailure", "template": {"spec": pod}}

    replica_specs = {"Master": replicas(1)}
    if spec.nodes > 1:
        replica_specs["Worker"] = replicas(spec.nodes - 1)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {"app.kubernetes.io/part-of": "lowlight"},
        },
        "spec": {
            "nprocPerNode": str(max(spec.gpus_per_node, 1)),
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3},
            "pytorchReplicaSpecs": replica_specs,
        },
    }


def current_namespace(default: str = "default") -> str:
    """The namespace this pod runs in (where a pipeline step creates its job)."""
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path) as fh:
            return fh.read().strip() or default
    except OSError:
        return default


def s3_uri(uri: str) -> str:
    """An artifact URI as the S3 API sees it (KFP writes MinIO artifacts as ``minio://``)."""
    if uri.startswith("minio://"):
        return "s3://" + uri.removeprefix("minio://")
    if not uri.startswith("s3://"):
        raise JobError(f"{uri}: a PyTorchJob reads patches from S3; set the pipeline root "
                       "to an s3:// bucket the lowlight-s3 secret can read")  # fmt: skip
    return uri


def job_state(status: dict) -> tuple[str, str]:
    """(state, message) from a PyTorchJob's status: the newest condition that holds."""
    holding = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
    if not holding:
        return "Pending", ""
    newest = holding[-1]
    return newest.get("type", "Pending"), newest.get("message", "")


def run(job: dict, timeout_s: float, poll_s: float = 15.0) -> dict:
    """Create ``job`` in its namespace and wait until it succeeds (its status) or fails."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    where = f"{KIND} {namespace}/{name}"
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
        deadline = time.monotonic() + timeout_s
        while True:
            current = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            state, message = job_state(current.get("status", {}))
            log.info("%s: %s %s", where, state, message)
            if state == "Succeeded":
                return current.get("status", {})
            if state == "Failed":
                raise JobError(f"{where} failed: {message}")
            if time.monotonic() > deadline:
                api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
                raise JobError(f"{where}: not finished after {timeout_s:.0f} s; deleted")
            time.sleep(poll_s)
    except ApiException as exc:
        raise JobError(f"{where}: Kubernetes API error {exc.status} {exc.reason}") from None
