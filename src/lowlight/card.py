"""The trained models folder and its model card: the one module that knows their files.

A models folder holds ``generator.pt`` (the state dict), ``generator.json`` (the card) and
``discriminator.pt``. Training writes it, and the PyTorchJob path, register, inference, ONNX
export and the pyfunc model read it through here. Loading needs torch only for the weights.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lowlight import __version__, modes
from lowlight.errors import LowlightError

if TYPE_CHECKING:
    import torch

    from lowlight.models import UNetGenerator

CARD = "generator.json"
WEIGHTS = "generator.pt"
DISCRIMINATOR = "discriminator.pt"
# The model that ships with the package (`make pretrain` makes it): weights, card, README.md.
SHIPPED = Path(__file__).with_name("pretrained")
# what a deployed model needs (the discriminator only resumes adversarial training)
MODEL_FILES = (WEIGHTS, CARD)
KNOWN = (WEIGHTS, CARD, DISCRIMINATOR)  # a models folder's files (before output markers)


class ModelLoadError(LowlightError):
    """A models folder or model file that cannot be loaded."""


@dataclass(frozen=True)
class ModelCard:
    """What a trained generator is, how it was made, and how well it did."""

    architecture: str  # class in lowlight.models
    arguments: dict[str, Any]  # its constructor's arguments
    input: str  # model.input, a name in lowlight.modes
    patch_size: int
    dtype: str  # pixel type of the patches it was trained on
    mlflow_run_id: str = ""
    pairs_sha256: str = ""  # the pairs file the patches were cut from
    best_val_psnr: float | None = None
    epochs: int = 0
    steps: int = 0
    lowlight_version: str = __version__
    provenance: dict[str, Any] = field(default_factory=dict)  # e.g. the training data's story

    @property
    def mode(self) -> modes.InputMode:
        return modes.get(self.input)

    @property
    def multiple(self) -> int:
        """What the network's input size steps by (``2**depth`` for the U-Net, times its
        ``unshuffle``): where tiles start so that their pooling grids are the whole image's."""
        args = self.arguments
        return 2 ** int(args.get("depth", 0)) * int(args.get("unshuffle", 1))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = CARD) -> ModelCard:
        if not isinstance(data, dict):
            kind = "null" if data is None else type(data).__name__
            raise ModelLoadError(f"{source}: not a lowlight model card (a JSON {kind}, "
                                 "not an object)")  # fmt: skip
        if "arguments" not in data:  # a card from before lowlight 0.1's typed card: one flat dict
            args = ("in_channels", "out_channels", "depth", "width", "scale", "residual")
            data = {**{k: v for k, v in data.items() if k not in args},
                    "arguments": {k: data[k] for k in args if k in data}}  # fmt: skip
            data.setdefault("lowlight_version", "")
        known = {f.name for f in fields(cls)}
        try:
            card = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ModelLoadError(f"{source}: not a lowlight model card ({exc})") from None
        problem = card_problem(card)
        if problem:
            raise ModelLoadError(f"{source}: invalid model card: {problem}")
        return card

    def save(self, folder: Path) -> Path:
        from lowlight import storage  # (pyarrow's file systems: not for loading)

        path = Path(folder) / CARD
        with storage.atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def describe(self) -> str:
        """The card as Markdown: the registered version's description, the shipped README."""
        psnr = "n/a" if self.best_val_psnr is None else f"{self.best_val_psnr:.2f} dB"
        lines = [f"# {self.architecture} ({self.input} input)", ""]
        lines += [f"- {key}: {value}" for key, value in (
            ("arguments", json.dumps(self.arguments)),
            ("patches", f"{self.patch_size}x{self.patch_size} {self.dtype}"),
            ("training", f"{self.epochs} epochs, {self.steps} steps, best validation PSNR {psnr}"),
            ("MLflow run", self.mlflow_run_id or "none"),
            ("pairs sha256", self.pairs_sha256 or "unknown"),
            ("lowlight", self.lowlight_version),
        )]  # fmt: skip
        for key, value in self.provenance.items():
            text = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"- {key}: {text}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, folder: Path) -> ModelCard:
        path = Path(folder) / CARD
        if not path.exists():
            raise ModelLoadError(f"{folder}: no {CARD} model card (run `lowlight train`)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{path}: not valid JSON ({exc})") from None
        except OSError as exc:  # a folder of that name, no permission
            raise ModelLoadError(f"{path}: cannot read: {exc.strerror or exc}") from None
        return cls.from_dict(data, str(path))


