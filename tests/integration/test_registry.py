"""The registry against the sqlite default and a real `mlflow server` with S3 artifacts."""

import json
import threading

import boto3
import mlflow
import numpy as np
import pandas as pd
import pytest

from lowlight import imageio, registry, stages
from lowlight.config import (
    EvaluateConfig,
    InferConfig,
    MlflowConfig,
    ModelConfig,
    RegisterConfig,
    TrainConfig,
)

from ..conftest import TINY_MODEL, TINY_TRAIN

INFER = InferConfig(tile=32, overlap=8, batch=2, device="cpu")
PASS = {"baseline_margin": -100.0}  # any model beats the baseline by -100 dB


@pytest.fixture(params=["sqlite", "server"])
def backend(request, tmp_path, monkeypatch) -> MlflowConfig:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    if request.param == "sqlite":
        return MlflowConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlruns/mlflow.db'}")
    server = request.getfixturevalue("mlflow_server")
    return MlflowConfig(tracking_uri=server["url"], experiment=f"registry-{tmp_path.name}")


def trained(root, tiny_patches, backend, seed):
    """A tiny model trained and evaluated for real: (models dir, reports dir)."""
    models, reports = root / f"models{seed}", root / f"reports{seed}"
    stages.train.run(ModelConfig(**TINY_MODEL), TrainConfig(**TINY_TRAIN), backend, tiny_patches,
                 models, reports, seed=seed)  # fmt: skip
    pairs = tiny_patches.parent / "pairs.parquet"
    stages.evaluate.run(EvaluateConfig(), INFER, backend, models, pairs, None, reports)
    return models, reports


