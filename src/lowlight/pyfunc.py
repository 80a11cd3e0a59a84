"""The generator as an MLflow pyfunc model: HxWx3 uint8 in, enhanced HxWx3 uint8 out, any size
(a bayer model: the packed mosaic as HxWx4 float32 in [0, 1] in, 2Hx2Wx3 uint8 out).

``mlflow.pytorch.log_model`` now exports a fixed-shape graph; a fully convolutional generator
must accept any height and width, so the model is a ``PythonModel`` around the state dict and
architecture config, running the same tiled inference as ``lowlight enhance``. Loading it needs
only the installed ``lowlight`` package.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np

from lowlight import __version__
from lowlight.config import InferConfig
from lowlight.inference import enhance, from_unit, load_torch, to_unit

ARTIFACT = "generator"


class LowlightModel(mlflow.pyfunc.PythonModel):
    """Tiled U-Net inference; tile settings travel with the model (``infer.json``)."""

    def load_context(self, context) -> None:
        folder = Path(context.artifacts[ARTIFACT])
        self.infer = InferConfig(**json.loads((folder / "infer.json").read_text()))
        self.tile_fn, self.config = load_torch(folder, self.infer.device)

    def predict(self, context, model_input: np.ndarray, params: dict | None = None) -> np.ndarray:
        image = np.asarray(model_input)
        if self.config.get("input") == "bayer":
            if image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.float32:
                raise ValueError(f"expected a packed Bayer HxWx4 float32 array (lowlight.raw."
                                 f"decode_packed), got {image.dtype} {image.shape}")  # fmt: skip
            unit = image
        elif image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
        else:
            unit = to_unit(image)
        result = enhance(unit, self.tile_fn, self.infer.tile, self.infer.overlap, self.infer.batch)
        return from_unit(result, np.uint8)


def signature(bayer: bool = False) -> mlflow.models.ModelSignature:
    from mlflow.types import Schema, TensorSpec

    out = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, 3))])
    if not bayer:
        return mlflow.models.ModelSignature(inputs=out, outputs=out)
    packed = Schema([TensorSpec(np.dtype(np.float32), (-1, -1, 4))])
    return mlflow.models.ModelSignature(inputs=packed, outputs=out)


def log_generator(models_dir: Path, infer: InferConfig, staging: Path) -> mlflow.models.ModelInfo:
    """Log ``models_dir``'s generator as a pyfunc model under the active run."""
    import shutil

    import torch

    folder = staging / ARTIFACT
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in ("generator.pt", "generator.json"):
        shutil.copy2(Path(models_dir) / name, folder / name)
    (folder / "infer.json").write_text(json.dumps(infer.model_dump()))
    bayer = json.loads((folder / "generator.json").read_text()).get("input") == "bayer"
    rng = np.random.default_rng(0)
    if bayer:
        example = rng.random((19, 27, 4), dtype=np.float32)
    else:
        example = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("pyfunc_entry.py")),  # code, not a pickle
        artifacts={ARTIFACT: str(folder)},
        signature=signature(bayer),
        input_example=example,
        pip_requirements=[f"lowlight=={__version__}", f"torch=={torch.__version__.split('+')[0]}"],
    )
