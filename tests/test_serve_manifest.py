"""`lowlight models serve-manifest` offline: a real sqlite registry, KServe's own typed models
(tests/kserve_schema.py) and infra/k8s/serving, which the manifest relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest
import yaml

from lowlight import __version__, cluster, serving
from lowlight.errors import ConfigError

from .conftest import one_line_error
from .kserve_schema import SchemaError, validate
from .test_infra import K8S, K8S_VERSION, rendered

SERVING = K8S / "serving"
PROXIED = "mlflow-artifacts:/1/models/m-0a1b/artifacts"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> mlflow.MlflowClient:
    """A sqlite registry: version 1 in MLflow's proxied store (the champion), 2 in S3 itself,
    3 in a local folder (what a registry without an S3 artifact store holds)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv(serving.DESTINATION_ENV, raising=False)
    c = mlflow.MlflowClient(uri)
    c.create_registered_model("lowlight")
    for source in (PROXIED, "s3://models/lowlight/2", str(tmp_path / "mlruns/3/artifacts")):
        c.create_model_version("lowlight", source=source)
    c.set_registered_model_alias("lowlight", "champion", "1")
    return c


def render(cli, *args: str) -> dict:
    result = cli("models", "serve-manifest", *args)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.stdout)


def test_the_champion_renders_as_an_inference_service_kserve_accepts(registry, cli):
    doc = render(cli)  # the champion by default
    validate(doc, "V1beta1InferenceService")
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    meta = doc["metadata"]
    assert (meta["name"], meta["namespace"]) == ("lowlight", cluster.NAMESPACE)
    assert meta["labels"] == {"app.kubernetes.io/part-of": "lowlight"}
    assert meta["annotations"] == {"lowlight/model-uri": "models:/lowlight/1",
                                   "lowlight/alias": "champion"}  # fmt: skip
    predictor = doc["spec"]["predictor"]
    assert predictor["serviceAccountName"] == serving.SERVICE_ACCOUNT
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "mlflow"} and model["runtime"] == serving.RUNTIME
    assert model["storageUri"] == "s3://mlflow/1/models/m-0a1b/artifacts"  # infra's default
    assert model["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}

    by_number = render(cli, "2", "--namespace", "photos")  # an s3:// version as it is
    validate(by_number, "V1beta1InferenceService")
    assert by_number["metadata"]["name"] == meta["name"]  # the same InferenceService
    assert by_number["metadata"]["namespace"] == "photos"
    assert by_number["metadata"]["annotations"] == {"lowlight/model-uri": "models:/lowlight/2"}
    assert by_number["spec"]["predictor"]["model"]["storageUri"] == "s3://models/lowlight/2"


def test_the_artifacts_destination_comes_from_the_option_the_environment_or_infra(
    registry, cli, tmp_path, monkeypatch
):
    monkeypatch.setenv(serving.DESTINATION_ENV, "s3://env-bucket/artifacts/")
    assert render(cli)["spec"]["predictor"]["model"]["storageUri"] == (
        "s3://env-bucket/artifacts/1/models/m-0a1b/artifacts"
    )
    out = tmp_path / "deploy/isvc.yaml"
    result = cli("models", "serve-manifest", "--alias", "champion", "--out", out,
                 "--artifacts-destination", "s3://given")  # fmt: skip
    assert result.exit_code == 0 and "models:/lowlight/1" in result.output
    doc = yaml.safe_load(out.read_text())
    assert doc["spec"]["predictor"]["model"]["storageUri"] == "s3://given/1/models/m-0a1b/artifacts"
    assert [p.name for p in out.parent.iterdir()] == ["isvc.yaml"]  # no temp file left
    assert cluster.ARTIFACTS_DESTINATION == "s3://mlflow/"  # infra/k8s/base's, test_infra checks


def test_versions_the_cluster_cannot_read_and_wrong_requests_are_one_line(registry, cli, tmp_path):
    local = str(tmp_path / "mlruns/3/artifacts")
    one_line_error(cli("models", "serve-manifest", "3"), local, "cannot read", "S3 (infra/)")
    one_line_error(cli("models", "serve-manifest", "--alias", "staging"), "no version holding",
                   "'staging'")  # fmt: skip
    one_line_error(cli("models", "serve-manifest", "1", "--alias", "champion"), "not both")
    one_line_error(cli("models", "serve-manifest", "7"), "version=7", "not found")
    one_line_error(cli("models", "serve-manifest", "--artifacts-destination", "/srv/mlflow"),
                   "/srv/mlflow", "s3://")  # fmt: skip
    one_line_error(cli("models", "serve-manifest", "--name", "absent"), "'absent'")
    assert not list(tmp_path.glob("*.yaml"))


def test_storage_uris_and_names():
    assert serving.storage_uri("mlflow-artifacts://mlflow:5000/4/models/m-1/artifacts",
                               "s3://b/") == "s3://b/4/models/m-1/artifacts"  # fmt: skip
    with pytest.raises(serving.ServingError, match="cannot read"):
        serving.storage_uri("file:///srv/mlruns/1/artifacts", "s3://b/")
    with pytest.raises(serving.ServingError, match="cannot read"):
        serving.storage_uri("gs://bucket/model", "s3://b/")
    with pytest.raises(ConfigError):
        serving.artifacts_destination("s3:///no-bucket")
    dns_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
    for name in ("lowlight", "Low_Light.v2", "42-models", "ÜBER/model--", "x" * 80):
        label = serving.service_name(name)
        assert dns_1035.fullmatch(label) and len(label) <= serving.MAX_NAME, (name, label)
    assert serving.service_name("Low_Light.v2") == "low-light-v2"


def test_a_misspelt_field_a_wrong_type_or_a_missing_field_fails_the_schema_check(registry, cli):
    doc = render(cli)
    model = doc["spec"]["predictor"]["model"]
    model["storageUrl"] = model.pop("storageUri")
    with pytest.raises(SchemaError, match=r"storageUrl.*V1beta1ModelSpec"):
        validate(doc, "V1beta1InferenceService")
    doc = render(cli)
    doc["spec"]["predictor"]["model"]["resources"]["requests"]["cpu"] = 2  # YAML's unquoted 2
    with pytest.raises(SchemaError, match=r"requests\.cpu: str expected"):
        validate(doc, "V1beta1InferenceService")
    doc = render(cli)
    del doc["spec"]["predictor"]["model"]["modelFormat"]  # the SDK's own required-field check
    with pytest.raises(SchemaError, match="model_format"):
        validate(doc, "V1beta1InferenceService")
    doc = render(cli)
    doc["spec"]["predictor"]["serviceAccountName"] = ["lowlight-serving"]
    with pytest.raises(SchemaError, match="serviceAccountName: str expected"):
        validate(doc, "V1beta1InferenceService")


# ---------------------------------------------------------------------------------------------
# infra/k8s/serving and the overlays' S3 annotations


def serving_docs() -> dict[str, dict]:
    return {d["kind"]: d for d in rendered(SERVING)}


def test_the_serving_runtime_passes_kserves_schema_and_serves_mlflow_models():
    runtime = serving_docs()["ServingRuntime"]
    validate(runtime, "V1alpha1ServingRuntime")
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert runtime["metadata"] == {"name": serving.RUNTIME, "namespace": cluster.NAMESPACE,
                                   "labels": {"app.kubernetes.io/part-of": "lowlight"}}  # fmt: skip
    assert [f["name"] for f in runtime["spec"]["supportedModelFormats"]] == [serving.MODEL_FORMAT]
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container" and container["image"] == cluster.IMAGE
    command = container["command"] + container["args"]
    # KServe's storage initializer puts storageUri in /mnt/models; KServe routes to port 8080
    assert command[:5] == ["mlflow", "models", "serve", "-m", "/mnt/models"]
    assert " ".join(command).endswith("--env-manager local --host 0.0.0.0 --port 8080")
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    k = yaml.safe_load((SERVING / "kustomization.yaml").read_text())
    assert k["images"] == [{"name": cluster.IMAGE_NAME, "newName": cluster.IMAGE_NAME,
                            "newTag": __version__}]  # fmt: skip


def test_the_service_account_passes_kubernetes_schemas_and_lists_the_s3_secret():
    import kubernetes_validate

    account = serving_docs()["ServiceAccount"]
    kubernetes_validate.validate(account, K8S_VERSION, strict=True)
    assert account["metadata"]["name"] == serving.SERVICE_ACCOUNT
    assert account["secrets"] == [{"name": cluster.S3_SECRET}]
    assert "automountServiceAccountToken" not in account  # no API access is granted either


@pytest.mark.parametrize("overlay", ["minio", "external-s3"])
def test_each_overlay_tells_kserve_where_its_s3_store_is(overlay):
    folder = K8S / "overlays" / overlay
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    (gen,) = [g for g in k["secretGenerator"] if g["name"] == cluster.S3_SECRET]
    assert gen["behavior"] == "merge" and not gen.get("envs") and not gen.get("literals")
    notes = gen["options"]["annotations"]
    config = {}
    for c in k["configMapGenerator"]:
        if c["name"] == cluster.CONFIG_MAP:
            config.update(dict(lit.split("=", 1) for lit in c["literals"]))
    # the same endpoint as the pipeline's, in KServe's form: host[:port] and an https flag
    scheme, host = config["AWS_ENDPOINT_URL"].split("://")
    assert notes["serving.kserve.io/s3-endpoint"] == host
    assert notes["serving.kserve.io/s3-usehttps"] == ("1" if scheme == "https" else "0")
    assert notes["serving.kserve.io/s3-region"] == config.get("AWS_DEFAULT_REGION", "us-east-1")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_serving_and_keeps_the_annotations_on_the_secret():
    def render(folder: Path) -> list[dict]:
        out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True,
                             text=True, timeout=30)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return [d for d in yaml.safe_load_all(out.stdout) if d]

    docs = {d["kind"]: d for d in render(SERVING)}
    assert docs.keys() == {"ServiceAccount", "ServingRuntime"}
    validate(docs["ServingRuntime"], "V1alpha1ServingRuntime")
    secrets = {d["metadata"]["name"]: d for d in render(K8S / "overlays/minio")
               if d["kind"] == "Secret"}  # fmt: skip
    secret = secrets[cluster.S3_SECRET]
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "0"
    assert sorted(secret["data"]) == sorted(cluster.S3_ENV)  # KServe's key names too
