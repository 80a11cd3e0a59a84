"""The model's input modes, chosen by name (``model.input``): one class per mode owns all that
differs between them, and nothing else in lowlight branches on a mode's name.

- ``rgb``: the seed's amplified sRGB conversion, 3 channels in, the same size out.
- ``bayer``: the SID paper's packed 2x2 Bayer mosaic, 4 channels (R, G, G, B) at half the
  size, RGB at full size out (pixel shuffle x2).

A mode says what convert writes for it, which pairs column holds its input, how a dark window
is cut and at which coordinates, whether flips and rotations are allowed, how inference decodes
a file for it and what the registered model's signature is. Adding a camera layout (SID's Fuji
X-Trans: 9 channels at a third of the size) is one more class here plus its tests.

Importing this module is cheap (numpy only): file, Parquet and RAW code is imported where used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np

from lowlight.errors import ConfigError, DatasetError
from lowlight.rendering import RenderParams

if TYPE_CHECKING:
    from lowlight.config import ConvertConfig, ModelConfig
    from lowlight.patches import PatchSpec
    from lowlight.storage import Location


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [0, 1]."""
    return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)


class Photo(NamedTuple):
    """A user's file ready for the network: what ``InputMode.load_photo`` gives."""

    unit: np.ndarray  # the model's float input
    dtype: np.dtype  # of the image written back (uint16 for RAW and 16-bit inputs)
    flip: int  # LibRaw's flip code: how to turn the result upright
    render: RenderParams | None  # how the file's metadata renders camera RGB
    gain: float  # the amplification applied (1.0 for an image)


class InputMode:
    """What the network takes in. Subclasses set the class attributes and the hooks."""

    name: ClassVar[str]
    channels: ClassVar[int]  # input channels of the network
    scale: ClassVar[int]  # output pixels per input pixel along each axis
    augmentable: ClassVar[bool]  # flips and quarter turns keep the input's meaning
    # model.residual: the output is this linear map of the input channels, upsampled to the
    # output's size, plus the network's correction (None: the input itself)
    skip: ClassVar[list[list[float]] | None] = None
    dark_column: ClassVar[str]  # pairs column naming the model's input file
    # the network restores linear camera RGB, which each file's metadata renders
    # (lowlight.rendering), in training before the loss and at inference
    renders: ClassVar[bool] = False

    # --- convert ---------------------------------------------------------------------------

    def check_convert(self, cfg: ConvertConfig) -> None:
        """Refuse convert settings this mode cannot use."""

    def input_file(self, stem: str, gain: float | str) -> str | None:
        """Where convert writes this mode's own input for the file whose outputs are named
        ``stem`` (beside the RGB output), or None when the RGB conversion is the input."""
        return None

    def settings(self) -> dict:
        """What the mode adds to a converted file's settings key (unchanged -> skipped)."""
        return {}

    def write_input(self, source: Path, dest: Location, gain: float) -> None:
        """Decode ``source`` again and write this mode's input file at ``dest``."""

    # --- patch -----------------------------------------------------------------------------

    def patch_spec(
        self,
        size: int,
        stride: int,
        dtype: str = "uint8",
        pairs_sha256: str = "",
        curve: str = "bt709",
    ) -> PatchSpec:
        """The patch files' spec; a mode that renders stores the bright frames' tone curve."""
        from lowlight.patches import PatchSpec

        if size % self.scale or stride % self.scale:
            raise ConfigError(f"model.input {self.name} needs {self.size_rule}, got {size} and "
                              f"{stride}")  # fmt: skip
        small = size // self.scale
        dark_shape = (small, small, self.channels)
        return PatchSpec(
            size, stride, dtype, dark_shape, (size, size, 3), pairs_sha256, input=self.name,
            dark_dtype=self.dark_dtype(dtype), render=curve if self.renders else "",
            dark_encoding=self.dark_encoding(),
        )  # fmt: skip

    @property
    def size_rule(self) -> str:
        return f"a patch size and stride divisible by {self.scale}"

    def dark_dtype(self, dtype: str) -> str:
        """The dark patches' pixel type ("" = the brights' ``dtype``)."""
        return ""

    def dark_encoding(self) -> str:
        """How the dark patches' integers map to values ("" = x / the dtype's max, in [0, 1])."""
        return ""

    def read_input(self, loc: Location, dtype: str) -> np.ndarray:
        """The model's input image of a pair, as patches store it."""
        raise NotImplementedError

    def check_pairs(self, rows: list[dict], source: Location) -> None:
        """Refuse a pairs table that lacks this mode's inputs."""
        if any(r[self.dark_column] is None for r in rows):
            raise DatasetError(self.missing_input(str(source)))

    def missing_input(self, source: str) -> str:
        return f"{source}: no {self.name} input"

    # --- the network -----------------------------------------------------------------------

    def generator_args(self, cfg: ModelConfig) -> dict:
        """The U-Net's arguments for this input."""
        return {"in_channels": self.channels, "out_channels": 3, "depth": cfg.depth,
                "width": cfg.width, "scale": self.scale, "residual": cfg.residual,
                **({"skip": self.skip} if cfg.residual and self.skip else {})}  # fmt: skip

    def preview(self, dark: np.ndarray) -> np.ndarray:
        """A dark input as a viewable RGB image at the output's size (sample grids)."""
        return dark

    # --- inference -------------------------------------------------------------------------

    def model_input(self, dark: np.ndarray, row: dict, converted: Location) -> np.ndarray:
        """The model's input of an evaluation pair whose RGB dark frame is ``dark``."""
        return dark

    def load_photo(self, path: Path, ratio: float | str, cfg: ConvertConfig) -> Photo:
        """A user's file as the model's float input, the output dtype, LibRaw's flip code,
        how the file renders (None when the input is already an image) and the gain applied."""
        raise NotImplementedError

    def finish(self, output: np.ndarray, render: RenderParams | None) -> np.ndarray:
        """The network's whole-image output as the image a user sees."""
        return output

    def example_file(self, rng: np.random.Generator, folder: Path) -> bytes:
        """A small file of the kind the mode takes: the registered model's input example."""
        raise NotImplementedError


