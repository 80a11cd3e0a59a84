"""Distributed training on a cluster: the PyTorchJob manifest, its status, the pipeline option."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lowlight import cluster, pytorchjob
from lowlight.config import Params
from lowlight.pipelines import runner

ROOT = Path(__file__).resolve().parents[1]


def example_spec(**changes) -> pytorchjob.JobSpec:
    fields = dict(
        name="lowlight-train", namespace=cluster.NAMESPACE, image=cluster.IMAGE, nodes=2,
        gpus_per_node=4, patches="s3://lowlight/data/patches",
        output="s3://lowlight/jobs/lowlight-train",
        params_yaml=yaml.safe_dump({"seed": 0, "model": {"depth": 4, "width": 32},
                                    "train": {"epochs": 4000, "batch_size": 64}}),
        service_account=cluster.SERVICE_ACCOUNT, config_map=cluster.CONFIG_MAP,
        secrets=tuple(cluster.SECRETS), gpu_resource=cluster.ACCELERATOR,
    )  # fmt: skip
    return pytorchjob.JobSpec(**{**fields, **changes})


def test_the_template_in_infra_is_the_manifest_the_pipeline_creates():
    template = yaml.safe_load((ROOT / "infra/k8s/pytorchjob/pytorchjob.yaml").read_text())
    assert template == pytorchjob.manifest(example_spec())


def test_manifest_nodes_gpus_and_credentials():
    job = pytorchjob.manifest(example_spec())
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 1
    assert job["spec"]["nprocPerNode"] == "4"  # torchrun processes per pod = GPUs per pod
    container = replicas["Worker"]["template"]["spec"]["containers"][0]
    assert (
        container["name"] == "pytorch" and container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    )
    assert "torchrun -m lowlight.cli train" in container["command"][-1]
    refs = [e.get("secretRef", {}).get("name") for e in container["envFrom"]]
    assert set(cluster.SECRETS) <= set(refs)
    assert "AWS_SECRET_ACCESS_KEY" not in yaml.safe_dump(job)  # names of secrets only
    cpu = pytorchjob.manifest(example_spec(nodes=1, gpus_per_node=0))
    assert set(cpu["spec"]["pytorchReplicaSpecs"]) == {"Master"}
    assert cpu["spec"]["nprocPerNode"] == "1"
    limits = cpu["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
        "resources"]["limits"]  # fmt: skip
    assert "nvidia.com/gpu" not in limits
    with pytest.raises(pytorchjob.JobError, match="at least one node"):
        pytorchjob.manifest(example_spec(nodes=0))


def test_job_state_is_the_newest_holding_condition():
    assert pytorchjob.job_state({}) == ("Pending", "")
    status = {"conditions": [
        {"type": "Created", "status": "True"},
        {"type": "Running", "status": "False"},
        {"type": "Failed", "status": "True", "message": "OOMKilled"},
    ]}  # fmt: skip
    assert pytorchjob.job_state(status) == ("Failed", "OOMKilled")


def test_artifact_uris_become_s3_uris():
    assert pytorchjob.s3_uri("minio://mlpipeline/v2/a/patches") == "s3://mlpipeline/v2/a/patches"
    assert pytorchjob.s3_uri("s3://b/p") == "s3://b/p"
    with pytest.raises(pytorchjob.JobError, match="pipeline root"):
        pytorchjob.s3_uri("/local/path")


def test_the_pipeline_compiles_with_the_pytorchjob_option(tmp_path):
    out = tmp_path / "pipeline.yaml"
    runner.compile_pipeline(Params(), out, "registry.example/lowlight:3", distributed=True)
    spec, platform = yaml.safe_load_all(out.read_text())
    assert "comp-train-job" in spec["components"] and "comp-train" not in spec["components"]
    task = spec["root"]["dag"]["tasks"]["train-job"]
    assert task["inputs"]["parameters"]["image"]["runtimeValue"]["constant"] == (
        "registry.example/lowlight:3"
    )
    assert task["inputs"]["parameters"]["nodes"]["componentInputParameter"] == "nodes"
    assert task["inputs"]["parameters"]["gpus_per_node"]["componentInputParameter"] == "gpus"
    assert spec["root"]["dag"]["tasks"]["evaluate"]["inputs"]["artifacts"]["model"][
        "taskOutputArtifact"]["producerTask"] == "train-job"  # fmt: skip
    secrets = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-job"]
    assert {s["secretName"] for s in secrets["secretAsEnv"]} == set(cluster.SECRETS)


def test_the_pipeline_service_account_may_create_pytorchjobs():
    docs = yaml.safe_load_all((ROOT / "infra/k8s/base/pipeline-rbac.yaml").read_text())
    role = next(d for d in docs if d["kind"] == "Role")
    rule = next(r for r in role["rules"] if "pytorchjobs" in r["resources"])
    assert rule["apiGroups"] == ["kubeflow.org"] and set(rule["verbs"]) == {
        "create",
        "get",
        "delete",
    }
