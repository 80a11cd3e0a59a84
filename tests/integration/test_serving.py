"""Issue 22, point 2: the champion served by MLflow's own scoring server (`mlflow models serve
-m models:/NAME@champion --env-manager local`), one request holding a DNG, a truncated DNG and a
PNG: the DNG's answer is `lowlight enhance`'s output, the bad file is an error row."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from lowlight import imageio, isp, stages
from lowlight.config import EvaluateConfig, MlflowConfig, RegisterConfig

from .conftest import free_port, wait_for
from .test_registry import INFER


def test_mlflow_models_serve_answers_files_with_enhanced_pngs(tiny_models, sony, tmp_path, cli,
                                                              monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlruns/mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    models = tmp_path / "models"
    models.mkdir()
    for name in ("generator.pt", "generator.json"):
        (models / name).write_bytes((tiny_models / name).read_bytes())
    pairs = tiny_models.parent / "pairs.parquet"
    backend = MlflowConfig(tracking_uri=store)
    stages.evaluate.run(EvaluateConfig(), INFER, backend, models, pairs, None, tmp_path / "reports")
    # the card names the fixture's training run, in another store: give it one in this store
    card = json.loads((models / "generator.json").read_text())
    import mlflow

    card["mlflow_run_id"] = mlflow.MlflowClient(store).create_run("0").info.run_id  # Default
    (models / "generator.json").write_text(json.dumps(card))
    register = RegisterConfig(model_name="served", baseline_margin=-100.0)
    result = stages.register.run(register, INFER, backend, models, tmp_path / "reports")
    assert result["gate_passed"]

    dng = sorted((sony / "Sony/short").glob("1*.dng"))[0]  # a test scene's dark frame
    (tmp_path / "params.yaml").write_text(json.dumps({"infer": INFER.model_dump()}))
    assert cli("enhance", dng, "--model", models, "--out", "cli").exit_code == 0
    expected = cv2.imread(f"cli/{dng.stem}_enhanced.png", cv2.IMREAD_UNCHANGED)

    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = tmp_path / "serve.log"
    command = ["mlflow", "models", "serve", "-m", "models:/served@champion", "--env-manager",
               "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with open(log, "wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", server, 120, log)
        png = imageio.encode(np.full((20, 30, 3), 40, np.uint8), "png")
        whole = dng.read_bytes()
        files = [whole, whole[: len(whole) // 2], png]
        data = [[base64.b64encode(f).decode()] for f in files]
        body = {"dataframe_split": {"columns": ["image"], "data": data}}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=300) as response:
            assert response.status == 200
            rows = json.loads(response.read())["predictions"]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert [bool(r["error"]) for r in rows] == [False, True, False], rows
    assert rows[1]["error"].startswith("row 1: ") and not rows[1]["png"]
    served = cv2.imdecode(np.frombuffer(base64.b64decode(rows[0]["png"]), np.uint8),
                          cv2.IMREAD_UNCHANGED)  # fmt: skip
    assert served.dtype == np.uint16 and served.shape == expected.shape
    assert np.abs(served.astype(int) - expected.astype(int)).max() <= 257  # within 1/255
    light = imageio.decode_image(base64.b64decode(rows[2]["png"]))
    # a dark PNG is exposed as convert exposes it: to the metered mean linear level
    metered = 0.18 / isp.level(np.full((1, 1, 3), 40 / 255))
    assert light.shape == (20, 30, 3) and rows[2]["gain"] == pytest.approx(metered, rel=1e-4)