# What a card may ask the generator to be: the limits keep a bad or hostile card from
# allocating without bound (width 100000 asked for ~360 GB). (low, high) per integer argument.
ARGUMENT_LIMITS = {"in_channels": (1, 16), "out_channels": (1, 16), "depth": (1, 6),
                   "width": (4, 256), "scale": (1, 4), "unshuffle": (1, 4)}  # fmt: skip
ARCHITECTURES = ("UNetGenerator",)
# The most parameters a card may ask for, whatever its arguments: each argument within its limits
# can still ask for billions together (width 256 x depth 6: 7.4e9, ~30 GB to build). 150 million
# (600 MB of float32) is 20x SID's U-Net (depth 4 x width 32: 7.2e6) and 600x the shipped model.
MAX_PARAMETERS = 150_000_000


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def card_problem(card: ModelCard) -> str:
    """Why ``card`` cannot describe a lowlight generator, or "" when it can."""
    if card.architecture not in ARCHITECTURES:
        return f"architecture {card.architecture!r} (known: {', '.join(ARCHITECTURES)})"
    if not isinstance(card.input, str) or card.input not in modes.MODES:
        return f"unknown input mode {card.input!r} (known: {', '.join(modes.MODES)})"
    if not _integer(card.patch_size) or card.patch_size < 1 or not isinstance(card.dtype, str):
        return f"patch_size {card.patch_size!r} / dtype {card.dtype!r}"
    if not isinstance(card.arguments, dict):
        return f"arguments must be an object, got {type(card.arguments).__name__}"
    unknown = set(card.arguments) - {*ARGUMENT_LIMITS, "residual", "skip", "skip_upsample"}
    if unknown:
        return f"unknown arguments {sorted(unknown)}"
    for name, (low, high) in ARGUMENT_LIMITS.items():
        value = card.arguments.get(name)
        if value is not None and (not _integer(value) or not low <= value <= high):
            return f"arguments.{name} must be an integer in [{low}, {high}], got {value!r}"
    if card.arguments.get("unshuffle", 1) > 1 and card.arguments.get("scale", 1) > 1:
        return "arguments.unshuffle needs scale 1: a packed mosaic is packed already"
    if not isinstance(card.arguments.get("residual", False), bool):
        return f"arguments.residual must be true or false, got {card.arguments['residual']!r}"
    skip = card.arguments.get("skip")
    if skip is not None:
        rows = card.arguments.get("out_channels", 3)
        cols = card.arguments.get("in_channels", 3)
        numbers = isinstance(skip, list) and all(
            isinstance(r, list) and len(r) == cols
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
            for r in skip
        )  # fmt: skip
        if not numbers or len(skip) != rows:
            return f"arguments.skip must be {rows} rows of {cols} numbers"
    upsample = card.arguments.get("skip_upsample", "nearest")
    if upsample not in modes.SKIP_UPSAMPLING:
        known = ", ".join(modes.SKIP_UPSAMPLING)
        return f"arguments.skip_upsample must be one of {known}, got {upsample!r}"
    return ""


def weights(folder: Path) -> Path:
    """The generator's state dict in ``folder``, checked present."""
    path = Path(folder) / WEIGHTS
    if not path.exists():
        raise ModelLoadError(f"{folder}: needs {WEIGHTS} and {CARD} (run `lowlight train`)")
    return path


def _meta_generator(arguments: dict[str, Any]) -> torch.nn.Module:
    """The generator ``arguments`` describe, built on torch's meta device: shapes, no memory."""
    import torch

    from lowlight.models import build_generator

    with torch.device("meta"):
        return build_generator(arguments)


def parameter_count(arguments: dict[str, Any]) -> int:
    """How many parameters the generator of a card's ``arguments`` has (nothing allocated)."""
    return sum(p.numel() for p in _meta_generator(arguments).parameters())


