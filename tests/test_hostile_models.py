"""Hostile or broken models folders and export targets (issue 27, items 4, 8 and 9): each is
refused in one line naming the file, before anything big is built or anything half written.

Real files throughout; the read-only target is a real read-only bind mount (root only)."""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lowlight import card
from lowlight.card import ModelLoadError
from tests.conftest import mounted, one_line_error


@pytest.fixture
def models(tiny_models: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny trained models folder, to spoil."""
    folder = tmp_path / "models"
    shutil.copytree(tiny_models, folder)
    return folder


def edit_card(folder: Path, **arguments) -> None:
    path = folder / card.CARD
    data = json.loads(path.read_text())
    data["arguments"].update(arguments)
    path.write_text(json.dumps(data))


def _cap_memory() -> None:
    """The child's address space: 4 GiB (the CLI with torch needs ~1.5); the old code's 24 GB
    network fails here fast instead of bringing the machine down."""
    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))


def test_card_asking_for_a_huge_network_is_refused_before_building(models, tmp_path):
    """Width 256, depth 6 (each inside the card's limits) beside tiny weights: 7.4 billion
    parameters; enhance refuses from the card alone, in a process capped at 4 GiB."""
    edit_card(models, width=256, depth=6)
    photo = tmp_path / "dark.png"
    from lowlight import imageio

    imageio.write_image(photo, np.full((32, 48, 3), 20, np.uint8), "png")
    cli = Path(sys.executable).with_name("lowlight")
    result = subprocess.run(
        [str(cli), "enhance", str(photo), "--model", str(models), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, preexec_fn=_cap_memory, cwd=tmp_path,
        env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "Traceback" not in text and "MemoryError" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    assert str(models / card.CARD) in errors[0] and "parameters" in errors[0], errors[0]


def test_parameter_bound_is_far_above_real_models():
    """The bound is computed on the meta device, and SID's own U-Net (depth 4, width 32) and
    the shipped model pass it with room to spare."""
    shipped = card.ModelCard.load(card.shipped("bayer"))
    for arguments in (shipped.arguments, {"in_channels": 4, "depth": 4, "width": 32, "scale": 2}):
        assert 10 * card.parameter_count(arguments) < card.MAX_PARAMETERS
    assert card.parameter_count({"depth": 6, "width": 256}) > card.MAX_PARAMETERS


def test_weights_of_another_architecture_name_the_first_differing_tensor(models, cli, tmp_path):
    edit_card(models, width=8)
    line = one_line_error(
        cli("export", "onnx", models, tmp_path / "m.onnx"), str(models / card.WEIGHTS),
        "encoders.0.0.weight", "[4, 3, 3, 3]", "[8, 3, 3, 3]",
    )  # fmt: skip
    assert len(line) < 300
    assert not (tmp_path / "m.onnx").exists()


def test_weights_with_a_missing_or_extra_tensor_are_refused(models):
    state = torch.load(models / card.WEIGHTS, weights_only=True)
    first = next(iter(state))
    torch.save({k: v for k, v in state.items() if k != first}, models / card.WEIGHTS)
    with pytest.raises(ModelLoadError, match=f"no tensor {first}"):
        card.load_generator(models)
    torch.save({**state, "extra.weight": torch.zeros(2)}, models / card.WEIGHTS)
    with pytest.raises(ModelLoadError, match="unexpected tensor 'extra.weight'"):
        card.load_generator(models)
    torch.save([1, 2], models / card.WEIGHTS)
    with pytest.raises(ModelLoadError, match="a list, not a state dict"):
        card.load_generator(models)


@pytest.mark.parametrize("content", ["[1, 2, 3]", '"a string"', "42", "null"])
def test_a_card_that_is_not_a_json_object_is_one_line(models, cli, tmp_path, content):
    (models / card.CARD).write_text(content)
    one_line_error(cli("export", "onnx", models, tmp_path / "m.onnx"), str(models / card.CARD),
                   "not a lowlight model card")  # fmt: skip


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_malicious_checkpoint_is_refused_plainly(models, cli, tmp_path):
    """A pickle that would run code: the message says why it is refused and never suggests
    turning weights_only off (torch's own message, cut, read as that advice)."""
    torch.save({"x": _Evil()}, models / card.WEIGHTS)
    line = one_line_error(cli("export", "onnx", models, tmp_path / "m.onnx"),
                          str(models / card.WEIGHTS), "refused", "not a plain weights file",
                          "could run code")  # fmt: skip
    assert "weights_only" not in line and "False" not in line
    assert not (tmp_path / "pwned").exists()
    with open(models / card.WEIGHTS, "wb") as f:  # a bare pickle, not torch's zip
        pickle.dump(_Evil(), f)
    line = one_line_error(cli("export", "onnx", models, tmp_path / "m.onnx"),
                          str(models / card.WEIGHTS))  # fmt: skip
    assert "weights_only" not in line and "False" not in line


def test_a_malicious_training_checkpoint_is_refused_plainly(tmp_path):
    from lowlight.train import TrainError, read_checkpoint

    path = tmp_path / "last.pt"
    torch.save({"config_hash": _Evil()}, path)
    with pytest.raises(TrainError, match="not a plain weights file") as caught:
        read_checkpoint(path, "key")
    assert "weights_only" not in str(caught.value)


def test_export_onto_a_directory_is_one_line(models, cli, tmp_path):
    target = tmp_path / "out.onnx"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    one_line_error(cli("export", "onnx", models, target), str(target), "is a directory")
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "out.onnx"]


def test_export_into_a_read_only_folder_is_one_line(models, cli, tmp_path):
    with mounted(tmp_path / "ro", "--bind", "-o", "ro", str(tmp_path / "ro")) as folder:
        one_line_error(cli("export", "onnx", models, folder / "m.onnx"),
                       str(folder / "m.onnx"), "cannot write", "Read-only file system")  # fmt: skip
        assert list(folder.iterdir()) == []
