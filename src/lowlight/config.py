"""params.yaml, validated: one pydantic section per stage, mirroring the file key by key.

Unknown or mistyped keys are errors that name the key and the file, so a typo never silently
falls back to a default; so is a key given twice. Command-line flags override values with the
same names. The file is read as a YAML node graph first, so an alias bomb is refused before it
is built.
"""

from __future__ import annotations

import math
import reprlib
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lowlight import modes
from lowlight.errors import ConfigError, scrub
from lowlight.sid import MAX_RATIO

DEFAULT_PARAMS = Path("params.yaml")
# Values that aliases (*name) may add to a file once expanded: far more than any params file
# uses, far fewer than a "billion laughs" asks for (9**9 values from 300 bytes).
ALIAS_BUDGET = 10_000
# Characters of a value, key or message shown in an error line: enough to recognise it.
SHOWN = 80
MESSAGE = 500
# Characters scrubbed beyond those shown: scrub's regex slows down on a huge string (100 kB: 13 s)
# and a URL's user:password, which may straddle the cut, is shorter.
SCRUB_SPARE = 1024


class _ShortRepr(reprlib.Repr):
    """repr that stops early (the offending input may be huge, and a full repr of it as large),
    scrubbing credentials from each string before it is cut (a cut URL would hide them from
    `scrub`)."""

    def __init__(self) -> None:
        super().__init__()  # 6 items of a list or mapping
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = 3 * SHOWN  # its head: > SHOWN

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(scrub(x[: SHOWN + SCRUB_SPARE]), level)


_REPR = _ShortRepr()


def shown(text: str, limit: int = SHOWN) -> str:
    """``text`` for an error line: credentials scrubbed, and cut to its first ``limit``
    characters and "..." (the line stays short)."""
    head = scrub(text[: limit + SCRUB_SPARE])
    if len(head) <= limit and len(text) <= limit + SCRUB_SPARE:
        return head
    return head[:limit] + "..."


def number(value: float) -> str:
    """A float as the user wrote it: 300.0001 stays 300.0001 (not :g's 300), 300.0 is 300."""
    return repr(float(value)).removesuffix(".0")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def parse_size(value: Any) -> tuple[int, int]:
    """``"240x360"`` or ``[240, 360]`` -> (height, width)."""
    if isinstance(value, str):
        parts = value.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"size must be HxW like 240x360, got {value!r}")
        value = [int(p) for p in parts]
    height, width = (int(v) for v in value)
    if height < 16 or width < 16 or height % 2 or width % 2:
        raise ValueError(f"size must be even and at least 16x16 (a Bayer mosaic), got {value}")
    return height, width


S = TypeVar("S", bound=Section)


class DataConfig(Section):
    """Where the RAW data is: the synthetic set by default, or a downloaded SID Sony folder."""

    raw_dir: str = "data/synthetic/Sony"


