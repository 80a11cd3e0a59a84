"""model.input bayer through every stage on tiny data: convert packs, patch cuts, train, tiled
evaluate, enhance (also a RAW unlike SID's), ONNX export and the registered pyfunc model."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from lowlight.card import ModelCard
from lowlight.patches import scan
from tests.conftest import readme_block
from tests.test_bayer import write_camera_dng

pytestmark = pytest.mark.slow

TINY = {
    "synth": {"scenes": 4, "size": "64x96", "frames": 2},
    "patch": {"size": 32, "stride": 16, "row_group": 16},
    "model": {"input": "bayer", "depth": 2, "width": 4, "disc_width": 4, "disc_hidden": 16},
    "train": {"epochs": 1, "batch_size": 4, "workers": 0, "checkpoint_every": 5},
    "infer": {"tile": 24, "overlap": 8},
    "evaluate": {"baselines": ["amplify"], "crop": "40x60"},
    "register": {"baseline": "amplify", "baseline_margin": -100},
}


def test_bayer_mode_end_to_end(cli, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlruns/mlflow.db'}"  # where README's example finds it
    params = {**TINY, "mlflow": {"tracking_uri": uri}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    def run(*args):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        return result.output

    run("synth", "raw")
    run("convert", "raw/Sony", "conv")
    manifest = pq.read_table("conv/converted.parquet").to_pylist()
    shorts = [r for r in manifest if r["gain"] > 1]
    assert shorts and all(r["packed"].endswith(".bayer-signed.png") for r in shorts)
    assert all(r["packed"] is None for r in manifest if r["gain"] == 1)
    packed = cv2.imread(f"conv/{shorts[0]['packed']}", cv2.IMREAD_UNCHANGED)
    assert packed.shape == (32, 48, 4) and packed.dtype == np.uint16

    run("pair", "conv", "pairs.parquet")
    run("patch", "pairs.parquet", "patches")
    spec, _ = scan("patches/train")
    assert spec.input == "bayer" and spec.dark_shape == (16, 16, 4)

    run("train", "patches", "models")
    card = ModelCard.load(tmp_path / "models")
    assert card.input == "bayer" and card.arguments["in_channels"] == 4
    assert card.arguments["scale"] == 2

    run("evaluate", "models", "pairs.parquet")
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert metrics["model"]["overall"]["images"] >= 1

    # enhance: SID-named RAWs, and a 12-bit GRBG "camera" DNG turned 90 degrees
    write_camera_dng(tmp_path / "IMG_0042.dng", "GRBG", orientation=6)
    (tmp_path / "photo.jpg").write_bytes((tmp_path / "conv" / manifest[0]["output"]).read_bytes())
    output = cli("enhance", "raw/Sony/short/10001_00_0.1s.dng", "IMG_0042.dng", "photo.jpg",
                 "--model", "models", "--out", "out")  # fmt: skip
    assert output.exit_code == 0, output.output
    assert "a bayer model enhances RAW files only" in output.output  # the JPEG, reported
    sid = cv2.imread("out/10001_00_0.1s_enhanced.png", cv2.IMREAD_UNCHANGED)
    assert sid.shape == (64, 96, 3) and sid.dtype == np.uint16
    camera = cv2.imread("out/IMG_0042_enhanced.png", cv2.IMREAD_UNCHANGED)
    assert camera.shape == (34, 22, 3)  # upright, as the camera said (22x34 sensor, 90 CW)

    run("export", "onnx", "models", "model.onnx")
    run("enhance", "raw/Sony/short/10001_00_0.1s.dng", "--model", "model.onnx", "--out", "onnx")
    from_onnx = cv2.imread("onnx/10001_00_0.1s_enhanced.png", cv2.IMREAD_UNCHANGED)
    assert np.abs(from_onnx.astype(int) - sid.astype(int)).max() <= 2

    run("register", "models", "reports")
    mlflow.set_tracking_uri(uri)
    try:  # README's example as written: a file's bytes in, the enhanced PNG's bytes out
        (tmp_path / "data/synthetic").mkdir(parents=True)
        (tmp_path / "data/synthetic/Sony").symlink_to(tmp_path / "raw/Sony")
        # in a process of its own, as a user runs it (MLflow caches a relative store's engine)
        example = readme_block("import mlflow\nimport pandas")
        subprocess.run([sys.executable, "-c", example], cwd=tmp_path, check=True)
        bright = cv2.imread("bright.png", cv2.IMREAD_UNCHANGED)
        assert (
            bright.dtype == np.uint16 and np.abs(bright.astype(int) - sid.astype(int)).max() <= 257
        )
        model = mlflow.pyfunc.load_model("models:/lowlight@champion")
        dng = (tmp_path / "raw/Sony/short/10001_00_0.1s.dng").read_bytes()
        rows = model.predict(
            pd.DataFrame({"image": [dng[:5000], b"", dng], "ratio": ["auto", None, "2"]})
        )
        assert rows["png"][0] == b"" and rows["error"][0].startswith("row 0: ")
        assert rows["png"][1] == b"" and "row 1" in rows["error"][1]
        assert rows["error"][2] == "" and rows["gain"][2] == 2.0
        assert cv2.imdecode(
            np.frombuffer(rows["png"][2], np.uint8), cv2.IMREAD_UNCHANGED
        ).shape == (64, 96, 3)
    finally:
        mlflow.set_tracking_uri("")
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_patches_for_one_mode_are_refused_by_the_other(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # an absolute store: MLflow caches stores by URI, a relative one would outlive this folder
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = {**TINY, "model": {**TINY["model"], "input": "rgb"}, "mlflow": {"tracking_uri": uri}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for args in (("synth", "raw"), ("convert", "raw/Sony", "conv"), ("pair", "conv", "p.parquet"),
                 ("patch", "p.parquet", "patches")):  # fmt: skip
        assert cli(*args).exit_code == 0
    result = cli("train", "patches", "models", "--params", "params.yaml")
    assert result.exit_code == 0, result.output
    params["model"]["input"] = "bayer"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = cli("train", "patches", "models")
    assert result.exit_code == 1
    assert "cut for model.input rgb, the model takes bayer" in result.output
    result = cli("patch", "p.parquet", "patches")
    assert result.exit_code == 1 and "no packed Bayer input" in result.output
