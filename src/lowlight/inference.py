"""Load a trained generator (a models folder, an ONNX file or a registered model) and enhance
whole images and a photographer's files with it.

The torch path imports the models, the card, tiling and the window grid, nothing of training;
the ONNX path imports no torch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lowlight import modes
from lowlight.card import ModelCard, ModelLoadError
from lowlight.errors import ConfigError, DatasetError, LowlightError
from lowlight.tiling import TileFn, pad_to_multiple, run_tiles

if TYPE_CHECKING:
    from lowlight.config import ConvertConfig, InferConfig

log = logging.getLogger(__name__)


def load_torch(
    models_dir: Path, device: str = "auto", precision: str = "float32"
) -> tuple[TileFn, ModelCard]:
    """(tile function, model card) of a models folder.

    ``precision`` bfloat16: on a CPU with bfloat16 instructions (AVX512-BF16, AMX) the weights
    and activations are bfloat16, 1.6-2.2x faster than float32 at ~0.04 dB (BENCHMARKS.md,
    "inference"); on CUDA, bfloat16 autocast instead of float16's.
    """
    import torch

    from lowlight.card import load_generator
    from lowlight.devices import pick_device

    generator, card = load_generator(models_dir)
    torch_device = pick_device(device)
    generator.to(torch_device)
    cpu_bf16 = precision == "bfloat16" and torch_device.type == "cpu"
    if cpu_bf16:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise ConfigError("infer.precision bfloat16: this CPU has no bfloat16 instructions "
                              "(AVX512-BF16 or AMX); use float32")  # fmt: skip
        generator.to(torch.bfloat16)
    half = torch.bfloat16 if precision == "bfloat16" else torch.float16

    @torch.inference_mode()
    def run(tiles: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(tiles).to(torch_device)
        if cpu_bf16:
            return generator(batch.to(torch.bfloat16)).float().numpy()
        with torch.autocast(torch_device.type, dtype=half, enabled=torch_device.type == "cuda"):
            out = generator(batch)
        return out.float().cpu().numpy()

    return run, card


def load_onnx(path: Path) -> tuple[TileFn, ModelCard]:
    """(tile function, model card) of an exported ONNX generator, run with onnxruntime alone."""
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

    return run, ModelCard.from_dict(json.loads(meta["lowlight.card"]), str(path))


def load_model(
    location: str | Path, device: str = "auto", precision: str = "float32"
) -> tuple[TileFn, ModelCard]:
    """A models folder, a ``.onnx`` file (or, with the registry, a ``models:/`` URI)."""
    text = str(location)
    if text.startswith("models:/"):
        return load_registered(text)
    path = Path(text)
    if path.suffix == ".onnx":
        if not path.exists():
            raise ModelLoadError(f"{path}: ONNX file not found")
        return load_onnx(path)
    return load_torch(path, device, precision)


def load_default(
    location: str | Path | None,
    model_name: str,
    device: str = "auto",
    precision: str = "float32",
    input_mode: str = modes.RAW_MODE,
) -> tuple[TileFn, ModelCard, str]:
    """``location``, or else the registry's champion of ``model_name``, or else the model
    lowlight ships for ``input_mode``; (tile function, card, what was used)."""
    if location:
        return *load_model(location, device, precision), str(location)

    if model_name:  # no registered name for the kind (X-Trans): only a shipped model can fit
        champion = f"models:/{model_name}@champion"
        try:
            model, model_card = load_registered(champion)
            log.info("using the registry's champion %s", champion)
            return model, model_card, champion
        except ModelLoadError as exc:
            log.info("no champion to use (%s); using the model shipped with lowlight", exc)
    return load_shipped(input_mode, device, precision)


def load_shipped(
    input_mode: str = modes.RAW_MODE, device: str = "auto", precision: str = "float32"
) -> tuple[TileFn, ModelCard, str]:
    """The model lowlight ships for ``input_mode``; (tile function, card, what was used)."""
    from lowlight import card

    shipped = card.shipped(input_mode)
    return *load_torch(shipped, device, precision), f"shipped ({shipped})"


def load_registered(uri: str) -> tuple[TileFn, ModelCard]:
    """A registered pyfunc model (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``)."""
    model = registered_model(uri)
    return model.tile_fn, model.card


def registered_model(uri: str):  # -> lowlight.pyfunc.LowlightModel (imports mlflow)
    """The registered model itself: its tile function, card and the settings that travel
    with it (``convert``: how it decodes RAW files)."""
    import mlflow

    try:
        return mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except mlflow.exceptions.MlflowException as exc:
        raise ModelLoadError(
            f"{uri}: {str(exc).splitlines()[0][:200]} (use --model with a models folder, or "
            "`lowlight models list` to see what is registered)"
        ) from None


def from_unit(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    top = np.iinfo(dtype).max
    return (np.clip(image, 0.0, 1.0) * top + 0.5).astype(dtype)


def enhance(
    image: np.ndarray,
    model: TileFn,
    tile: int,
    overlap: int | None,
    batch: int = 4,
    multiple: int = 1,
) -> np.ndarray:
    """Enhance a whole float image tile by tile, the output clamped to [0, 1]: HxWx3 RGB in
    [0, 1], or a packed Bayer HxWx4 for a bayer model, signed (read noise below black kept, as
    in training; the tile and overlap are then in packed pixels).
    ``multiple``: the model card's; tiles start on it (``tiling.run_tiles``)."""
    return np.clip(run_tiles(image, model, tile, overlap, batch, multiple), 0.0, 1.0)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their RAW and image files, recursively) and globs -> sorted files.

    What a folder holds but is not enhanced (a folder named like a RAW file, a broken or looping
    link) is named in a warning; a file given by name goes through, to fail with its reason.
    """
    import glob

    from lowlight import storage
    from lowlight.imageio import IMAGE_SUFFIXES
    from lowlight.raw import RAW_SUFFIXES

    wanted = set(RAW_SUFFIXES) | IMAGE_SUFFIXES
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [path / name for name in storage.list_suffixed(path, wanted)]
        elif any(c in item for c in "*?["):
            found += sorted(Path(p) for p in glob.glob(item, recursive=True))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def output_names(files: list[Path]) -> list[Path]:
    """Where each file's result goes, relative to ``--out``: ``<stem>_enhanced.png``; when two
    inputs would share that name (two cameras' folders with the same numbering), every result
    keeps its folder below the inputs' common folder, and files of one folder that share a stem
    keep their extension in the name (IMG_1_ARW_enhanced.png)."""
    import os
    from collections import Counter

    plain = [Path(f"{p.stem}_enhanced.png") for p in files]
    if len({n.as_posix().casefold() for n in plain}) == len(plain):
        return plain
    folders = [p.absolute().parent for p in files]
    root = Path(os.path.commonpath(folders))
    stems = Counter((folder, p.stem.casefold()) for folder, p in zip(folders, files, strict=True))
    names = []
    for folder, p in zip(folders, files, strict=True):
        stem = p.stem if stems[folder, p.stem.casefold()] == 1 else f"{p.stem}_{p.suffix[1:]}"
        names.append(folder.relative_to(root) / f"{stem}_enhanced.png")
    return names


def enhance_photo(
    path: Path,
    model: TileFn,
    card: ModelCard,
    ratio: float | str,
    convert_cfg: ConvertConfig,
    infer: InferConfig,
) -> tuple[np.ndarray, float]:
    """``path`` enhanced as a user sees it (upright, uint16 for RAW and 16-bit inputs) and the
    gain applied: one code path for ``enhance`` and the registered model."""
    from lowlight import raw

    photo = card.mode.load_photo(path, ratio, convert_cfg)
    result = enhance(photo.unit, model, infer.tile, infer.overlap, infer.batch, card.multiple)
    result = card.mode.finish(result, photo.render)
    result = np.ascontiguousarray(raw.upright(result, photo.flip))  # as postprocess turns it
    return from_unit(result, photo.dtype), photo.gain


def png_format(image: np.ndarray) -> str:
    return "png16" if image.dtype == np.uint16 else "png"


def enhance_files(
    files: list[Path],
    model: TileFn,
    card: ModelCard,
    out: Path,
    ratio: float | str,
    convert_cfg: ConvertConfig,
    infer: InferConfig,
    names: list[Path] | None = None,
) -> tuple[list[str], list[str]]:
    """Enhance each file into ``out/<stem>_enhanced.png`` (16-bit for RAW and 16-bit inputs;
    ``names``, default ``output_names``, when names would collide); (written files, errors): a
    bad file is reported, whatever went wrong, and the others go on."""
    from tqdm import tqdm

    from lowlight import imageio

    done, failed = [], []
    names = names or output_names(files)
    for path, name in tqdm(list(zip(files, names, strict=True)), desc="enhance", unit="file"):
        try:
            if not path.is_file():
                what = "a folder, not a file" if path.is_dir() else "not found"
                raise DatasetError(f"{path}: {what}")
            image, _ = enhance_photo(path, model, card, ratio, convert_cfg, infer)
            target = out / name
            imageio.write_image(target, image, png_format(image))
            done.append(str(target))
        except LowlightError as exc:
            log.warning("%s", exc)
            failed.append(str(exc))
        except Exception as exc:  # any other failure is this file's too: the batch goes on
            message = f"{path}: {type(exc).__name__}: {exc}"
            log.warning("%s", message)
            failed.append(message)
    return done, failed