class SynthConfig(Section):
    scenes: int = Field(12, ge=3, description="scenes in all; every split gets at least one")
    size: tuple[int, int] = Field((256, 384), description="height x width of each frame")
    frames: int = Field(2, ge=1, description="short frames per scene, each its own noise draw")
    photos: str | None = Field(None, description="folder of the user's photos; None = bundled")
    procedural: float = Field(
        0.25, ge=0, le=1, description="fraction of the training scenes that are dead-leaves "
        "images (val and test are always held-out photos)",
    )  # fmt: skip
    profile: str = Field(
        "SonyA7S2", description="the camera: src/lowlight/profiles/<name>.json (SonyA7S2 "
        "writes SID's Sony/, FujiXT2 SID's Fuji/ with X-Trans DNGs)",
    )  # fmt: skip
    read_noise: Literal["tukey", "gaussian"] = Field(
        "tukey", description="read noise of the profile: ELD's Tukey-lambda or its Gaussian fit"
    )
    # How scenes reach the sensor (lowlight.synth.write_scene; the physics in lowlight.optics).
    scale: tuple[float, float] = Field(
        (1.5, 4.0), description="sensor pixels per photo pixel, drawn log-uniformly per scene"
    )
    fnumber: tuple[float, float] = Field((2.8, 11.0), description="f-stops drawn within")
    defocus: tuple[float, float] = Field(
        (0.0, 1.5), description="lens blur-disk radius in pixels, drawn uniformly"
    )
    shake: float = Field(0.0, ge=0, description="longest camera-shake motion in pixels; 0 = none")
    cct: tuple[float, float] = Field(
        (2500.0, 7500.0), description="blackbody lights in kelvin, drawn uniformly in mired"
    )
    sodium: float = Field(0.2, ge=0, le=1, description="share of scenes under sodium lamps")
    # What the camera writes (lowlight.synth): raw DNGs, or JPEGs as its processing makes them.
    output: Literal["dng", "jpeg"] = Field(
        "dng", description="dng: raw frames | jpeg: dark JPEGs, 16-bit PNG targets (lowlight.isp)"
    )
    darkness: list[float] = Field(
        [4.0, 8.0, 16.0, 32.0, 64.0],
        description="jpeg: dark frames at 1/darkness of the long exposure, cycled per split",
    )
    jpeg_quality: tuple[int, int] = Field((70, 95), description="jpeg: qualities drawn within")
    metering: float = Field(
        0.18, gt=0, lt=1,
        description="jpeg: every long exposure's mean linear level, as a camera's average "
        "metering exposes it (convert.auto_target brings a dark JPEG to it)",
    )  # fmt: skip

    @field_validator("darkness")
    @classmethod
    def _darkness(cls, value: list[float]) -> list[float]:
        if not value or not all(1.0 < v <= MAX_RATIO for v in value):
            raise ValueError(f"need one or more values in (1, {MAX_RATIO:g}], got {value}")
        return value

    @field_validator("jpeg_quality")
    @classmethod
    def _quality(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1] <= 100:
            raise ValueError(f"need 1 <= low <= high <= 100, got {value}")
        return value

    @field_validator("scale", "fnumber", "defocus", "cct")
    @classmethod
    def _range(cls, value: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
        low, high = value
        bounds = {"scale": (0.5, 16.0), "fnumber": (1.0, 32.0), "defocus": (0.0, 10.0),
                  "cct": (1667.0, 25000.0)}[info.field_name]  # fmt: skip
        if not bounds[0] <= low <= high <= bounds[1]:
            raise ValueError(f"need {bounds[0]:g} <= low <= high <= {bounds[1]:g}, got {value}")
        return value

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> tuple[int, int]:
        return parse_size(value)

    @model_validator(mode="after")
    def _jpeg_needs_bayer(self) -> SynthConfig:
        from lowlight import noise

        if self.output == "jpeg" and len(noise.load_profile(self.profile).cfa) != 4:
            raise ValueError(f"output jpeg renders through a 2x2 Bayer demosaic (lowlight.isp); "
                             f"profile {self.profile} is X-Trans: use output dng")  # fmt: skip
        return self

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        from lowlight import noise

        try:
            noise.load_profile(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value


def check_gain(value: float | str | None, max_ratio: float, what: str) -> float | str | None:
    """A gain a user asked for: None, "auto", or a finite number in (0, ``max_ratio``].

    SID caps its ratios at 300 (``convert.max_ratio``); a larger explicit gain is refused, not
    silently capped, so that what was asked is what is written.
    """
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        raise ConfigError(f"{what} must be a number or 'auto', got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a finite gain above 0, got {number(value)}")
    if value > max_ratio:
        raise ConfigError(f"{what} {number(value)} is above convert.max_ratio "
                          f"{number(max_ratio)} (SID's cap); raise convert.max_ratio to "
                          "allow it")  # fmt: skip
    return value


class ConvertConfig(Section):
    format: Literal["jpeg", "png16"] = "jpeg"
    quality: int = Field(95, ge=1, le=100, description="JPEG quality")
    half_size: bool = False
    amplify: bool = True
    # Gain for files outside SID's layout: a number, "auto" (target brightness) or None (1).
    ratio: float | Literal["auto"] | None = None
    max_ratio: float = Field(MAX_RATIO, gt=0)
    auto_target: float = Field(0.18, gt=0, lt=1, description="mean linear level for 'auto'")
    workers: int = Field(1, ge=1)
    curve: Literal["bt709", "srgb"] = Field(
        "bt709", description="tone curve: bt709 (LibRaw's default, as SID rendered) or srgb"
    )

    @model_validator(mode="after")
    def _gain(self) -> ConvertConfig:
        try:
            check_gain(self.ratio, self.max_ratio, "convert.ratio")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


class PairConfig(Section):
    select: Literal["darkest", "all"] = "darkest"


class PatchConfig(Section):
    size: int = Field(100, ge=8, description="patch side in pixels (seed: 100)")
    stride: int = Field(50, ge=1, description="step between windows (seed: 50)")
    format: Literal["uint8", "uint16"] = "uint8"
    max_per_image: int | None = Field(None, ge=1, description="seeded random subset per pair")
    row_group: int = Field(1024, ge=1, description="patches per Parquet row group")
    part_rows: int = Field(8192, ge=1, description="patches per part file (bounds its size)")

    @model_validator(mode="after")
    def _covering(self) -> PatchConfig:
        if self.stride > self.size:  # the windows would skip the pixels between them
            raise ValueError(f"stride ({self.stride}) must not exceed size ({self.size}): "
                             "every pixel of a pair is cut into some patch")  # fmt: skip
        return self


class ModelConfig(Section):
    input: str = Field(
        modes.DEFAULT,
        description="an input mode of lowlight.modes: rgb, the amplified sRGB conversion (the "
        "seed); bayer, the packed RAW mosaic (4 channels, half size, as in the SID paper); "
        "xtrans, the packed X-Trans mosaic (9 channels, a third of the size, SID's Fuji model)",
    )
    depth: int = Field(3, ge=1, le=6, description="U-Net levels (poolings)")
    width: int = Field(16, ge=4, description="channels of the first level, doubled per level")
    residual: bool = Field(
        False, description="predict the correction to the input (bayer: to a naive demosaic)"
    )
    unshuffle: int = Field(
        1,
        ge=1,
        le=4,
        description="rgb only: the image's s x s pixel blocks as channels (the "
        "network runs at 1/s the size; FFDNet's sub-images), 1 = none",
    )
    skip_upsample: Literal["nearest", "bilinear", "learned"] = Field(
        "nearest",
        description="packed modes with residual: how the naive demosaic the network corrects "
        "reaches full size; nearest repeats it over each cell, bilinear interpolates between "
        "the cells, learned starts as bilinear and trains with the network "
        "(modes.SKIP_UPSAMPLING)",
    )
    disc_width: int = Field(32, ge=4)
    disc_hidden: int = Field(256, ge=8)
    dropout: float = Field(0.3, ge=0, lt=1)

    @field_validator("input")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in modes.MODES:
            raise ValueError(f"unknown input mode {value!r} (known: {', '.join(modes.MODES)})")
        return value

    @model_validator(mode="after")
    def _unshuffle_full_size(self) -> ModelConfig:
        if self.unshuffle > 1 and modes.get(self.input).scale != 1:
            raise ValueError(f"model.unshuffle {self.unshuffle} needs a full-size input (rgb): "
                             f"{self.input} is a packed mosaic already")  # fmt: skip
        if self.skip_upsample != "nearest" and not (self.residual and modes.get(self.input).skip):
            raise ValueError(f"model.skip_upsample {self.skip_upsample} needs residual: true and "
                             f"a packed input (bayer, xtrans), got {self.input}")  # fmt: skip
        return self


class TrainConfig(Section):
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(2e-4, gt=0, description="generator learning rate")
    lr_d: float | None = Field(None, gt=0, description="discriminator's; None = lr")
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_l1: float = Field(100.0, ge=0, description="weight of L1 against the adversarial loss")
    adversarial: Literal["bce", "lsgan"] = "bce"
    lambda_adv: float = Field(
        1.0, ge=0, description="weight of the adversarial loss; 0 = L1 only, D is not trained"
    )
    warmup_epochs: int = Field(
        0, ge=0, description="first epochs with L1 only (adversarial weight 0, D not trained)"
    )
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="constant, or cosine decay to 0 over all epochs' steps"
    )
    max_minutes: float | None = Field(
        None,
        gt=0,
        description="a time budget: training (validation not counted) ends after this many "
        "minutes, or after the epochs if sooner; the cosine then decays over whichever ends "
        "first. For equal-time comparisons; the run then depends on the machine's speed",
    )
    init: str = Field(
        "none",
        min_length=1,
        description="start the generator from trained weights (a fine-tune): none, shipped (the "
        "model shipped with lowlight) or a models folder (e.g. an L1 model for the GAN's)",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(True, description="mixed precision on CUDA (ignored on CPU)")
    workers: int = Field(1, ge=0, description="DataLoader worker processes")
    shuffle_buffer: int = Field(2048, ge=0)
    checkpoint_every: int = Field(50, ge=1, description="steps between checkpoints")
    log_every: int = Field(10, ge=1, description="steps between logged losses")
    val_patches: int = Field(512, ge=1, description="validation patches scored per epoch")
    samples: int = Field(4, ge=0, description="validation patches in the per-epoch grid")


class InferConfig(Section):
    tile: int = Field(640, ge=16, description="largest tile side for whole-image inference")
    overlap: int | None = Field(
        None,
        ge=0,
        description="input pixels shared by neighbouring tiles (default: the "
        "model's 12 x 2**depth)",
    )
    batch: int = Field(1, ge=1, description="tiles per forward pass")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["float32", "bfloat16"] = "float32"

    @model_validator(mode="after")
    def _overlap_below_tile(self) -> InferConfig:
        if self.overlap is not None and self.overlap >= self.tile:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than tile ({self.tile})")
        return self


class EvaluateConfig(Section):
    crop: tuple[int, int] | None = Field(None, description="central HxW scored; None = whole")
    # SID's authors advise leaving out these misaligned test scenes.
    exclude_scenes: list[str] = ["10034", "10045", "10172"]
    baselines: list[str] = ["amplify", "amplify+bm3d"]
    bm3d_sigma_scale: float | None = Field(
        None,
        gt=0,
        description="amplify+bm3d's scale on skimage's noise estimate; null: "
        "baselines.BM3D_SIGMA_SCALE (chosen on the a7S II's validation frames); another camera's "
        "is chosen on its own validation split (bench/pretrain.py sigma_study), never on test",
    )
    split: Literal["test", "val"] = Field(
        "test", description="the pairs scored: test, or val to choose between models"
    )
    zoom: int = Field(3, ge=1, description="magnification of the grids' zoomed row")

    @field_validator("crop", mode="before")
    @classmethod
    def _crop(cls, value: Any) -> tuple[int, int] | None:
        return None if value is None else parse_size(value)

    @field_validator("baselines")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from lowlight.baselines import BASELINES

        unknown = [name for name in value if name not in BASELINES]
        if unknown:
            raise ValueError(f"unknown baseline(s) {unknown}; known: {sorted(BASELINES)}")
        return value


class RegisterConfig(Section):
    model_name: str = Field(
        "lowlight", description="the registered model a run registers; enhance's for RAW files"
    )
    srgb_model_name: str = Field(
        "lowlight-srgb",
        description="the registered model enhance uses for JPEG/PNG files (an sRGB model's run "
        "registers with model_name set to it)",
    )
    xtrans_model_name: str = Field(
        "lowlight-xtrans",
        description="the registered model enhance uses for X-Trans RAW files (Fujifilm; an "
        "xtrans model's run registers with model_name set to it)",
    )
    min_delta: float = Field(0.0, description="dB a new champion must gain over the current one")
    baseline: str = Field("amplify+bm3d", description="the classical method it must beat")
    baseline_margin: float = Field(0.0, description="dB it must beat the baseline by")

    def by_input(self) -> dict[str, str]:
        """The registered model enhance looks for, by the input mode that fits a file."""
        from lowlight.modes import IMAGE_MODE, RAW_MODE, XTRANS_MODE

        return {RAW_MODE: self.model_name, XTRANS_MODE: self.xtrans_model_name,
                IMAGE_MODE: self.srgb_model_name}  # fmt: skip


class MlflowConfig(Section):
    tracking_uri: str = Field(
        "sqlite:///mlruns/mlflow.db", description="MLFLOW_TRACKING_URI overrides it"
    )
    experiment: str = "lowlight"

    @field_validator("tracking_uri")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        from lowlight.errors import has_credentials

        if has_credentials(value):  # params.yaml is committed, logged and compiled into pipelines
            raise ValueError("credentials do not belong in params.yaml: give the server's URI "
                             "without them and set MLFLOW_TRACKING_USERNAME and "
                             "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the "
                             "environment or a Kubernetes secret")  # fmt: skip
        return value


class Params(Section):
    seed: int = 0
    data: DataConfig = DataConfig()
    synth: SynthConfig = SynthConfig()
    convert: ConvertConfig = ConvertConfig()
    pair: PairConfig = PairConfig()
    patch: PatchConfig = PatchConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    infer: InferConfig = InferConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    # "register" is also ABCMeta.register on every pydantic model: keep the key, rename the field.
    register_: RegisterConfig = Field(RegisterConfig(), alias="register")
    mlflow: MlflowConfig = MlflowConfig()


def describe(err: ValidationError, source: str) -> str:
    problems = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"])
        key, msg = shown(key), shown(item["msg"], MESSAGE)
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        elif key:
            problems.append(f"'{key}': {msg} (got {shown(_REPR.repr(item.get('input')))})")
        else:
            problems.append(msg)
    return f"{source}: " + "; ".join(problems)


def load_params(path: Path | str | None = None) -> Params:
    """Params from ``path`` (default params.yaml when it exists, else built-in defaults)."""
    path = Path(path) if path is not None else DEFAULT_PARAMS
    if not path.exists():
        if path == DEFAULT_PARAMS:
            return Params()
        raise ConfigError(f"{path}: params file not found")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a params file")
    try:
        text = path.read_bytes()  # YAML's reader decodes it: a binary file is a YAML error
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the params file: {exc.strerror or exc}") from None
    data = read_yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return validate(data, str(path))


def read_yaml(text: str | bytes, source: str) -> Any:
    """The YAML document in ``text``, built only after its node graph passed `check_nodes`."""
    try:
        loader = yaml.SafeLoader(text)  # decodes the text: a binary file fails here
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            check_nodes(node, source)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a params file") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one short line: the problem and where."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        problem, mark = shown(str(exc.problem), MESSAGE), exc.problem_mark
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return shown(" ".join(str(exc).split()), MESSAGE)


def check_nodes(root: yaml.Node, source: str) -> None:
    """Refuse what YAML would build silently: a mapping with a key twice (the last would win), an
    alias inside itself, and aliases that expand the document by more than ALIAS_BUDGET values
    (each alias is the whole anchored node again). The graph is as small as the file, and each
    node's expanded size is counted once, so the check costs what reading the file does."""
    sizes: dict[int, int] = {}  # id(node) -> values it stands for, expanded
    inside: set[int] = set()  # nodes being counted: meeting one again is a cycle

    def size(node: yaml.Node, where: str) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in inside:
            raise ConfigError(f"{source}: line {node.start_mark.line + 1}: an alias in "
                              f"'{shown(where)}' refers to itself")  # fmt: skip
        inside.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item, f"{where}.{i}") for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            _one_of_each_key(node, where, source)
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                total += size(key, where) + size(value, f"{where}.{name}" if where else name)
        inside.discard(id(node))
        sizes[id(node)] = total
        return total

    if size(root, "") - len(sizes) > ALIAS_BUDGET:
        raise ConfigError(f"{source}: its aliases (*name) expand it by more than "
                          f"{ALIAS_BUDGET:,} values: refused unbuilt (an alias bomb?)")  # fmt: skip


def _one_of_each_key(node: yaml.MappingNode, where: str, source: str) -> None:
    """Each key of the mapping ``node`` once (a merge ``<<`` may be overridden: YAML's rule)."""
    lines: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        line = key.start_mark.line + 1
        if (key.tag, key.value) in lines:
            name = shown(f"{where}.{key.value}" if where else key.value)
            raise ConfigError(f"{source}: key '{name}' is given twice, on lines "
                              f"{lines[key.tag, key.value]} and {line}; YAML would keep only "
                              "the last: remove one")  # fmt: skip
        lines[key.tag, key.value] = line


def validate(data: dict, source: str) -> Params:
    """``data`` (params.yaml's shape) as Params; errors name the key and ``source``."""
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, source)) from None


def override(section: S, name: str, **flags: Any) -> S:
    """``section`` with the flags that were given (not None) replacing its values."""
    given = {k: v for k, v in flags.items() if v is not None}
    if not given:
        return section
    try:
        return type(section).model_validate({**section.model_dump(), **given})
    except ValidationError as exc:
        raise ConfigError(describe(exc, f"command-line flags for '{name}'")) from None