def test_register_gate_idempotency_promote_rollback_and_load(tiny_patches, tmp_path, backend):
    name = f"lowlight-{tmp_path.name}"[:60]
    c = registry.client(backend.tracking_uri)
    first = trained(tmp_path, tiny_patches, backend, seed=0)
    result = stages.register.run(RegisterConfig(model_name=name, **PASS), INFER, backend, *first)
    assert (result["version"], result["created"], result["gate_passed"]) == ("1", True, True)
    assert result["aliases"] == ["challenger", "champion"]
    assert json.loads((first[1] / "registration.json").read_text())["version"] == "1"
    tags = c.get_model_version(name, "1").tags
    assert tags["lowlight.training_run_id"] == result["training_run"]
    assert "lowlight.git_commit" in tags and float(tags["lowlight.test_psnr"]) > 0
    assert "lowlight.test_psnr.amplify_bm3d" in tags and "model.depth" in tags["lowlight.params"]

    again = stages.register.run(RegisterConfig(model_name=name, **PASS), INFER, backend, *first)
    assert (again["version"], again["created"]) == ("1", False)
    assert len(c.search_model_versions(f"name='{name}'")) == 1

    second = trained(tmp_path, tiny_patches, backend, seed=1)
    strict = RegisterConfig(model_name=name, baseline_margin=-100.0, min_delta=100.0)
    result = stages.register.run(strict, INFER, backend, *second)
    assert result["version"] == "2" and not result["gate_passed"]
    assert "champion's" in result["gate_reason"] and result["aliases"] == ["challenger"]
    assert str(c.get_model_version_by_alias(name, "champion").version) == "1"
    failing = RegisterConfig(model_name=name, baseline_margin=100.0)
    assert (
        "does not beat amplify+bm3d"
        in stages.register.run(failing, INFER, backend, *second)["gate_reason"]
    )

    promoted = registry.promote(c, name, "2")
    assert promoted["previous"] == "1"
    assert str(c.get_model_version_by_alias(name, "champion").version) == "2"
    tags = c.get_model_version(name, "2").tags
    assert tags["lowlight.champion.previous"] == "1" and tags["lowlight.champion.promoted_by"]
    back = registry.rollback(c, name)
    assert (back["version"], back["rolled_back_from"]) == ("1", "2")
    assert str(c.get_model_version_by_alias(name, "champion").version) == "1"

    mlflow.set_tracking_uri(backend.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rows = model.predict(pd.DataFrame({"image": [imageio.encode(image, "png")]}))
    assert rows["error"][0] == "" and rows["gain"][0] == 1.0
    assert imageio.decode_image(rows["png"][0]).shape == (37, 53, 3)


def test_cli_models_commands(tiny_patches, tmp_path, backend, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", backend.tracking_uri)
    name = f"cli-{tmp_path.name}"[:60]
    models, reports = trained(tmp_path, tiny_patches, backend, seed=0)
    (tmp_path / "params.yaml").write_text("register:\n  baseline_margin: -100\n")
    params = tmp_path / "params.yaml"
    result = cli("register", models, reports, "--name", name, "--params", params)
    assert result.exit_code == 0, result.output
    assert f"models:/{name}@champion" in result.output
    photo = tiny_patches.parent / "conv/short/10001_00_0.1s.jpg"
    (tmp_path / "params.yaml").write_text(
        f"register:\n  baseline_margin: -100\n  model_name: {name}\n  srgb_model_name: {name}\n"
        "infer:\n  tile: 32\n  overlap: 8\n"
    )
    # an rgb champion: enhance gives it JPEGs as register.srgb_model_name
    result = cli("enhance", photo, "--out", tmp_path / "out", "--params", params)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/10001_00_0.1s_enhanced.png").exists()
    result = cli("models", "list", "--name", name, "--params", params)
    assert result.exit_code == 0 and "champion" in result.output
    result = cli("models", "show", "1", "--name", name, "--params", params)
    assert "reproduce: git checkout" in result.output and "&& dvc checkout" in result.output
    result = cli("models", "rollback", "--name", name, "--params", params)
    assert result.exit_code == 1 and "no previous holder" in result.output
    result = cli("models", "promote", "7", "--name", name, "--params", params)
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


def test_server_keeps_artifacts_in_s3_and_down_server_changes_nothing(
    tiny_patches, tmp_path, mlflow_server, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    backend = MlflowConfig(tracking_uri=mlflow_server["url"], experiment="registry-s3")
    name = "lowlight-s3"
    for seed in (0, 1):
        always = RegisterConfig(model_name=name, min_delta=-100.0, **PASS)
        stages.register.run(always, INFER, backend,
                        *trained(tmp_path, tiny_patches, backend, seed))  # fmt: skip
    c = registry.client(mlflow_server["url"])
    assert str(c.get_model_version_by_alias(name, "champion").version) == "2"
    s3 = boto3.client("s3", endpoint_url=mlflow_server["s3"], aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=mlflow_server["bucket"])["Contents"]]
    assert any(k.endswith("generator/generator.pt") for k in keys)
    assert any(k.endswith("MLmodel") for k in keys)

    from .conftest import free_port

    down = registry.client(f"http://127.0.0.1:{free_port()}")
    with (
        pytest.raises(registry.RegistryError, match="unreachable|registry at"),
        registry.registry_errors("http://down"),
    ):
        registry.promote(down, name, "1")
    assert str(c.get_model_version_by_alias(name, "champion").version) == "2"

    # Two promotions at once (2 holds the alias): one consistent champion, whichever won; a
    # promotion that lost the race, or of the holder itself, says so (test_registry_faults.py)
    errors = []

    def promote(version):
        try:
            registry.promote(registry.client(mlflow_server["url"]), name, version)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in ("1", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(e, registry.RegistryError) for e in errors), errors
    assert all("already holds" in str(e) or "concurrent promotion" in str(e) for e in errors)
    assert len(errors) < 2 or "already holds" in str(errors[0]) + str(errors[1])
    champion = c.get_model_version_by_alias(name, "champion")
    assert str(champion.version) in ("1", "2")
    holders = registry.aliases_by_version(c, name)
    assert [v for v, aliases in holders.items() if "champion" in aliases] == [str(champion.version)]
    assert c.get_model_version(name, champion.version).tags["lowlight.champion.promoted_at"]
