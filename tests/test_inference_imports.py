"""Inference imports the models, the card, tiling and the window grid, nothing of training or
Parquet; the ONNX path imports no torch. Checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lowlight.card import ModelCard
from lowlight.models import UNetGenerator

TRAINING = ("lowlight.train", "lowlight.dataset", "lowlight.patches", "pyarrow")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    generator = UNetGenerator(3, 3, depth=2, width=4)
    torch.save(generator.state_dict(), folder / "generator.pt")
    ModelCard("UNetGenerator", generator.config, "rgb", 16, "uint8").save(folder)
    return folder


def imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_torch_inference_imports_no_training_or_parquet_code(models_dir):
    modules = imported_after(
        "import numpy as np\n"
        "from lowlight import inference\n"
        f"fn, card = inference.load_model({str(models_dir)!r}, 'cpu')\n"
        "out = inference.enhance(np.zeros((40, 56, 3), np.float32), fn, 32, 8)\n"
        "assert out.shape == (40, 56, 3) and card.input == 'rgb'\n"
    )
    assert "torch" in modules and "lowlight.models" in modules
    assert [m for m in TRAINING if m in modules] == []


def test_onnx_inference_imports_no_torch(models_dir, tmp_path):
    from lowlight.export import export_onnx

    export_onnx(models_dir, tmp_path / "g.onnx")
    modules = imported_after(
        "import numpy as np\n"
        "from lowlight import inference\n"
        f"fn, card = inference.load_model({str(tmp_path / 'g.onnx')!r})\n"
        "out = inference.enhance(np.zeros((40, 56, 3), np.float32), fn, 32, 8)\n"
        "assert out.shape == (40, 56, 3) and card.arguments['depth'] == 2\n"
    )
    assert "onnxruntime" in modules
    assert [m for m in ("torch", *TRAINING) if m in modules] == []
