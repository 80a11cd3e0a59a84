"""Load a trained generator (a models folder or an ONNX file) and enhance whole images with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lowlight.errors import LowlightError
from lowlight.tiling import TileFn, blend_tiles, pad_to_multiple


class ModelLoadError(LowlightError):
    """A model location that cannot be loaded."""


def load_torch(models_dir: Path, device: str = "auto") -> tuple[TileFn, dict]:
    """(tile function, architecture config) of ``models_dir/generator.{pt,json}``."""
    import torch

    from lowlight.models import build_generator
    from lowlight.train import pick_device

    models_dir = Path(models_dir)
    config_path, weights = models_dir / "generator.json", models_dir / "generator.pt"
    if not config_path.exists() or not weights.exists():
        raise ModelLoadError(
            f"{models_dir}: needs generator.pt and generator.json (run `lowlight train`)"
        )
    config = json.loads(config_path.read_text())
    generator = build_generator(config)
    generator.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    torch_device = pick_device(device)
    generator.to(torch_device).eval()

    @torch.inference_mode()
    def run(tiles: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(tiles).to(torch_device)
        with torch.autocast(
            torch_device.type, dtype=torch.float16, enabled=torch_device.type == "cuda"
        ):
            out = generator(batch)
        return out.float().cpu().numpy()

    return run, config


def load_onnx(path: Path) -> tuple[TileFn, dict]:
    """(tile function, metadata) of an exported ONNX generator, run with onnxruntime alone."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelLoadError(f"{path}: not a loadable ONNX model ({exc})") from None
    meta = session.get_modelmeta().custom_metadata_map
    multiple = int(meta.get("multiple", "1"))
    name = session.get_inputs()[0].name

    def run(tiles: np.ndarray) -> np.ndarray:
        padded, height, width = pad_to_multiple(tiles, multiple)
        out = session.run(None, {name: padded})[0]
        scale = out.shape[-1] // padded.shape[-1]
        return out[..., : height * scale, : width * scale]

    return run, {key.removeprefix("lowlight."): value for key, value in meta.items()}


def load_model(location: str | Path, device: str = "auto") -> tuple[TileFn, dict]:
    """A models folder, a ``.onnx`` file (or, with the registry, a ``models:/`` URI)."""
    text = str(location)
    if text.startswith("models:/"):
        return load_registered(text)
    path = Path(text)
    if path.suffix == ".onnx":
        if not path.exists():
            raise ModelLoadError(f"{path}: ONNX file not found")
        return load_onnx(path)
    return load_torch(path, device)


def load_registered(uri: str) -> tuple[TileFn, dict]:
    """A registered pyfunc model (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``)."""
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except mlflow.exceptions.MlflowException as exc:
        raise ModelLoadError(
            f"{uri}: {str(exc).splitlines()[0][:200]} (use --model with a models folder, or "
            "`lowlight models list` to see what is registered)"
        ) from None
    return model.tile_fn, model.config


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 HxWx3 -> float32 in [0, 1]."""
    return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)


def from_unit(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    top = np.iinfo(dtype).max
    return (np.clip(image, 0.0, 1.0) * top + 0.5).astype(dtype)


def enhance(
    image: np.ndarray, model: TileFn, tile: int, overlap: int, batch: int = 4
) -> np.ndarray:
    """Enhance a whole image in float [0, 1] (clamped), tile by tile: HxWx3 RGB, or a packed
    Bayer HxWx4 for a bayer model (then the tile and overlap are in packed pixels)."""
    return np.clip(blend_tiles(image, model, tile, overlap, batch), 0.0, 1.0)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their RAW and image files, recursively) and globs -> sorted files."""
    import glob

    from lowlight.raw import RAW_SUFFIXES

    wanted = set(RAW_SUFFIXES) | set(IMAGE_SUFFIXES)
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in wanted
            )
        elif any(c in item for c in "*?["):
            found += sorted(Path(p) for p in glob.glob(item, recursive=True))
        else:
            found.append(path)
    return list(dict.fromkeys(found))
