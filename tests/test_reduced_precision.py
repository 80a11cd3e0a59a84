"""Reduced precision: ``export onnx --int8`` (static int8, calibrated on the patch stage's dark
patches) costs the shipped model at most 0.1 dB on frames of photos it never saw and is really
int8; ``infer.precision: bfloat16`` runs where the CPU has bfloat16 instructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from lowlight import card, evaluation, metrics, pairs, stages
from lowlight.config import Params, override
from lowlight.errors import ConfigError, DatasetError
from lowlight.export import export_onnx
from lowlight.inference import enhance, load_model, load_torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bayer_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic Sony set converted, paired and patched for a bayer model."""
    root = tmp_path_factory.mktemp("int8")
    p = Params()
    synth = override(p.synth, "synth", scenes=10, size="256x384", frames=1)
    stages.synth.run(synth, root / "raw", 0)
    stages.convert.run(p.convert, root / "raw/Sony", root / "conv", mode="bayer")
    stages.pair.run(p.pair, root / "conv", root / "pairs.parquet")
    patch = override(p.patch, "patch", size=128, stride=64)
    stages.patch.run(patch, root / "pairs.parquet", root / "patches", seed=0, mode="bayer")
    return root


def test_int8_costs_at_most_a_tenth_of_a_db(bayer_set, tmp_path):
    shipped = card.shipped()
    export_onnx(shipped, tmp_path / "f.onnx")
    summary = export_onnx(shipped, tmp_path / "q.onnx", int8=True,
                          calibration=bayer_set / "patches/train")  # fmt: skip
    assert summary["calibration patches"] > 16
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert {"QLinearConv", "QLinearLeakyRelu", "Conv"} <= ops  # int8 inside, float at full size
    assert (tmp_path / "q.onnx").stat().st_size < (tmp_path / "f.onnx").stat().st_size / 2
    table, converted = pairs.read_pairs(bayer_set / "pairs.parquet")
    rows = [r for r in table.to_pylist() if r["split"] == "test"]
    assert rows
    scores = []
    for path in ("f.onnx", "q.onnx"):
        fn, model_card = load_model(tmp_path / path)
        mode, psnrs = model_card.mode, []
        for row in rows:
            model_input, _, bright = evaluation.load_pair(row, bayer_set / converted, mode, None)
            out = enhance(model_input, fn, 640, None, 1, model_card.multiple)
            psnrs.append(metrics.psnr(mode.finish(out, evaluation.row_render(row)), bright))
        scores.append(np.mean(psnrs))
    assert scores[0] - scores[1] <= 0.1


def test_int8_needs_patches_of_the_models_input(tmp_path, tiny_patches):
    with pytest.raises(DatasetError, match="needs patches to calibrate"):
        export_onnx(card.shipped(), tmp_path / "q.onnx", int8=True)
    with pytest.raises(DatasetError, match="rgb patches, but the model takes bayer"):
        export_onnx(card.shipped(), tmp_path / "q.onnx", int8=True,
                    calibration=tiny_patches / "train")  # fmt: skip
    assert not (tmp_path / "q.onnx").exists()


def test_bfloat16_where_the_cpu_has_it(monkeypatch):
    tiles = np.random.default_rng(0).random((1, 4, 64, 96), dtype=np.float32) * 0.3
    full, _ = load_torch(card.shipped(), "cpu")
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        half, _ = load_torch(card.shipped(), "cpu", "bfloat16")
        out = half(tiles)
        assert out.dtype == np.float32 and np.abs(out - full(tiles)).max() < 0.05
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.raises(ConfigError, match="no bfloat16 instructions"):
        load_torch(card.shipped(), "cpu", "bfloat16")
