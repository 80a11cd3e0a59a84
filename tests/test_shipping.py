"""The shipped model: `lowlight export pretrained`, enhance's fallback to it, train.init."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lowlight import card, inference, shipping, stages, storage
from lowlight.config import (
    ConvertConfig,
    InferConfig,
    MlflowConfig,
    ModelConfig,
    Params,
    TrainConfig,
)
from lowlight.train import TrainError, init_from_shipped

from .conftest import TINY_MODEL, TINY_TRAIN

METRICS = {"model": {"overall": {"psnr": 30.0, "ssim": 0.9}, "ratio_100": {"psnr": 31.0}},
           "amplify+bm3d": {"overall": {"psnr": 28.0, "ssim": 0.8}}}  # fmt: skip


@pytest.fixture
def shipped(tiny_models, tmp_path, monkeypatch):
    """The tiny trained generator shipped into a tmp folder that stands for the package's."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "metrics.json").write_text(json.dumps(METRICS))
    out = tmp_path / "pretrained"
    summary = shipping.ship(tiny_models, reports, Params(), "params.yaml", out=out)
    monkeypatch.setattr(card, "SHIPPED", out)
    return summary


def test_export_pretrained_writes_half_weights_a_card_and_its_readme(shipped, tiny_models):
    out = card.SHIPPED
    files = sorted(p.name for p in out.iterdir())
    assert files == [storage.MARKER, "README.md", "generator.json", "generator.pt"]
    assert 0 < shipped["bytes"] <= shipping.MAX_BYTES
    state = torch.load(out / "generator.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    shipped_card = card.ModelCard.load(out)
    assert shipped_card.provenance["test metrics"]["model"]["psnr"] == 30.0
    data = shipped_card.provenance["data"]
    assert not set(data["test"]["photos"]) & set(data["train"]["photos"])
    assert shipped_card.provenance["reproduce"] == "make pretrain"
    # the card records how the synthetic scenes reached the sensor (issue 23)
    assert shipped_card.provenance["capture"].startswith("1.5-4 sensor pixels per photo pixel")
    assert "2500-7500 K" in (out / "README.md").read_text()
    assert "What it is not" in (out / "README.md").read_text()
    generator, _ = card.load_generator(card.shipped())  # float16 on disk, float32 in memory
    reference, _ = card.load_generator(tiny_models)
    x = torch.rand(1, 3, 16, 24)
    torch.testing.assert_close(generator(x), reference(x), atol=2e-3, rtol=1e-2)


def test_enhance_uses_the_champion_else_the_shipped_model_and_says_which(shipped, sony, tmp_path):
    mlflow_cfg = MlflowConfig(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    summary = stages.enhance.run(ConvertConfig(), InferConfig(tile=32, overlap=8), mlflow_cfg,
                                 None, [str(sony / "Sony/short")], tmp_path / "out")  # fmt: skip
    assert summary["model"].startswith("shipped") and summary["enhanced"] == summary["files"]
    _, _, used = inference.load_default(None, "lowlight", "cpu")
    assert used.startswith("shipped")


def test_train_init_shipped_starts_from_its_weights_and_refuses_another_architecture(shipped):
    from lowlight.train import build_models

    generator, _ = build_models(ModelConfig(**TINY_MODEL), seed=5)
    init_from_shipped(generator)
    reference, _ = card.load_generator(card.SHIPPED)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(generator.state_dict()[name], value)
    wider, _ = build_models(ModelConfig(**{**TINY_MODEL, "width": 8}), seed=5)
    with pytest.raises(TrainError, match="train.init shipped"):
        init_from_shipped(wider)
    assert TrainConfig(**TINY_TRAIN, init="shipped").init == "shipped"
    assert np.isfinite(shipped["bytes"])
