"""The Kubeflow pipeline end to end on this machine: `lowlight pipeline run-local` runs the
compiled pipeline's very components with kfp.local.SubprocessRunner on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

TINY = {
    "synth": {"scenes": 3, "size": "32x48", "frames": 2},
    "patch": {"size": 16, "stride": 8, "row_group": 16},
    "model": {"depth": 2, "width": 4, "disc_width": 4, "disc_hidden": 16},
    "train": {"epochs": 1, "batch_size": 4, "workers": 0, "checkpoint_every": 5},
    "infer": {"tile": 32, "overlap": 8},
}


def only(root: Path, pattern: str) -> Path:
    found = sorted(root.glob(pattern))
    assert len(found) == 1, f"{pattern}: {found}"
    return found[0]


def test_run_local_registers_a_model_only_when_the_gate_passes(cli, tmp_path, monkeypatch):
    import mlflow

    from lowlight import imageio, registry

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**TINY, "mlflow": {"tracking_uri": uri}}))

    # 1: a gate the tiny model passes (it need not beat BM3D) -> registered, champion
    work = tmp_path / "run1"
    result = cli("pipeline", "run-local", "--work", work, "--params", params,
                 "--param", "register.baseline_margin=-100")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only(work / "pipeline_root", "lowlight-*")
    assert len(list(run.glob("for-loop-*/convert/converted"))) == 2  # two convert shards
    metrics = json.loads((run / "evaluate/reports/metrics.json").read_text())
    assert set(metrics) == {"amplify", "amplify+bm3d", "model"}
    assert (run / "evaluate/grids").read_text().count("data:image/png;base64,") == 1
    assert "| model |" in (run / "evaluate/report").read_text()
    assert "models:/lowlight/1" in (run / "register/registration").read_text()
    c = registry.client(uri)
    assert registry.aliases_by_version(c, "lowlight") == {"1": ["challenger", "champion"]}
    version = c.get_model_version("lowlight", "1")
    assert version.tags["lowlight.test_psnr"] == str(metrics["model"]["overall"]["psnr"])
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model("models:/lowlight@champion")
        image = np.random.default_rng(0).integers(0, 255, (21, 34, 3), dtype=np.uint8)
        rows = model.predict(pd.DataFrame({"image": [imageio.encode(image, "png")]}))
        assert imageio.decode_image(rows["png"][0]).shape == (21, 34, 3)
    finally:
        mlflow.set_tracking_uri("")
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    # 2: the default gate (beat amplify+BM3D) fails -> evaluate says so, register is skipped
    work = tmp_path / "run2"
    result = cli("pipeline", "run-local", "--work", work, "--params", params)
    assert result.exit_code == 0, result.output
    run = only(work / "pipeline_root", "lowlight-*")
    gate = json.loads((run / "evaluate/executor_output.json").read_text())
    assert gate["parameterValues"]["Output"] is False
    assert not (run / "register").exists()
    assert registry.aliases_by_version(c, "lowlight") == {"1": ["challenger", "champion"]}
