"""The model card: typed, frozen, saved and loaded by the one module that knows the folder."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from lowlight import card
from lowlight.card import ModelCard, ModelLoadError
from lowlight.models import UNetGenerator


def make_card(**changes) -> ModelCard:
    args = {"in_channels": 4, "out_channels": 3, "depth": 2, "width": 4, "scale": 2,
            "residual": False}  # fmt: skip
    return dataclasses.replace(
        ModelCard("UNetGenerator", args, "bayer", 32, "uint8", best_val_psnr=21.5), **changes
    )


def test_round_trip_and_frozen(tmp_path):
    saved = make_card(provenance={"data": "synthetic Sony"}, steps=7)
    saved.save(tmp_path)
    assert ModelCard.load(tmp_path) == saved
    assert ModelCard.load(tmp_path).mode.scale == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        saved.steps = 8


def test_a_card_of_the_flat_layout_before_the_typed_card_still_loads(tmp_path):
    flat = {"architecture": "UNetGenerator", "in_channels": 3, "out_channels": 3, "depth": 3,
            "width": 16, "scale": 1, "residual": False, "input": "rgb", "patch_size": 100,
            "dtype": "uint8", "best_val_psnr": 20.0, "epochs": 2, "steps": 40,
            "mlflow_run_id": "abc"}  # fmt: skip
    (tmp_path / card.CARD).write_text(json.dumps(flat))
    loaded = ModelCard.load(tmp_path)
    assert loaded.arguments["width"] == 16 and loaded.mlflow_run_id == "abc" and loaded.steps == 40


def test_bad_cards_are_one_line_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no generator.json"):
        ModelCard.load(tmp_path)
    (tmp_path / card.CARD).write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        ModelCard.load(tmp_path)
    (tmp_path / card.CARD).write_text(json.dumps({"architecture": "UNetGenerator"}))
    with pytest.raises(ModelLoadError, match="not a lowlight model card"):
        ModelCard.load(tmp_path)
    make_card(input="foveon").save(tmp_path)
    with pytest.raises(Exception, match="unknown input mode"):
        ModelCard.load(tmp_path)
    packed = make_card().arguments
    make_card(arguments={**packed, "unshuffle": 2}).save(tmp_path)
    with pytest.raises(ModelLoadError, match="unshuffle needs scale 1"):
        ModelCard.load(tmp_path)
    rgb = {**packed, "in_channels": 3, "scale": 1}
    make_card(input="rgb", arguments={**rgb, "unshuffle": 2}).save(tmp_path)
    assert ModelCard.load(tmp_path).multiple == 8  # 2**depth x unshuffle
    make_card(arguments={**packed, "skip_upsample": "cubic"}).save(tmp_path)
    with pytest.raises(ModelLoadError, match="skip_upsample must be one of nearest, bilinear"):
        ModelCard.load(tmp_path)


def test_load_generator_and_copy_model(tmp_path):
    generator = UNetGenerator(4, 3, depth=2, width=4, scale=2)
    torch.save(generator.state_dict(), tmp_path / card.WEIGHTS)
    with pytest.raises(ModelLoadError, match="generator.json"):
        card.load_generator(tmp_path)
    make_card().save(tmp_path)
    loaded, model_card = card.load_generator(tmp_path)
    assert not loaded.training and model_card == make_card()
    x = torch.rand(1, 4, 8, 8)
    torch.testing.assert_close(loaded(x), generator.eval()(x))
    copied = card.copy_model(tmp_path, tmp_path / "copy")
    assert copied == model_card
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(card.MODEL_FILES)
