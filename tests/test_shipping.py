"""The shipped models: `lowlight export pretrained`, enhance's choice among them by the kind of
file and its fallback to them, train.init."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lowlight import card, inference, modes, shipping, stages, storage
from lowlight.config import (
    ConvertConfig,
    InferConfig,
    MlflowConfig,
    ModelConfig,
    Params,
    RegisterConfig,
    TrainConfig,
)
from lowlight.errors import DatasetError
from lowlight.train import TrainError, init_generator

from .conftest import TINY_MODEL, TINY_TRAIN

PACKAGED = card.SHIPPED  # the package's own shipped models, before a test stands in for them

METRICS = {"model": {"overall": {"psnr": 30.0, "ssim": 0.9}, "ratio_100": {"psnr": 31.0}},
           "amplify+bm3d": {"overall": {"psnr": 28.0, "ssim": 0.8}}}  # fmt: skip


@pytest.fixture
def shipped(tiny_models, tmp_path, monkeypatch):
    """The tiny trained (rgb) generator shipped into a tmp folder that stands for the package's,
    beside a copy of the package's RAW model."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "metrics.json").write_text(json.dumps(METRICS))
    monkeypatch.setattr(card, "SHIPPED", tmp_path / "pretrained")
    card.copy_model(PACKAGED / "bayer", card.SHIPPED / "bayer")
    return shipping.ship(tiny_models, reports, Params(), "params.yaml")


def test_export_pretrained_writes_half_weights_a_card_and_its_readme(shipped, tiny_models):
    assert shipped["input"] == "rgb"
    out = card.SHIPPED / "rgb"  # by its input mode, beside the RAW model
    assert shipped["out"] == str(out) and (card.SHIPPED / "bayer" / card.WEIGHTS).exists()
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
    assert "JPEG" in (out / "README.md").read_text().splitlines()[0]
    generator, _ = card.load_generator(card.shipped("rgb"))  # float16 on disk, float32 in memory
    reference, _ = card.load_generator(tiny_models)
    x = torch.rand(1, 3, 16, 24)
    torch.testing.assert_close(generator(x), reference(x), atol=2e-3, rtol=1e-2)