class RgbMode(InputMode):
    name = "rgb"
    channels, scale = 3, 1
    augmentable = True
    dark_column = "dark"

    def read_input(self, loc: Location, dtype: str) -> np.ndarray:
        from lowlight import imageio

        return imageio.to_dtype(imageio.read_image(loc), dtype)

    def load_photo(self, path: Path, ratio: float | str, cfg: ConvertConfig) -> Photo:
        from lowlight import imageio, raw

        if path.suffix.lower() in raw.RAW_SUFFIXES:  # rendered as convert renders
            image, _, gain = raw.decode(
                path, ratio, half_size=cfg.half_size, bits=16, auto_target=cfg.auto_target,
                max_gain=cfg.max_ratio, curve=cfg.curve,
            )  # fmt: skip
            return Photo(to_unit(image), np.dtype(np.uint16), 0, None, gain)
        from lowlight.conversion import expose_picture  # a JPEG's darkness, judged as convert does

        image = imageio.read_image(path)
        unit, gain = expose_picture(to_unit(image), 1.0 if ratio is None else ratio, cfg)
        return Photo(unit, image.dtype, 0, None, gain)

    def example_file(self, rng: np.random.Generator, folder: Path) -> bytes:
        from lowlight import imageio

        return imageio.encode(rng.integers(0, 64, (37, 53, 3), dtype=np.uint8), "png")


