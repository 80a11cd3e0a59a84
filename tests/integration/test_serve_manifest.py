"""Issue 22, point 3: `lowlight models serve-manifest` against a real `mlflow server` whose
artifacts are proxied to (moto) S3: the InferenceService points at the champion's files there,
and follows `lowlight models promote` and `rollback`."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from lowlight import imageio, stages
from lowlight.config import EvaluateConfig, MlflowConfig, RegisterConfig

from ..conftest import one_line_error
from ..kserve_schema import validate
from .conftest import S3_ENV
from .test_registry import INFER

pytestmark = pytest.mark.slow

NAME = "Lowlight_Served"  # not a DNS name as it is
SECRETS = {"AWS_SECRET_ACCESS_KEY": "s3-secret-never-shown",
           "MLFLOW_TRACKING_PASSWORD": "mlflow-password-never-shown"}  # fmt: skip


def register_two_versions(tiny_models: Path, root: Path, url: str) -> None:
    """The tiny model registered twice on the server (two training runs): version 1 passes the
    gate (champion), version 2 does not (challenger)."""
    models = root / "models"
    models.mkdir()
    for name in ("generator.pt", "generator.json"):
        (models / name).write_bytes((tiny_models / name).read_bytes())
    local = MlflowConfig(tracking_uri=f"sqlite:///{root / 'eval.db'}")
    pairs = tiny_models.parent / "pairs.parquet"
    stages.evaluate.run(EvaluateConfig(), INFER, local, models, pairs, None, root / "reports")
    server = MlflowConfig(tracking_uri=url, experiment="serve-manifest")
    experiment = mlflow.MlflowClient(url).create_experiment("serve-manifest-runs")
    for min_delta in (0.0, 100.0):
        card = json.loads((models / "generator.json").read_text())
        card["mlflow_run_id"] = mlflow.MlflowClient(url).create_run(experiment).info.run_id
        (models / "generator.json").write_text(json.dumps(card))
        cfg = RegisterConfig(model_name=NAME, baseline_margin=-100.0, min_delta=min_delta)
        stages.register.run(cfg, INFER, server, models, root / "reports")


def objects(s3, bucket: str, prefix: str) -> dict[str, str]:
    """Key (below ``prefix``) -> key of every object under the prefix."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
    return {o["Key"][len(prefix) :].lstrip("/"): o["Key"] for o in listed.get("Contents", [])}


def test_the_manifest_follows_promote_and_rollback_to_the_versions_files_in_s3(
    tiny_models, mlflow_server, tmp_path, cli, monkeypatch
):
    url, bucket = mlflow_server["url"], mlflow_server["bucket"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    register_two_versions(tiny_models, tmp_path, url)
    for key, value in SECRETS.items():  # what the command must never write
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "lowlight")
    # the fixture's server keeps its proxied artifacts here (--artifacts-destination)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", f"s3://{bucket}/artifacts")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"register": {"model_name": NAME}}))

    def render(*args: str) -> dict:
        # as infra/README.md has it: `lowlight models serve-manifest --alias champion | kubectl ...`
        result = cli("models", "serve-manifest", *args, "--params", params)
        assert result.exit_code == 0, result.output
        for value in SECRETS.values():
            assert value not in result.stdout
        assert "AWS_" not in result.stdout and "lowlight@" not in result.stdout
        doc = yaml.safe_load(result.stdout)
        validate(doc, "V1beta1InferenceService")
        return doc

    s3 = boto3.client("s3", endpoint_url=mlflow_server["s3"],
                      aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                      region_name=S3_ENV["AWS_DEFAULT_REGION"])  # fmt: skip

    first = render("--alias", "champion")
    assert first["metadata"]["name"] == "lowlight-served"
    assert first["metadata"]["annotations"] == {"lowlight/model-uri": f"models:/{NAME}/1",
                                                "lowlight/alias": "champion"}  # fmt: skip
    uri = first["spec"]["predictor"]["model"]["storageUri"]
    assert uri.startswith(f"s3://{bucket}/artifacts/")
    # what KServe's storage initializer does: everything under storageUri into /mnt/models
    prefix = uri.removeprefix(f"s3://{bucket}/")
    files = objects(s3, bucket, prefix)
    assert "MLmodel" in files and any(k.endswith("generator.pt") for k in files), files
    mnt = tmp_path / "mnt/models"
    for rel, key in files.items():
        (mnt / rel).parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(mnt / rel))
    model = mlflow.pyfunc.load_model(str(mnt))  # what `mlflow models serve -m /mnt/models` loads
    photo = imageio.encode(np.full((20, 30, 3), 40, np.uint8), "png")
    assert model.predict(pd.DataFrame({"image": [photo]}))["error"][0] == ""

    assert cli("models", "promote", "2", "--params", params).exit_code == 0
    out = tmp_path / "deploy/isvc.yaml"
    result = cli("models", "serve-manifest", "--out", out, "--params", params)
    assert result.exit_code == 0, result.output
    promoted = yaml.safe_load(out.read_text())
    validate(promoted, "V1beta1InferenceService")
    assert promoted["metadata"]["name"] == first["metadata"]["name"]  # the same service, updated
    assert promoted["metadata"]["annotations"]["lowlight/model-uri"] == f"models:/{NAME}/2"
    second_uri = promoted["spec"]["predictor"]["model"]["storageUri"]
    assert second_uri != uri and "MLmodel" in objects(s3, bucket, second_uri.split("/", 3)[3])

    assert cli("models", "rollback", "--params", params).exit_code == 0
    assert render()["spec"]["predictor"]["model"]["storageUri"] == uri
    assert render("2")["spec"]["predictor"]["model"]["storageUri"] == second_uri

    one_line_error(cli("models", "serve-manifest", "7", "--params", params), "not found")
    one_line_error(cli("models", "serve-manifest", "--alias", "staging", "--params", params),
                   "no version holding 'staging'")  # fmt: skip