def test_enhance_gives_each_kind_of_file_its_shipped_model_and_says_which(shipped, sony, tmp_path):
    """No champion in the registry: RAW files go to the RAW model, JPEG/PNG to the sRGB one,
    in one run, and the summary says which took what."""
    from lowlight import imageio

    photos = tmp_path / "photos"
    photos.mkdir()
    raw = sorted((sony / "Sony/short").iterdir())[0]
    (photos / raw.name).write_bytes(raw.read_bytes())
    dark = np.random.default_rng(0).integers(0, 40, (36, 52, 3), dtype=np.uint8)
    imageio.write_image(photos / "night.jpg", dark, "jpg", 90)
    mlflow_cfg = MlflowConfig(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    summary = stages.enhance.run(ConvertConfig(), InferConfig(tile=32, overlap=8), mlflow_cfg,
                                 None, [str(photos)], tmp_path / "out")  # fmt: skip
    assert summary["enhanced"] == summary["files"] == 2
    assert summary["model"] == (f"RAW: shipped ({card.SHIPPED / 'bayer'}); "
                                f"JPEG/PNG: shipped ({card.SHIPPED / 'rgb'})")  # fmt: skip
    night = imageio.read_image(tmp_path / "out/night_enhanced.png")
    assert night.shape == dark.shape and night.dtype == np.uint8
    raw_out = imageio.read_image(tmp_path / "out" / f"{raw.stem}_enhanced.png")
    assert raw_out.dtype == np.uint16 and raw_out.shape[2] == 3
    assert modes.for_file(raw) == "bayer" and modes.for_file(photos / "night.JPG") == "rgb"
    # one model asked for: every file goes to it, and one it cannot take fails with the reason
    bayer = str(card.SHIPPED / "bayer")
    summary = stages.enhance.run(ConvertConfig(), InferConfig(tile=32, overlap=8), mlflow_cfg,
                                 bayer, [str(photos)], tmp_path / "one")  # fmt: skip
    assert summary["model"] == str(card.SHIPPED / "bayer") and summary["failed"] == 1
    assert "a bayer model enhances RAW files only" in summary["failed_files"][0]
    _, _, used = inference.load_default(None, "lowlight", "cpu", input_mode="rgb")
    assert used == f"shipped ({card.SHIPPED / 'rgb'})"
    with pytest.raises(card.ModelLoadError, match="lowlight ships no xtrans model"):
        card.shipped("xtrans")


def test_train_init_shipped_starts_from_its_weights_and_refuses_another_architecture(shipped):
    from lowlight.train import build_models

    generator, _ = build_models(ModelConfig(**TINY_MODEL), seed=5)
    init_generator(generator, "shipped", "rgb")
    reference, _ = card.load_generator(card.SHIPPED / "rgb")
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(generator.state_dict()[name], value)
    wider, _ = build_models(ModelConfig(**{**TINY_MODEL, "width": 8}), seed=5)
    with pytest.raises(TrainError, match="train.init shipped"):
        init_generator(wider, "shipped", "rgb")
    assert TrainConfig(**TINY_TRAIN, init="shipped").init == "shipped"
    # a models folder (the GAN fine-tune starts from the L1 model), or one line
    fresh, _ = build_models(ModelConfig(**TINY_MODEL), seed=6)
    init_generator(fresh, str(card.SHIPPED / "rgb"), "rgb")
    torch.testing.assert_close(fresh.state_dict(), generator.state_dict())
    with pytest.raises(TrainError, match="train.init nowhere: no generator.pt in nowhere"):
        init_generator(fresh, "nowhere", "rgb")
    assert np.isfinite(shipped["bytes"])


def val_metrics(psnr: float, msssim: float, brisque: float) -> dict:
    return {"model": {"overall": {"psnr": psnr, "ssim": 0.8, "msssim": msssim,
                                  "brisque": brisque}}}  # fmt: skip


@pytest.mark.parametrize(
    "gan, ships, why",
    [
        ((29.8, 0.95, 20.0), True, "both perceptual scores better"),
        ((29.6, 0.95, 20.0), False, "costs 0.40 dB, over 0.3"),
        ((29.9, 0.95, 30.0), False, "does not improve both perceptual scores"),
        ((30.1, 0.93, 20.0), False, "does not improve both perceptual scores"),
    ],
)
def test_the_gan_ships_only_when_validation_favours_it(gan, ships, why):
    l1 = val_metrics(30.0, 0.94, 25.0)
    chosen, reason = shipping.choose(l1, val_metrics(*gan))
    assert chosen is ships and why in reason and "validation, L1 -> GAN: PSNR 30.00" in reason


def test_export_pretrained_ships_the_gan_when_validation_favours_it_and_says_why(
    tiny_models, tmp_path
):
    """The same tiny generator stands for both; the reports decide, and the card says why."""
    folders = {}
    for name, metrics in {
        "reports": METRICS,
        "reports-gan": {"model": {"overall": {"psnr": 29.9, "ssim": 0.91}}},
        "val": val_metrics(30.0, 0.94, 25.0),
        "val-gan": val_metrics(29.8, 0.95, 20.0),
    }.items():
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "pretrained"
    summary = shipping.ship(tiny_models, folders["reports"], Params(), "params.yaml", out=out,
                            versus=(tiny_models, folders["reports-gan"]),
                            validation=(folders["val"], folders["val-gan"]))  # fmt: skip
    assert summary["chosen"].startswith("the GAN fine-tune")
    shipped_card = card.ModelCard.load(out)
    assert shipped_card.provenance["test metrics"]["model"]["psnr"] == 29.9
    assert shipped_card.provenance["the other's test metrics"]["psnr"] == 30.0
    assert "the GAN fine-tune: both perceptual scores better" in (out / "README.md").read_text()
    with pytest.raises(DatasetError, match="--versus needs --validation"):
        shipping.ship(tiny_models, folders["reports"], Params(), "params.yaml", out=out,
                      versus=(tiny_models, folders["reports-gan"]))  # fmt: skip


def test_an_xtrans_card_says_its_noise_is_not_calibrated_and_the_budget_counts_every_model(
    shipped, tiny_models, monkeypatch
):
    """Exporting goes by the card's input mode (xtrans -> pretrained/xtrans/); the X-T2's noise
    is the a7S II's scaled (profiles/FujiXT2.json), and the card and README say so plainly."""
    import dataclasses

    from lowlight.config import SynthConfig

    fuji = shipping.camera_note(SynthConfig(profile="FujiXT2"))
    assert fuji.startswith("Fujifilm X-T2: noise profile FujiXT2 (tukey read noise; NOT CALIBRATED")
    assert "SonyA7S2 profile's fits scaled to the X-T2's levels" in fuji
    sony = shipping.camera_note(SynthConfig())
    assert sony.startswith("Sony ILCE-7SM2: noise profile SonyA7S2 (tukey read noise, calibrated)")
    trained = card.ModelCard.load(tiny_models)
    text = shipping.readme(dataclasses.replace(trained, input=modes.XTRANS_MODE))
    assert text.splitlines()[0] == "# The X-Trans RAW model shipped with lowlight"
    assert "Its noise is NOT calibrated" in text and "Fujifilm X-T2" in text
    # over the package's budget with the models already there: refused, nothing left behind
    out = card.SHIPPED / "other"
    beside = sum(shipping.folder_bytes(card.SHIPPED / m) for m in ("bayer", "rgb"))
    monkeypatch.setattr(shipping, "MAX_BYTES", beside + 1000)
    reports = card.SHIPPED.parent / "reports"
    with pytest.raises(DatasetError, match=r"MiB with the other shipped models, over the"):
        shipping.ship(tiny_models, reports, Params(), "params.yaml", out=out)
    assert not out.exists()
    assert RegisterConfig().by_input() == {
        "bayer": "lowlight", "xtrans": "lowlight-xtrans", "rgb": "lowlight-srgb"}  # fmt: skip
