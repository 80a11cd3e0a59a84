"""Decode camera RAW files with LibRaw (rawpy): metadata, linear-space amplification, sRGB output.

Black and white levels always come from each file's own metadata (never Sony's 512/16383 baked
in): SID's code hard-coded them and broke for every other camera.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rawpy

from lowlight.errors import RawDecodeError
from lowlight.imageio import SIGNED_FLOOR
from lowlight.noise import dark_offset
from lowlight.rendering import LIBRAW_GAMMA, RenderParams
from lowlight.xtrans import PERIOD, pack_xtrans, xtrans_pattern

log = logging.getLogger(__name__)

# Extensions LibRaw reads (a practical subset of its ~1000 supported cameras' formats).
RAW_SUFFIXES = frozenset(
    {
        *(".arw", ".srf", ".sr2", ".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".raf"),
        *(".kdc", ".dcr", ".orf", ".rw2", ".pef", ".srw", ".3fr", ".iiq", ".erf", ".mrw"),
        *(".mos", ".mef", ".x3f", ".rwl", ".raw"),
    }
)


@dataclass(frozen=True)
class RawMeta:
    exposure: float | None  # seconds, from EXIF
    iso: int | None
    camera: str
    width: int  # of the processed image
    height: int
    render: RenderParams | None = None  # how LibRaw renders the file's camera RGB


def amplify_mosaic(
    mosaic: np.ndarray, black: np.ndarray, white: int, gain: float, offset: np.ndarray | None = None
) -> np.ndarray:
    """Scale a RAW mosaic by ``gain`` in linear space: subtract black, multiply, clip at the
    white level, add black. Values below black stay below it (read noise is symmetric), down to
    the dtype's 0; LibRaw's own black subtraction clips them for the RGB rendering.

    ``black`` is the per-pixel black level (same shape as ``mosaic``, or broadcastable);
    ``offset`` (per pixel, DN) is the dark level's calibrated excess over it (``dark_offset``),
    removed before the gain. Returns a new array of the mosaic's dtype. With one black level
    for all channels (most cameras) a 16-bit mosaic goes through a lookup table: same values,
    ~5x faster.
    """
    if np.ndim(black) == 0 and offset is None and mosaic.dtype == np.uint16:
        table = _amplify(np.arange(65536, dtype=np.float32), np.float32(black), white, gain)
        return table.astype(np.uint16)[mosaic]
    return _amplify(mosaic.astype(np.float32), black, white, gain, offset).astype(mosaic.dtype)


def _amplify(signal: np.ndarray, black, white: int, gain: float, offset=None) -> np.ndarray:
    signal = signal - black
    if offset is not None:
        signal -= offset
    np.multiply(signal, np.float32(gain), out=signal)
    np.clip(signal, -np.asarray(black, np.float32), np.asarray(white, np.float32) - black,
            out=signal)  # fmt: skip
    signal += black
    return np.rint(signal)


def linear_level(mosaic: np.ndarray, black: np.ndarray, white: int) -> float:
    """Mean signal as a fraction of the sensor's range (0 = black, 1 = white)."""
    span = np.maximum(np.asarray(white, np.float32) - black, 1.0)
    return float(np.mean(np.clip((mosaic.astype(np.float32) - black) / span, 0.0, 1.0)))


def estimate_gain(level: float, target: float, cap: float) -> float:
    """The gain that brings a mean linear ``level`` to ``target``, within [1, cap]."""
    return float(np.clip(target / max(level, 1e-6), 1.0, cap))


