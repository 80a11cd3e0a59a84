"""The model's input modes, chosen by name (``model.input``): one class per mode owns all that
differs between them, and nothing else in lowlight branches on a mode's name.

- ``rgb``: the seed's amplified sRGB conversion, 3 channels in, the same size out.
- ``bayer``: the SID paper's packed 2x2 Bayer mosaic, 4 channels (R, G, G, B) at half the
  size, RGB at full size out (pixel shuffle x2).
- ``xtrans``: SID's Fuji network's packed 6x6 X-Trans mosaic, 9 channels at a third of the
  size, RGB at full size out (pixel shuffle x3).

A mode says what convert writes for it, which pairs column holds its input, how a dark window
is cut and at which coordinates, whether flips and rotations are allowed, how inference decodes
a file for it and what the registered model's signature is. The two packed mosaics share one
base (``PackedMode``) whose hook is the packing.

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
    from lowlight.dng import DngMeta
    from lowlight.patches import PatchSpec
    from lowlight.raw import Packing
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
    # the input's colour pattern repeats every ``period`` output pixels: windows start on it
    period: ClassVar[int]
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

        if size % self.period or stride % self.period:
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
        return f"a patch size and stride divisible by {self.period}"

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
                **({"skip": self.skip} if cfg.residual and self.skip else {}),
                **({"skip_upsample": cfg.skip_upsample}
                   if cfg.residual and self.skip and cfg.skip_upsample != "nearest" else {}),
                **({"unshuffle": cfg.unshuffle} if cfg.unshuffle > 1 else {})}  # fmt: skip

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
    channels, scale, period = 3, 1, 1
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


# How a packed mosaic's naive demosaic (the residual skip, one value per colour and cell)
# reaches the output's sub-pixels (models.unet.skip_weights): "nearest" repeats it over the
# cell (older models); "bilinear" interpolates between neighbouring cells' centres as
# F.interpolate(bilinear, align_corners=False) does, so the network corrects a smooth image
# rather than blocks (the X-T2's validation frames at x100, rendered, before any training:
# 21.2 -> 23.8 dB; its cells are 3x3); "learned" starts there and trains the map with the
# network: a linear demosaic of each cell and its neighbours, every raw sample reaching every
# output sub-pixel (the U-Net's finest features, ``width`` of them a cell, must otherwise
# carry all of a cell's detail to the head).
SKIP_UPSAMPLING = ("nearest", "bilinear", "learned")


def naive_demosaic(order: str) -> list[list[float]]:
    """The skip map of a packed mosaic whose channels have colours ``order``: camera R, G and B
    each the mean of its channels (a naive demosaic, under the network's correction)."""
    return [[1.0 / order.count(c) if letter == c else 0.0 for letter in order] for c in "RGB"]


class PackedMode(InputMode):
    """A camera mosaic packed as SID's networks take it: each block of the sensor's colour
    pattern into ``channels`` planes at 1/``scale`` of the size, in the same colours
    (``order``) whatever the file's phase, and a pixel shuffle back to full-size RGB. The
    network restores linear camera RGB, which each file's metadata renders.

    Subclasses name the layout and give the packing (``packing``); the rest is shared: convert
    writes a signed 16-bit PNG of the packed frame beside the RGB conversion, windows start on
    the pattern's period, and a file of another layout is refused in one line.
    """

    # A flip or quarter turn of a packed mosaic changes its colour layout (RGGB -> GRBG ...):
    # the channels would no longer mean their colours.
    augmentable = False
    dark_column = "dark_packed"
    renders = True
    order: ClassVar[str]  # the packed channels' colours
    layout: ClassVar[str]  # the sensor layout in words
    # the packed file beside the RGB conversion; signed values (imageio.encode_signed16)
    SUFFIX: ClassVar[str]

    def packing(self) -> Packing:
        """The array code that packs a mosaic of this layout (``raw.pack_bayer`` ...)."""
        raise NotImplementedError

    def pack(self, mosaic: np.ndarray, colors: np.ndarray, desc: str, *levels) -> np.ndarray:
        """A file's mosaic packed (``raw.decode_packed``'s hook), its layout first checked
        against this mode's: another camera's file is refused in one line, not packed wrong."""
        from lowlight.raw import layout_period

        period = layout_period(colors)
        if period != self.period:
            raise ValueError(self.wrong_layout(period))
        return self.packing()(mosaic, colors, desc, *levels)

    def wrong_layout(self, period: int) -> str:
        """Why a file whose colour pattern repeats every ``period`` pixels is refused."""
        fits = packed_mode_of(period)
        found = f"is {fits.layout}" if fits else "repeats neither every 2 nor every 6 pixels"
        hint = f"; use model.input {fits.name}" if fits else ""
        return (f"the sensor {found}, not {self.layout}: model.input {self.name} packs "
                f"{self.layout} mosaics only{hint}")  # fmt: skip

    def check_convert(self, cfg: ConvertConfig) -> None:
        if not cfg.amplify:
            raise ConfigError(f"model.input {self.name} packs amplified frames: set "
                              "convert.amplify: true")  # fmt: skip

    def input_file(self, stem: str, gain: float | str) -> str | None:
        # only amplified frames (the model's inputs) are packed
        return stem + self.SUFFIX if gain != 1.0 else None

    def settings(self) -> dict:
        return {"packed": self.SUFFIX}

    def write_input(self, source: Path, dest: Location, gain: float) -> None:
        from lowlight import imageio, raw

        # the same gain as the RGB output, so that "auto" packs what it converted
        mosaic, *_ = raw.decode_packed(source, gain, pack=self.pack)
        imageio.write_packed(dest, mosaic)

    @property
    def size_rule(self) -> str:
        return (f"a patch size and stride divisible by {self.period} (the {self.layout} "
                f"pattern's period)")  # fmt: skip

    def dark_dtype(self, dtype: str) -> str:
        return "uint16"  # packed mosaics keep the sensor's precision

    def dark_encoding(self) -> str:
        from lowlight.imageio import SIGNED16

        return SIGNED16  # as convert wrote them: patches copy the stored integers

    def read_input(self, loc: Location, dtype: str) -> np.ndarray:
        from lowlight import imageio

        return imageio.read_packed(loc, self.channels)

    def missing_input(self, source: str) -> str:
        return (f"{source}: no packed {self.layout} input for model.input {self.name}; convert "
                f"and pair again with model.input {self.name}")  # fmt: skip

    def preview(self, dark: np.ndarray) -> np.ndarray:
        from lowlight.raw import preview_packed

        return preview_packed(dark, self.order, self.scale)

    def model_input(self, dark: np.ndarray, row: dict, converted: Location) -> np.ndarray:
        from lowlight import imageio, storage

        stored = self.read_input(storage.join(converted, row[self.dark_column]), "uint16")
        return imageio.decode_signed16(stored)

    def load_photo(self, path: Path, ratio: float | str, cfg: ConvertConfig) -> Photo:
        from lowlight import raw

        if path.suffix.lower() not in raw.RAW_SUFFIXES:
            raise DatasetError(f"{path}: a {self.name} model enhances RAW files only")
        mosaic, gain, flip, render = raw.decode_packed(
            path, ratio, pack=self.pack, auto_target=cfg.auto_target, max_gain=cfg.max_ratio,
            curve=cfg.curve,
        )  # fmt: skip
        return Photo(mosaic, np.dtype(np.uint16), flip, render, gain)

    def finish(self, output: np.ndarray, render: RenderParams | None) -> np.ndarray:
        from lowlight.rendering import render as render_image

        return render_image(output, render or RenderParams.neutral())

    def example_file(self, rng: np.random.Generator, folder: Path) -> bytes:
        """A small dark DNG of this layout that LibRaw reads."""
        from lowlight.dng import write_dng

        mosaic, meta = self.example_frame(rng)
        return write_dng(folder / "example.dng", mosaic, meta).read_bytes()

    def example_frame(self, rng: np.random.Generator) -> tuple[np.ndarray, DngMeta]:
        raise NotImplementedError


class BayerMode(PackedMode):
    """The SID paper's Sony network: a 2x2 Bayer mosaic as 4 channels (R, G, G, B) at half the
    size."""

    name = "bayer"
    channels, scale, period = 4, 2, 2
    order = "RGGB"
    layout = "Bayer"
    skip = naive_demosaic(order)
    # The clipped encoding of lowlight before issue 23 was ".bayer.png": refused, its dark
    # areas are lifted.
    SUFFIX, CLIPPED_SUFFIX = ".bayer-signed.png", ".bayer.png"

    def packing(self) -> Packing:
        from lowlight.raw import pack_bayer

        return pack_bayer

    @property
    def size_rule(self) -> str:
        return "an even patch size and stride"

    def check_pairs(self, rows: list[dict], source: Location) -> None:
        super().check_pairs(rows, source)
        names = [r[self.dark_column] for r in rows]
        clipped = [name for name in names if name.endswith(self.CLIPPED_SUFFIX)]
        if clipped:
            raise DatasetError(
                f"{source}: {clipped[0]} is a packed Bayer file of an older lowlight (values "
                "below black clipped to 0); run `lowlight convert` and `lowlight pair` again"
            )

    def example_frame(self, rng: np.random.Generator) -> tuple[np.ndarray, DngMeta]:
        """A dark 38x54 RGGB frame, a7S II levels."""
        from lowlight.dng import DngMeta

        mosaic = (512 + rng.poisson(40.0, (38, 54))).astype(np.uint16)
        return mosaic, DngMeta(512, 16383, (0.5, 1.0, 0.6), exposure=0.1, iso=3200)


class XTransMode(PackedMode):
    """SID's Fuji network: a Fujifilm X-Trans mosaic, each 3x3 cell of its 6x6 pattern as 9
    channels (R, R, G, G, G, G, G, B, B: ``lowlight.xtrans``) at a third of the size."""

    name = "xtrans"
    channels, scale, period = 9, 3, 6
    order = "RRGGGGGBB"  # lowlight.xtrans.XTRANS_ORDER
    layout = "X-Trans"
    skip = naive_demosaic(order)
    SUFFIX = ".xtrans-signed.png"

    def packing(self) -> Packing:
        from lowlight.raw import pack_xtrans_mosaic

        return pack_xtrans_mosaic

    @property
    def size_rule(self) -> str:
        return ("a patch size and stride divisible by 6 (the X-Trans pattern's 6x6 period: even "
                "in packed pixels)")  # fmt: skip

    def example_frame(self, rng: np.random.Generator) -> tuple[np.ndarray, DngMeta]:
        """A dark 36x54 frame of the X-T2's layout and levels (SID's Fuji camera)."""
        from lowlight.dng import DngMeta
        from lowlight.noise import load_profile

        xt2 = load_profile("FujiXT2")
        mosaic = (xt2.black_level + rng.poisson(40.0, (36, 54))).astype(np.uint16)
        meta = DngMeta(xt2.black_level, xt2.white_level, (0.5, 1.0, 0.6), exposure=0.1,
                       iso=3200, make=xt2.make, model=xt2.model, cfa=xt2.cfa)  # fmt: skip
        return mosaic, meta


MODES: dict[str, InputMode] = {mode.name: mode for mode in (RgbMode(), BayerMode(), XTransMode())}
DEFAULT = RgbMode.name
# The mode of the model lowlight ships for each kind of file, and what enhance calls the kind.
RAW_MODE, XTRANS_MODE, IMAGE_MODE = BayerMode.name, XTransMode.name, RgbMode.name
KINDS = {RAW_MODE: "RAW", XTRANS_MODE: "X-Trans RAW", IMAGE_MODE: "JPEG/PNG"}


def for_file(path: Path) -> str:
    """The mode of the shipped model that fits a file: a RAW file goes to the packed mode of
    its own sensor layout, read by LibRaw (X-Trans or Bayer; a file LibRaw cannot open goes to
    the Bayer model, which says why it fails), JPEG/PNG/TIFF images to the sRGB one."""
    from lowlight.raw import RAW_SUFFIXES, pattern_period

    if path.suffix.lower() not in RAW_SUFFIXES:
        return IMAGE_MODE
    fits = packed_mode_of(pattern_period(path))
    return fits.name if fits else RAW_MODE


def packed_mode_of(period: int | None) -> PackedMode | None:
    """The packed RAW mode of a sensor whose colour pattern repeats every ``period`` pixels."""
    return next((m for m in MODES.values() if isinstance(m, PackedMode) and m.period == period),
                None)  # fmt: skip


def get(name: str) -> InputMode:
    """The mode called ``name`` (``model.input``)."""
    try:
        return MODES[name]
    except KeyError:
        raise ConfigError(
            f"model.input {name!r}: unknown input mode (known: {', '.join(MODES)})"
        ) from None
