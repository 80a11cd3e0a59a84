"""The X-Trans model shipped with lowlight (issue 26): a fresh clone's `lowlight enhance
some_xtrans.dng` takes it by the file's own colour pattern and says so, the frame comes out at
the long exposure's level and well above plain amplification, its card says the noise is not
calibrated, and it goes through the MLflow registry as its own registered model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lowlight import card, imageio, isp, metrics, raw, synth
from lowlight.config import SynthConfig

from .conftest import registered_shipped

SIZE = (516, 774)  # multiples of 6, over the 512 px a side LibRaw's X-Trans demosaic needs
RATIO = 100.0  # SID's 10 s / 0.1 s


@pytest.fixture(scope="module")
def xt2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One test photo (astronaut: never in any training split) as a synthetic Fujifilm X-T2
    takes it at 0.1 s and at 10 s: {"short": DNG, "long": DNG}."""
    photos = dict(synth.load_photos(None))
    folder = tmp_path_factory.mktemp("xt2")
    plan = synth.ScenePlan("10001", "test", 0, 10.0, 0.1, 1600)
    synth.write_scene(folder, plan, photos["astronaut.png"], SIZE, 1, 0, profile="FujiXT2",
                      capture=SynthConfig(profile="FujiXT2"))  # fmt: skip
    return {kind: next((folder / kind).iterdir()) for kind in ("short", "long")}


def test_the_shipped_xtrans_model_has_its_card_and_fits_the_package(xt2):
    model_card = card.ModelCard.load(card.shipped("xtrans"))
    assert model_card.input == "xtrans" and model_card.arguments["scale"] == 3
    assert model_card.provenance["reproduce"] == "make pretrain-xtrans"
    assert "NOT CALIBRATED" in model_card.provenance["camera"]
    readme = (card.SHIPPED / "xtrans/README.md").read_text()
    assert readme.startswith("# The X-Trans RAW model shipped with lowlight")
    assert "Its noise is NOT calibrated" in readme
    size = sum(p.stat().st_size for p in card.SHIPPED.rglob("*") if p.is_file())  # all models
    assert size <= 8 * 2**20


def test_enhance_takes_the_shipped_xtrans_model_and_beats_amplification(xt2, tmp_path, cli):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "DSCF0001.dng").write_bytes(xt2["short"].read_bytes())
    empty = tmp_path / "params.yaml"
    empty.write_text(f"mlflow:\n  tracking_uri: sqlite:///{tmp_path / 'empty.db'}\n")
    result = cli("enhance", photos, "--out", tmp_path / "out", "--ratio", RATIO, "--params",
                 empty)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"X-Trans RAW: shipped ({card.SHIPPED / 'xtrans'})" in result.output
    out = imageio.read_image(tmp_path / "out/DSCF0001_enhanced.png")
    assert out.dtype == np.uint16 and out.shape == (*SIZE, 3)
    out = out / 65535.0
    # the long exposure and the amplified short one, as convert renders them (LibRaw)
    truth = raw.decode(xt2["long"], 1.0, bits=16)[0] / 65535.0
    amplified = raw.decode(xt2["short"], RATIO, bits=16)[0] / 65535.0
    assert isp.level(out) == pytest.approx(isp.level(truth), rel=0.1)
    assert metrics.psnr(out, truth) > metrics.psnr(amplified, truth) + 3.0
    assert metrics.ssim(out, truth) > metrics.ssim(amplified, truth)


def test_the_registered_xtrans_model_enhances_as_enhance_does(xt2, tmp_path, monkeypatch):
    """The shipped X-Trans model logged as a pyfunc and registered as its own model
    (register.xtrans_model_name), loaded back from the registry by name and alias."""
    import pandas as pd

    from lowlight import inference
    from lowlight.config import ConvertConfig, InferConfig, RegisterConfig

    name, infer = RegisterConfig().xtrans_model_name, InferConfig(tile=96, overlap=24)
    assert RegisterConfig().by_input()["xtrans"] == name == "lowlight-xtrans"
    model = registered_shipped("xtrans", name, infer, tmp_path, monkeypatch)
    rows = model.predict(pd.DataFrame({"image": [xt2["short"].read_bytes()],
                                       "ratio": [str(RATIO)]}))  # fmt: skip
    assert rows["error"][0] == ""
    served = imageio.decode_image(rows["png"][0])

    fn, model_card = inference.load_model(card.SHIPPED / "xtrans", "cpu")
    photo = model_card.mode.load_photo(xt2["short"], RATIO, ConvertConfig())
    direct = inference.enhance(photo.unit, fn, infer.tile, infer.overlap, 1, model_card.multiple)
    direct = model_card.mode.finish(direct, photo.render)
    assert served.shape == (*SIZE, 3)
    assert np.abs(served.astype(int) - np.rint(direct * 65535).astype(int)).max() <= 1