def normalise_mosaic(
    mosaic: np.ndarray,
    colors: np.ndarray,
    black: np.ndarray,
    white: int,
    gain: float,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """A RAW mosaic as the packed files hold it, float32: black-subtracted per colour, scaled by
    the white level, amplified by ``gain``, clipped to [-1, 1] (``imageio.encode_signed16``).
    Read noise below black stays negative, so that a dark area's mean stays unbiased (issue 23).

    ``colors``: each pixel's colour index (LibRaw's ``raw_colors``); ``black`` the black level
    per colour index, ``offset`` the dark level's calibrated excess over it per colour index
    (``dark_offset``). Every packing (Bayer, X-Trans) shares it, so their values mean the same.
    """
    level = np.asarray(black, np.float32)[colors]
    excess = np.float32(0.0) if offset is None else np.asarray(offset, np.float32)[colors]
    scale = np.float32(gain) / np.maximum(np.float32(white) - level, np.float32(1.0))
    signal = (mosaic.astype(np.float32) - level - excess) * scale
    return np.clip(signal, SIGNED_FLOOR, 1.0)


# A packing: (mosaic, colours, desc, black, white, gain, offset) -> the packed float32 array.
Packing = Callable[
    [np.ndarray, np.ndarray, str, np.ndarray, int, float, "np.ndarray | None"], np.ndarray
]


def pack_bayer(
    mosaic: np.ndarray,
    colors: np.ndarray,
    desc: str,
    black: np.ndarray,
    white: int,
    gain: float,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """A 2x2 Bayer mosaic -> (H/2, W/2, 4) float32, channels R, G, G, B whatever the sensor's
    layout, normalised by ``normalise_mosaic``.

    ``colors`` is the per-pixel colour index into ``desc`` (LibRaw's ``raw_colors`` and
    ``color_desc``, e.g. "RGBG"). Odd edges are dropped so that the output at twice the size
    lines up with the RGB conversion.
    """
    height, width = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    block = colors[:2, :2]
    names = [desc[i] for i in block.ravel()]
    if sorted(names) != ["B", "G", "G", "R"] or not np.array_equal(
        np.tile(block, (height // 2, width // 2)), colors[:height, :width]
    ):
        raise ValueError(f"not a 2x2 RGGB-type Bayer sensor (colours {desc!r}, block {names})")
    offsets = [divmod(int(i), 2) for i in np.argsort([BAYER_ORDER.index(n) for n in names],
                                                     kind="stable")]  # fmt: skip
    signal = normalise_mosaic(mosaic[:height, :width], colors[:height, :width], black, white,
                              gain, offset)  # fmt: skip
    return np.stack([signal[dy::2, dx::2] for dy, dx in offsets], axis=-1)


def pack_xtrans_mosaic(
    mosaic: np.ndarray,
    colors: np.ndarray,
    desc: str,
    black: np.ndarray,
    white: int,
    gain: float,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """An X-Trans mosaic -> (H/3, W/3, 9) float32, channels ``xtrans.XTRANS_ORDER`` at every
    phase, normalised as ``pack_bayer`` normalises (``normalise_mosaic``). The 6x6 pattern is
    the file's own (``colors``, ``desc``); rows and columns past the last whole 6x6 block are
    dropped, so that the output at three times the size lines up with the RGB conversion."""
    pattern = xtrans_pattern(colors, desc)
    height, width = mosaic.shape[0] // PERIOD * PERIOD, mosaic.shape[1] // PERIOD * PERIOD
    signal = normalise_mosaic(mosaic[:height, :width], colors[:height, :width], black, white,
                              gain, offset)  # fmt: skip
    return pack_xtrans(signal, pattern)


# Channel order of packed Bayer arrays (the SID paper's): R, G, G, B.
BAYER_ORDER = "RGGB"


def decode_packed(
    path: Path,
    gain: float | str = 1.0,
    *,
    pack: Packing = pack_bayer,
    auto_target: float = 0.18,
    max_gain: float = 300.0,
    curve: str = "bt709",
) -> tuple[np.ndarray, float, int, RenderParams]:
    """``path``'s mosaic packed by ``pack`` (``pack_bayer``, ``pack_xtrans_mosaic``) from the
    file's own colour layout, its gain, LibRaw's flip code (0 none, 3 180 degrees, 5 90 CCW,
    6 90 CW: how to turn the result upright) and how the file's metadata renders its camera RGB
    (``lowlight.rendering``)."""
    offset = dark_offset(*_camera_name(path)) if gain != 1.0 else None
    try:
        with open_raw(path) as raw:
            mosaic = raw.raw_image_visible
            colors = raw.raw_colors_visible
            desc = raw.color_desc.decode()
            black = np.asarray(raw.black_level_per_channel, np.float32)
            white = int(raw.white_level)
            if gain == "auto":
                dark = black if offset is None else black + offset
                gain = estimate_gain(
                    linear_level(mosaic, dark[colors], white), auto_target, max_gain
                )
            planes = pack(mosaic, colors, desc, black, white, float(gain), offset)
            flip = int(raw.sizes.flip)
            render = RenderParams.from_libraw(raw.camera_whitebalance, raw.color_matrix, curve)
    except ValueError as exc:  # the packing's own words: a layout it does not take
        raise RawDecodeError(f"{path}: cannot pack the mosaic: {exc}") from exc
    except (rawpy.LibRawError, rawpy.NotSupportedError, OSError) as exc:
        raise RawDecodeError(f"{path}: cannot pack the mosaic ({_reason(exc)})") from exc
    return planes, float(gain), flip, render


def layout_period(colors: np.ndarray) -> int:
    """The period of a colour index map (LibRaw's ``raw_colors_visible``): 2 for a Bayer
    sensor, 6 for X-Trans, 0 for anything else."""
    for period in (2, PERIOD):
        block = colors[:period, :period]
        reps = (-(-colors.shape[0] // period), -(-colors.shape[1] // period))
        if block.shape == (period, period) and np.array_equal(
            np.tile(block, reps)[: colors.shape[0], : colors.shape[1]], colors
        ):
            return period
    return 0


def pattern_period(path: Path) -> int | None:
    """The side of ``path``'s colour filter pattern as LibRaw reads it (2 for a Bayer sensor,
    6 for X-Trans), or None when LibRaw cannot open the file (its decoder then says why)."""
    try:
        with rawpy.imread(str(path)) as raw:
            pattern = raw.raw_pattern
    except (rawpy.LibRawError, rawpy.NotSupportedError, OSError, ValueError):
        return None
    return None if pattern is None else int(pattern.shape[0])


@contextlib.contextmanager
def open_raw(path: Path) -> Iterator[rawpy.RawPy]:
    """``path`` opened by LibRaw, refused at once when its sensor has one colour: LibRaw opens a
    monochrome DNG, and every step after it (demosaic, packing, encoding) would fail on it in
    its own internal words."""
    with rawpy.imread(str(path)) as raw:
        if raw.num_colors < 3:
            raise RawDecodeError(f"{path}: monochrome sensor, not supported")
        yield raw


def preview_packed(planes: np.ndarray, order: str = "RGGB", scale: int = 2) -> np.ndarray:
    """A packed mosaic (channels of colours ``order``) as a viewable RGB image ``scale`` times
    its size: each colour the mean of its channels, no white balance or colour matrix, the sRGB
    curve approximated by a 1/2.2 power."""
    letters = np.array(list(order))
    rgb = np.stack([planes[..., letters == c].mean(axis=-1) for c in "RGB"], axis=-1)
    rgb = np.clip(rgb, 0.0, 1.0) ** (1 / 2.2)
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1).astype(np.float32)


def upright(image: np.ndarray, flip: int) -> np.ndarray:
    """Turn an image the way LibRaw's flip code says (what postprocess does to its output)."""
    if flip == 3:
        return image[::-1, ::-1]
    if flip == 5:
        return np.rot90(image, 1)
    if flip == 6:
        return np.rot90(image, -1)
    return image


def _reason(exc: Exception) -> str:
    """LibRaw's error in words a user can act on."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, rawpy.LibRawIOError | rawpy.LibRawDataError):
        return f"truncated or not a RAW file; {text}"
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        return f"not a RAW format LibRaw reads; {text}"
    return text


def _black_levels(raw: rawpy.RawPy) -> np.ndarray | np.float32:
    """One black level when all channels share it, else the per-pixel map."""
    levels = np.asarray(raw.black_level_per_channel, dtype=np.float32)
    if (levels == levels[0]).all():
        return levels[0]
    return levels[raw.raw_colors]


def _camera_name(path: Path) -> tuple[str, int | None]:
    """(make and model, EXIF ISO) from the file's EXIF, which rawpy does not expose."""
    import exifread

    try:
        with open(path, "rb") as fh:
            tags = exifread.process_file(fh, details=False, stop_tag="ISOSpeedRatings")
    except Exception:  # EXIF is optional: a RAW without it still decodes
        return "", None
    make = str(tags.get("Image Make", "")).strip()
    model = str(tags.get("Image Model", "")).strip()
    iso_tag = tags.get("EXIF ISOSpeedRatings") or tags.get("Image ISOSpeedRatings")
    try:
        iso = int(str(iso_tag).split(",")[0].strip("[] ")) if iso_tag else None
    except ValueError:
        iso = None
    camera = model if model.startswith(make) else f"{make} {model}".strip()
    return camera, iso


# LibRaw's X-Trans demosaic (xtrans_interpolate) works in 512x512 tiles and refuses a frame
# smaller than one tile on either side (LibRawIOError); such frames (tests, the demo's tiny
# synthetic X-T2) are demosaiced by LibRaw's LINEAR interpolation instead.
XTRANS_DEMOSAIC_MIN = 512


def demosaic_for(raw: rawpy.RawPy) -> rawpy.DemosaicAlgorithm | None:
    """LibRaw's LINEAR demosaic for an X-Trans frame under 512 px on a side, else its default
    (None: AHD for Bayer, its own 3-pass X-Trans interpolation)."""
    pattern = raw.raw_pattern
    small = min(raw.sizes.width, raw.sizes.height) < XTRANS_DEMOSAIC_MIN
    if pattern is not None and pattern.shape[0] == PERIOD and small:
        return rawpy.DemosaicAlgorithm.LINEAR
    return None


def decode(
    path: Path,
    gain: float | str = 1.0,
    *,
    half_size: bool = False,
    bits: int = 8,
    auto_target: float = 0.18,
    max_gain: float = 300.0,
    curve: str = "bt709",
    demosaic: rawpy.DemosaicAlgorithm | None = None,
) -> tuple[np.ndarray, RawMeta, float]:
    """Decode ``path`` to an HxWx3 sRGB array (uint8 or uint16), amplified by ``gain``.

    ``gain`` may be ``"auto"``: estimated to bring the mean linear level to ``auto_target``.
    ``curve``: ``bt709`` (LibRaw's default, as SID rendered) or ``srgb``. ``demosaic``: LibRaw's
    algorithm instead of ``demosaic_for``'s (a benchmark comparing two). Returns the image,
    its metadata (with the file's rendering parameters) and the gain actually applied.
    """
    camera, exif_iso = _camera_name(path)
    offset = dark_offset(camera, exif_iso) if gain != 1.0 else None
    try:
        with open_raw(path) as raw:
            if raw.raw_type != rawpy.RawType.Flat:
                log.debug("%s: non-Bayer layout (%s)", path, raw.raw_type)
            white = int(raw.white_level)
            black = _black_levels(raw) if gain != 1.0 else None
            excess = None if offset is None else offset[raw.raw_colors]
            if gain == "auto":
                dark = black if excess is None else black + excess
                level = linear_level(raw.raw_image, dark, white)
                gain = estimate_gain(level, auto_target, max_gain)
            gain = float(gain)
            if black is not None and gain != 1.0:
                # raw_image is a writable view into LibRaw's buffer: amplify before demosaicing.
                raw.raw_image[...] = amplify_mosaic(raw.raw_image, black, white, gain, excess)
            image = raw.postprocess(
                use_camera_wb=True,
                no_auto_bright=True,
                output_color=rawpy.ColorSpace.sRGB,
                gamma=LIBRAW_GAMMA[curve],
                output_bps=bits,
                half_size=half_size,
                # LibRaw's default 0.75 lowers the white level to a bright frame's own maximum:
                # a brightness that depends on the image, which no model can predict.
                adjust_maximum_thr=0.0,
                demosaic_algorithm=demosaic or demosaic_for(raw),
            )
            other = raw.other
            render = RenderParams.from_libraw(raw.camera_whitebalance, raw.color_matrix, curve)
    except (rawpy.LibRawError, rawpy.NotSupportedError, OSError, ValueError) as exc:
        raise RawDecodeError(f"{path}: cannot decode RAW ({_reason(exc)})") from exc
    iso = int(other.iso_speed) if other.iso_speed > 0 else exif_iso
    # LibRaw stores the shutter as float32 (0.1 -> 0.100000001): keep 6 significant digits.
    exposure = float(f"{other.shutter_speed:.6g}") if other.shutter_speed > 0 else None
    meta = RawMeta(exposure, iso, camera, image.shape[1], image.shape[0], render)
    return image, meta, gain
