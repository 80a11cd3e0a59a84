"""Training tracked on a real `mlflow server` whose artifacts live in a moto S3 bucket."""

import boto3
import mlflow

from lowlight import stages
from lowlight.config import MlflowConfig, ModelConfig, TrainConfig

from ..conftest import TINY_MODEL, TINY_TRAIN


def test_train_logs_to_a_real_mlflow_server(tiny_patches, tmp_path, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server["url"])
    summary = stages.train.run(
        ModelConfig(**TINY_MODEL),
        TrainConfig(**TINY_TRAIN),
        MlflowConfig(experiment="server-test"),
        tiny_patches,
        tmp_path / "models",
        tmp_path / "reports",
        seed=0,
    )
    client = mlflow.MlflowClient(mlflow_server["url"])
    run = client.get_run(summary["mlflow_run"])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.batch_size"] == "4"
    assert "val_psnr" in run.data.metrics
    assert "train_history.csv" in {a.path for a in client.list_artifacts(run.info.run_id)}
    s3 = boto3.client(
        "s3",
        endpoint_url=mlflow_server["s3"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=mlflow_server["bucket"])["Contents"]]
    assert any(k.endswith(f"{run.info.run_id}/artifacts/train_history.csv") for k in keys)
