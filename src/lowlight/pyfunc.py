"""The generator as an MLflow pyfunc model: the input mode's array in (rgb: HxWx3 uint8; bayer:
the packed mosaic as HxWx4 float32 in [0, 1]), the enhanced HxWx3 uint8 image out, any size.

``mlflow.pytorch.log_model`` now exports a fixed-shape graph; a fully convolutional generator
must accept any height and width, so the model is a ``PythonModel`` around the models folder's
weights and card, running the same tiled inference as ``lowlight enhance``. Loading it needs
only the installed ``lowlight`` package.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np

from lowlight import __version__, card
from lowlight.config import InferConfig
from lowlight.inference import enhance, from_unit, load_torch
from lowlight.modes import InputMode
from lowlight.rendering import RenderParams

# a file with no white balance and no colour matrix (pass a file's own as predict params)
DEFAULT_RENDER = RenderParams.neutral()

ARTIFACT = "generator"


class LowlightModel(mlflow.pyfunc.PythonModel):
    """Tiled U-Net inference; tile settings travel with the model (``infer.json``)."""

    def load_context(self, context) -> None:
        folder = Path(context.artifacts[ARTIFACT])
        self.infer = InferConfig(**json.loads((folder / "infer.json").read_text()))
        self.tile_fn, self.card = load_torch(folder, self.infer.device, self.infer.precision)

    def predict(self, context, model_input: np.ndarray, params: dict | None = None) -> np.ndarray:
        mode = self.card.mode
        unit = mode.check_tensor(np.asarray(model_input))
        result = enhance(unit, self.tile_fn, self.infer.tile, self.infer.overlap, self.infer.batch,
                         self.card.multiple)  # fmt: skip
        render = None
        if mode.renders:  # the file's white balance and colour matrix, as predict params
            params = {**DEFAULT_RENDER.to_dict(), **(params or {})}
            matrix = np.reshape(params["rgb_cam"], (3, 3))
            render = RenderParams.from_dict({**params, "rgb_cam": matrix.tolist()})
        return from_unit(mode.finish(result, render), np.uint8)


def signature(mode: InputMode) -> mlflow.models.ModelSignature:
    from mlflow.types import Schema, TensorSpec
    from mlflow.types.schema import ParamSchema, ParamSpec

    out = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, 3))])
    inputs = Schema([TensorSpec(np.dtype(mode.tensor_dtype), (-1, -1, mode.channels))])
    params = None
    if mode.renders:  # lowlight.raw.decode_packed gives a file's RenderParams
        neutral = DEFAULT_RENDER
        matrix = [float(v) for row in neutral.rgb_cam for v in row]
        params = ParamSchema([
            ParamSpec("wb", "float", [float(v) for v in neutral.wb], (-1,)),
            ParamSpec("rgb_cam", "float", matrix, (-1,)),
            ParamSpec("curve", "string", neutral.curve),
        ])  # fmt: skip
    return mlflow.models.ModelSignature(inputs=inputs, outputs=out, params=params)


def log_generator(models_dir: Path, infer: InferConfig, staging: Path) -> mlflow.models.ModelInfo:
    """Log ``models_dir``'s generator as a pyfunc model under the active run."""
    import shutil

    import torch

    folder = staging / ARTIFACT
    shutil.rmtree(folder, ignore_errors=True)
    model_card = card.copy_model(models_dir, folder)
    (folder / "infer.json").write_text(json.dumps(infer.model_dump()))
    mode = model_card.mode
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("pyfunc_entry.py")),  # code, not a pickle
        artifacts={ARTIFACT: str(folder)},
        signature=signature(mode),
        input_example=mode.example(np.random.default_rng(0)),
        pip_requirements=[f"lowlight=={__version__}", f"torch=={torch.__version__.split('+')[0]}"],
    )