class BayerMode(InputMode):
    name = "bayer"
    channels, scale = 4, 2
    # A flip or quarter turn of a packed mosaic changes its colour layout (RGGB -> GRBG ...):
    # the channels would no longer mean R, G, G, B.
    augmentable = False
    # a naive demosaic, camera R, mean G, B of each 2x2 block, under the correction
    skip = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]]
    dark_column = "dark_packed"
    renders = True
    # beside the RGB conversion; signed values (imageio.encode_signed16). The clipped encoding
    # of lowlight before issue 23 was ".bayer.png": refused, its dark areas are lifted.
    SUFFIX, CLIPPED_SUFFIX = ".bayer-signed.png", ".bayer.png"

    def check_convert(self, cfg: ConvertConfig) -> None:
        if not cfg.amplify:
            raise ConfigError("model.input bayer packs amplified frames: set convert.amplify: true")

    def input_file(self, stem: str, gain: float | str) -> str | None:
        # only amplified frames (the model's inputs) are packed
        return stem + self.SUFFIX if gain != 1.0 else None

    def settings(self) -> dict:
        return {"packed": self.SUFFIX}

    def write_input(self, source: Path, dest: Location, gain: float) -> None:
        from lowlight import imageio, raw

        # the same gain as the RGB output, so that "auto" packs what it converted
        mosaic, *_ = raw.decode_packed(source, gain)
        imageio.write_packed(dest, mosaic)

    size_rule = "an even patch size and stride"

    def dark_dtype(self, dtype: str) -> str:
        return "uint16"  # packed mosaics keep the sensor's precision

    def dark_encoding(self) -> str:
        from lowlight.imageio import SIGNED16

        return SIGNED16  # as convert wrote them: patches copy the stored integers

    def read_input(self, loc: Location, dtype: str) -> np.ndarray:
        from lowlight import imageio

        return imageio.read_packed(loc)

    def check_pairs(self, rows: list[dict], source: Location) -> None:
        super().check_pairs(rows, source)
        names = [r[self.dark_column] for r in rows]
        clipped = [name for name in names if name.endswith(self.CLIPPED_SUFFIX)]
        if clipped:
            raise DatasetError(
                f"{source}: {clipped[0]} is a packed Bayer file of an older lowlight (values "
                "below black clipped to 0); run `lowlight convert` and `lowlight pair` again"
            )

    def missing_input(self, source: str) -> str:
        return (f"{source}: no packed Bayer input for model.input bayer; convert and pair again "
                "with model.input bayer")  # fmt: skip

    def preview(self, dark: np.ndarray) -> np.ndarray:
        from lowlight.raw import preview_packed

        return preview_packed(dark)

    def model_input(self, dark: np.ndarray, row: dict, converted: Location) -> np.ndarray:
        from lowlight import imageio, storage

        packed = imageio.read_packed(storage.join(converted, row[self.dark_column]))
        return imageio.decode_signed16(packed)

    def load_photo(self, path: Path, ratio: float | str, cfg: ConvertConfig) -> Photo:
        from lowlight import raw

        if path.suffix.lower() not in raw.RAW_SUFFIXES:
            raise DatasetError(f"{path}: a bayer model enhances RAW files only")
        mosaic, gain, flip, render = raw.decode_packed(
            path, ratio, auto_target=cfg.auto_target, max_gain=cfg.max_ratio, curve=cfg.curve
        )
        return Photo(mosaic, np.dtype(np.uint16), flip, render, gain)

    def finish(self, output: np.ndarray, render: RenderParams | None) -> np.ndarray:
        from lowlight.rendering import render as render_image

        return render_image(output, render or RenderParams.neutral())

    def example_file(self, rng: np.random.Generator, folder: Path) -> bytes:
        """A dark 38x54 RGGB DNG (a7S II levels) that LibRaw reads."""
        from lowlight.dng import DngMeta, write_dng

        mosaic = (512 + rng.poisson(40.0, (38, 54))).astype(np.uint16)
        meta = DngMeta(512, 16383, (0.5, 1.0, 0.6), exposure=0.1, iso=3200)
        return write_dng(folder / "example.dng", mosaic, meta).read_bytes()


MODES: dict[str, InputMode] = {mode.name: mode for mode in (RgbMode(), BayerMode())}
DEFAULT = RgbMode.name
# The mode of the model lowlight ships for each kind of file, and what enhance calls the kind.
RAW_MODE, IMAGE_MODE = BayerMode.name, RgbMode.name
KINDS = {RAW_MODE: "RAW", IMAGE_MODE: "JPEG/PNG"}


def for_file(path: Path) -> str:
    """The mode of the shipped model that fits a file: RAW files go to the packed Bayer model,
    JPEG/PNG/TIFF images to the sRGB one."""
    from lowlight.raw import RAW_SUFFIXES

    return RAW_MODE if path.suffix.lower() in RAW_SUFFIXES else IMAGE_MODE


def get(name: str) -> InputMode:
    """The mode called ``name`` (``model.input``)."""
    try:
        return MODES[name]
    except KeyError:
        raise ConfigError(
            f"model.input {name!r}: unknown input mode (known: {', '.join(MODES)})"
        ) from None
