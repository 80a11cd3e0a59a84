"""The generator as an MLflow pyfunc model that takes what people hold: a file's bytes.

Input: a table with a binary column ``image`` (a RAW file LibRaw reads; JPEG or PNG for an rgb
model) and an optional string column ``ratio`` (a number, or "auto", the default). Output: one
row per input with the enhanced PNG's bytes (``png``: 16-bit for RAW and 16-bit inputs, as
``lowlight enhance`` writes), the gain applied (``gain``) and the row's error (``error``, empty
when it worked): a bad row gets its error and the others go on. Decoding, each file's own white
balance and colour matrix, orientation and tiling are ``inference.enhance_photo``: the same
file and ratio give the same pixels as ``lowlight enhance``.

``mlflow.pytorch.log_model`` now exports a fixed-shape graph; a fully convolutional generator
must accept any height and width, so the model is a ``PythonModel`` around the models folder's
weights and card. Loading it needs only the installed ``lowlight`` package.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from lowlight import __version__, card
from lowlight.config import ConvertConfig, InferConfig, check_gain
from lowlight.inference import enhance_photo, load_torch, png_format

ARTIFACT = "generator"
COLUMNS = ["png", "gain", "error"]


def sniff_suffix(data: bytes) -> str:
    """A suffix for a file's bytes: PNG and JPEG by their magic numbers, anything else is
    handed to LibRaw, which identifies a RAW format by its content."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    return ".dng"


def parse_ratio(value: object, max_ratio: float) -> float | str:
    """A row's ``ratio``: missing or "auto" -> "auto", else a number within the cap."""
    if (
        value is None
        or value == ""
        or value == "auto"
        or (isinstance(value, float) and np.isnan(value))
    ):
        return "auto"
    try:
        ratio = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be a number or 'auto', got {value!r}") from None
    check_gain(ratio, max_ratio, "ratio")
    return ratio


class LowlightModel(mlflow.pyfunc.PythonModel):
    """Tiled U-Net inference; tile and decoding settings travel with the model."""

    def load_context(self, context) -> None:
        folder = Path(context.artifacts[ARTIFACT])
        self.infer = InferConfig(**json.loads((folder / "infer.json").read_text()))
        convert = folder / "convert.json"
        saved = json.loads(convert.read_text()) if convert.exists() else {}
        self.convert = ConvertConfig(**saved)
        self.tile_fn, self.card = load_torch(folder, self.infer.device, self.infer.precision)

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        ratios = frame["ratio"] if "ratio" in frame else [None] * len(frame)
        pairs = enumerate(zip(frame["image"], ratios, strict=True))
        rows = [self.enhance_bytes(i, data, ratio) for i, (data, ratio) in pairs]
        return pd.DataFrame(rows, columns=COLUMNS)

    def enhance_bytes(self, row: int, data: object, ratio: object) -> dict:
        """One row: the enhanced PNG, or its error (whatever went wrong) and no image."""
        from lowlight import imageio

        try:
            if not isinstance(data, bytes | bytearray) or not data:
                raise ValueError("image must be a file's bytes (base64 in JSON), got none")
            gain = parse_ratio(ratio, self.convert.max_ratio)
            with tempfile.TemporaryDirectory(prefix="lowlight-") as tmp:
                path = Path(tmp) / f"image{sniff_suffix(bytes(data))}"
                path.write_bytes(bytes(data))
                image, applied = enhance_photo(path, self.tile_fn, self.card, gain, self.convert,
                                               self.infer)  # fmt: skip
            return {"png": imageio.encode(image, png_format(image)), "gain": float(applied),
                    "error": ""}  # fmt: skip
        except Exception as exc:  # a bad row is reported; the others go on
            message = str(exc).replace(str(tempfile.gettempdir()), "<upload>")
            return {"png": b"", "gain": 0.0, "error": f"row {row}: {type(exc).__name__}: {message}"}


def usage(uri: str) -> str:
    """How to call the registered model, as one line of Python (the demo and register print it)."""
    files = "pandas.DataFrame({'image': [open('photo.ARW', 'rb').read()]})"
    return f"mlflow.pyfunc.load_model('{uri}').predict({files})['png'][0]  # the PNG's bytes"


def signature() -> mlflow.models.ModelSignature:
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec("binary", "image"), ColSpec("string", "ratio", required=False)])
    outputs = Schema([ColSpec("binary", "png"), ColSpec("double", "gain"),
                      ColSpec("string", "error")])  # fmt: skip
    return mlflow.models.ModelSignature(inputs=inputs, outputs=outputs)


def log_generator(
    models_dir: Path, infer: InferConfig, staging: Path, convert: ConvertConfig | None = None
) -> mlflow.models.ModelInfo:
    """Log ``models_dir``'s generator as a pyfunc model under the active run, with an input
    example (a small file of the kind it takes) that MLflow's UI shows."""
    import shutil

    import torch

    folder = staging / ARTIFACT
    shutil.rmtree(folder, ignore_errors=True)
    model_card = card.copy_model(models_dir, folder)
    (folder / "infer.json").write_text(json.dumps(infer.model_dump()))
    (folder / "convert.json").write_text(json.dumps((convert or ConvertConfig()).model_dump()))
    example = model_card.mode.example_file(np.random.default_rng(0), staging)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("pyfunc_entry.py")),  # code, not a pickle
        artifacts={ARTIFACT: str(folder)},
        signature=signature(),
        input_example=pd.DataFrame({"image": [example], "ratio": ["auto"]}),
        pip_requirements=[f"lowlight=={__version__}", f"torch=={torch.__version__.split('+')[0]}"],
    )
