"""evaluate, enhance and ONNX export on a tiny trained model."""

import csv
import json

import numpy as np
import onnxruntime
import pytest
import torch

from lowlight import stages
from lowlight.card import ModelCard
from lowlight.config import EvaluateConfig, InferConfig, MlflowConfig, Params
from lowlight.errors import ConfigError, DatasetError
from lowlight.export import export_onnx
from lowlight.imageio import read_image
from lowlight.inference import load_model

SMALL_TILES = InferConfig(tile=32, overlap=8, batch=2, device="cpu")


def run_evaluate(tiny_models, tmp_path, **cfg):
    root = tiny_models.parent
    mlflow_cfg = MlflowConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return stages.evaluate.run(
        EvaluateConfig(**cfg), SMALL_TILES, mlflow_cfg, tiny_models, root / "pairs.parquet",
        None, tmp_path / "reports",
    )  # fmt: skip


def test_evaluate_writes_metrics_table_grids_and_report(tiny_models, tmp_path):
    summary = run_evaluate(tiny_models, tmp_path)
    reports = tmp_path / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    assert set(metrics) == {"amplify", "amplify+bm3d", "model"}
    for method in metrics.values():
        assert set(method) == {"overall", "ratio_100"}
        assert 0 < method["overall"]["psnr"] < 100 and 0 <= method["overall"]["ssim"] <= 1
        assert method["overall"]["images"] == 1
    assert metrics["amplify+bm3d"]["overall"]["ms_per_mp"] > 0
    with open(reports / "per_image.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["amplify", "amplify+bm3d", "model"]
    # perceptual and tonal metrics beside PSNR / SSIM; 32x48 images: MS-SSIM on 2 scales
    for row, method in zip(rows, metrics.values(), strict=True):
        overall = method["overall"]
        assert 0 < overall["msssim"] <= 1 and overall["brisque"] > 0
        assert overall["mean_error"] == round(float(row["mean_error"]), 4) >= 0
        assert overall["mean_error"] == max(abs(overall[f"mean_error_{c}"]) for c in "rgb")
        assert overall["dark_lift"] == round(float(row["dark_lift"]), 3)
        assert row["msssim_scales"] == "2" and float(row["brisque_ground_truth"]) > 0
    assert {r["pair_id"] for r in rows} == {"10001_00_0.1s"}
    grid = read_image(reports / "grids/10001_00_0.1s.png")
    assert grid.shape[1] > 5 * 48  # five columns
    report = (reports / "report.md").read_text()
    assert "| model |" in report and "![10001_00_0.1s](grids/10001_00_0.1s.png)" in report
    assert "| MS-SSIM | BRISQUE | mean error | dark lift (/255) |" in report
    assert "2 scales here" in report and "lower is more natural" in report
    assert summary["psnr_model"] == metrics["model"]["overall"]["psnr"]
    assert summary["brisque_model"] == metrics["model"]["overall"]["brisque"]


def test_every_method_is_scored_on_the_same_cropped_pixels(tiny_models, tmp_path):
    run_evaluate(tiny_models, tmp_path, crop="16x32")
    grid = read_image(tmp_path / "reports/grids/10001_00_0.1s.png")
    assert grid.shape[0] == 2 * 16 + 22  # label bar + crop + zoomed crop


def test_excluded_scenes_and_unknown_baselines(tiny_models, tmp_path):
    with pytest.raises(DatasetError, match="no test pairs"):
        run_evaluate(tiny_models, tmp_path, exclude_scenes=["10001"])
    with pytest.raises(ValueError, match="unknown baseline"):
        EvaluateConfig(baselines=["lime2"])
    from lowlight.config import override

    with pytest.raises(ConfigError, match="crop"):
        override(Params().evaluate, "evaluate", crop="big")


def test_onnx_matches_torch_on_odd_sizes(tiny_models, tmp_path):
    summary = export_onnx(tiny_models, tmp_path / "g.onnx")
    assert summary["bytes"] > 0 and (tmp_path / "g.onnx").exists()
    torch_fn, _ = load_model(tiny_models, "cpu")
    onnx_fn, card = load_model(tmp_path / "g.onnx")
    assert card == ModelCard.load(tiny_models)
    meta = onnxruntime.InferenceSession(str(tmp_path / "g.onnx")).get_modelmeta()
    assert meta.custom_metadata_map["multiple"] == "4"
    for shape in [(1, 3, 37, 53), (2, 3, 16, 16), (1, 3, 61, 29)]:
        tiles = np.random.default_rng(0).random(shape, dtype=np.float32)
        np.testing.assert_allclose(onnx_fn(tiles), torch_fn(tiles), atol=1e-3)
    # onnxruntime alone runs it
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"))
    assert session.get_inputs()[0].name == "image"


def test_int8_export_is_smaller_and_close(tiny_models, tmp_path):
    export_onnx(tiny_models, tmp_path / "f.onnx")
    export_onnx(tiny_models, tmp_path / "q.onnx", int8=True,
                calibration=tiny_models.parent / "patches/train")  # fmt: skip
    assert (tmp_path / "q.onnx").stat().st_size < (tmp_path / "f.onnx").stat().st_size
    tiles = np.random.default_rng(0).random((1, 3, 24, 40), dtype=np.float32)
    diff = np.abs(
        load_model(tmp_path / "q.onnx")[0](tiles) - load_model(tmp_path / "f.onnx")[0](tiles)
    )
    assert diff.mean() < 0.05


def test_enhance_raw_jpeg_folder_glob_and_bad_files(tiny_models, sony, tmp_path, cli):
    inputs = tmp_path / "in"
    inputs.mkdir()
    conv = tiny_models.parent / "conv"
    (inputs / "shot.jpg").write_bytes((conv / "short/10001_00_0.1s.jpg").read_bytes())
    (inputs / "DSC0001.dng").write_bytes((sony / "Sony/short/10001_00_0.1s.dng").read_bytes())
    (inputs / "broken.ARW").write_bytes(b"no raw here")
    result = cli("enhance", inputs, "--out", tmp_path / "out", "--model", tiny_models,
                 "--tile", 48, "--overlap", 16)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "broken.ARW" in result.output
    jpeg = read_image(tmp_path / "out/shot_enhanced.png")
    raw = read_image(tmp_path / "out/DSC0001_enhanced.png")
    assert jpeg.dtype == np.uint8 and jpeg.shape == (32, 48, 3)
    assert raw.dtype == np.uint16 and raw.shape == (32, 48, 3)
    # a glob, and the ONNX model with onnxruntime
    export_onnx(tiny_models, tmp_path / "g.onnx")
    result = cli("enhance", str(inputs / "*.jpg"), "--out", tmp_path / "onnx",
                 "--model", tmp_path / "g.onnx", "--tile", 48, "--overlap", 16)  # fmt: skip
    assert result.exit_code == 0, result.output
    onnx_out = read_image(tmp_path / "onnx/shot_enhanced.png").astype(int)
    assert np.abs(onnx_out - jpeg.astype(int)).max() <= 1
    # nothing usable: one clear error
    result = cli("enhance", inputs / "broken.ARW", "--out", tmp_path / "x", "--model", tiny_models)
    assert result.exit_code == 1 and "no file could be enhanced" in result.output
    result = cli("enhance", inputs, "--model", tmp_path / "missing.onnx")
    assert result.exit_code == 1 and "ONNX file not found" in result.output
    result = cli("enhance", inputs, "--model", tiny_models, "--tile", 32, "--overlap", 32)
    assert result.exit_code == 1 and "overlap (32) must be smaller than tile (32)" in result.output


def test_another_camera_s_bm3d_scale_is_what_amplify_bm3d_uses(tiny_models, tmp_path):
    """evaluate.bm3d_sigma_scale (chosen on a camera's validation split, e.g. the X-T2's)
    replaces baselines.BM3D_SIGMA_SCALE: a scale near 0 leaves BM3D nothing to remove, a huge
    one smooths the frame away."""
    scores = {}
    for scale in (500.0, 1e-6):
        run_evaluate(tiny_models, tmp_path / str(scale), bm3d_sigma_scale=scale)
        found = json.loads((tmp_path / str(scale) / "reports/metrics.json").read_text())
        scores[scale] = {m: found[m]["overall"]["psnr"] for m in ("amplify", "amplify+bm3d")}
    assert scores[1e-6]["amplify+bm3d"] == pytest.approx(scores[1e-6]["amplify"], abs=0.05)
    assert abs(scores[500.0]["amplify+bm3d"] - scores[500.0]["amplify"]) > 1.0
    with pytest.raises(ValueError, match="greater than 0"):
        EvaluateConfig(bm3d_sigma_scale=0)


def test_evaluation_is_logged_to_the_training_run(tiny_models, tmp_path):
    import mlflow

    run_evaluate(tiny_models, tmp_path)
    run_id = ModelCard.load(tiny_models).mlflow_run_id
    client = mlflow.MlflowClient(f"sqlite:///{tiny_models.parent / 'mlflow.db'}")
    data = client.get_run(run_id).data
    assert "test_overall_psnr_model" in data.metrics
    for name in ("msssim", "brisque", "mean_error", "mean_error_r", "dark_lift"):
        assert f"test_ratio_100_{name}_amplify_bm3d" in data.metrics
    assert "evaluation" in {a.path for a in client.list_artifacts(run_id)}
    assert torch.load(tiny_models / "generator.pt", weights_only=True)


def test_validation_split_chooses_between_models_without_touching_test(tiny_models, tmp_path, cli):
    """`evaluate --split val` scores the validation pairs only (how make pretrain picks between
    the L1 model and its GAN fine-tune); its MLflow metrics say val, not test."""
    import mlflow

    root = tiny_models.parent
    params = tmp_path / "params.yaml"
    params.write_text(f"mlflow:\n  tracking_uri: sqlite:///{root / 'mlflow.db'}\n"
                      "infer:\n  tile: 32\n  overlap: 8\n")  # fmt: skip
    result = cli("evaluate", tiny_models, root / "pairs.parquet", "--out", tmp_path / "val",
                 "--split", "val", "--baselines", "amplify", "--params", params)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "val/metrics.json").read_text())
    assert set(metrics) == {"amplify", "model"}
    with open(tmp_path / "val/per_image.csv") as fh:
        pair_ids = {r["pair_id"] for r in csv.DictReader(fh)}
    assert pair_ids and all(p.startswith("2") for p in pair_ids)  # SID's val prefix
    assert "Evaluation on the val split" in (tmp_path / "val/report.md").read_text()
    run = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}").get_run(
        ModelCard.load(tiny_models).mlflow_run_id
    )
    assert "val_overall_msssim_model" in run.data.metrics
    result = cli("evaluate", tiny_models, root / "pairs.parquet", "--out", tmp_path / "none",
                 "--split", "val", "--baselines", "none", "--params", params)  # fmt: skip
    assert result.exit_code == 0 and set(
        json.loads((tmp_path / "none/metrics.json").read_text())
    ) == {"model"}
    result = cli("evaluate", tiny_models, root / "pairs.parquet", "--split", "train")
    assert result.exit_code == 1 and "split" in result.output