def load_weights(
    path: Path, device: Any = "cpu", unreadable: str = "not a readable torch file"
) -> Any:
    """What a torch file holds, loaded as plain tensors only (``weights_only``) and mapped from
    the file rather than read into memory; ModelLoadError in one line when it cannot be
    (``unreadable`` says what the file should have been)."""
    import torch

    if not zipfile.is_zipfile(path):  # torch.save's format since torch 1.6 (what lowlight writes)
        raise ModelLoadError(f"{path}: {unreadable} (not torch.save's zip format)")
    try:
        return torch.load(path, map_location=device, weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        # torch's own message goes on to suggest weights_only=False: never pass that on
        if "Weights only load failed" not in str(exc):
            raise ModelLoadError(f"{path}: {unreadable} (UnpicklingError)") from None
        named = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" (it names {named.group(1)})" if named else ""
        raise ModelLoadError(
            f"{path}: refused: not a plain weights file; it holds Python objects that could run "
            f"code when loaded{what}. Use weights written by lowlight from a source you trust"
        ) from None
    except Exception as exc:  # a truncated or foreign file: zip or torch errors
        raise ModelLoadError(f"{path}: {unreadable} "
                             f"({type(exc).__name__}: {str(exc)[:160]})") from None  # fmt: skip


def _mismatch(state: Any, expected: dict[str, Any]) -> str:
    """The first way ``state`` differs from the state dict ``expected`` (a meta model's), or ""."""
    import torch

    if not isinstance(state, dict):
        return f"a {type(state).__name__}, not a state dict"
    for key, tensor in expected.items():
        found = state.get(key)
        if not isinstance(found, torch.Tensor):
            return f"no tensor {key}"
        if found.shape != tensor.shape:
            return f"{key} is {list(found.shape)}, {CARD} asks for {list(tensor.shape)}"
        if not found.is_floating_point():
            return f"{key} holds {found.dtype}, not floating point numbers"
    extra = [key for key in state if key not in expected]
    return f"unexpected tensor {str(extra[0])[:80]!r}" if extra else ""


def load_state(folder: Path) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """A models folder's generator state dict and card, checked against each other before any
    network is built: the card's parameter count is bounded (``MAX_PARAMETERS``) and every
    tensor's name and shape must be the card's. Every loader of a models folder (inference,
    evaluate, export, the pyfunc model, register, shipping) comes through here."""
    card = ModelCard.load(folder)
    path = weights(folder)
    meta = _meta_generator(card.arguments)
    count = sum(p.numel() for p in meta.parameters())
    if count > MAX_PARAMETERS:
        raise ModelLoadError(f"{Path(folder) / CARD}: asks for a generator of {count:,} "
                             f"parameters, over the {MAX_PARAMETERS:,} lowlight loads")  # fmt: skip
    state = load_weights(path, unreadable="not a readable generator state dict")
    problem = _mismatch(state, meta.state_dict())
    if problem:
        raise ModelLoadError(f"{path}: weights do not match {CARD}'s architecture ({problem})")
    return state, card


def load_generator(folder: Path) -> tuple[UNetGenerator, ModelCard]:
    """The generator (on the CPU, in eval mode) and its card, checked first (``load_state``)."""
    from lowlight.models import build_generator

    state, card = load_state(folder)
    generator = build_generator(card.arguments)
    try:
        generator.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        raise ModelLoadError(
            f"{Path(folder) / WEIGHTS}: weights do not match {CARD}'s architecture "
            f"({first[1].strip() if len(first) > 1 else first[0]})"
        ) from None
    return generator.eval(), card


def publish(
    folder: Path, card: ModelCard, generator_weights: Path, discriminator: dict[str, torch.Tensor]
) -> None:
    """Write a whole models folder; it replaces ``folder`` only once complete."""
    import torch

    from lowlight import storage

    with storage.staged_dir(folder, known=KNOWN, stage="train") as staging:
        shutil.copy2(generator_weights, staging / WEIGHTS)
        card.save(staging)
        torch.save(discriminator, staging / DISCRIMINATOR)


def copy_model(folder: Path, dest: Path) -> ModelCard:
    """Copy what a deployed model needs (weights and card) into ``dest``, checked loadable; its
    card."""
    _, card = load_state(folder)
    dest.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copy2(Path(folder) / name, dest / name)
    return card


def shipped(input_mode: str = modes.RAW_MODE) -> Path:
    """The folder of the model shipped for ``input_mode`` (one per kind of input:
    ``pretrained/bayer`` for RAW files, ``pretrained/rgb`` for JPEG/PNG), checked complete."""
    folder = SHIPPED / input_mode
    if not (folder / CARD).exists():
        known = sorted(p.name for p in SHIPPED.iterdir() if (p / CARD).exists())
        raise ModelLoadError(f"{folder}: lowlight ships no {input_mode} model (it ships: "
                             f"{', '.join(known) or 'none'})")  # fmt: skip
    ModelCard.load(folder)
    weights(folder)
    return folder
