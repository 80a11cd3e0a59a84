"""The pipeline's images: 8-bit JPEG and 16-bit PNG, RGB in memory, written atomically.

PNG files are written by ``png_bytes``, not OpenCV: OpenCV's PNG encoder deflates through the
machine's own libz (the system's zlib 1.2, 1.3, or zlib-ng, each with its own matches and CPU
dispatch), so the same pixels gave other bytes on another machine and DVC saw a new converted
folder (issue 25). ``png_bytes`` filters in numpy and deflates with the libdeflate inside the
pinned ``deflate`` wheel, whose output depends only on the pixels and its version. JPEG stays
with OpenCV's bundled libjpeg-turbo, whose SIMD paths give the same bytes as its C code for the
default accurate DCT.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import cv2
import deflate
import numpy as np

from lowlight import storage
from lowlight.errors import DatasetError
from lowlight.storage import atomic_path

SUFFIX = {"jpeg": ".jpg", "png16": ".png"}
# Images convert takes as sources beside RAW files (any case).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})  # what OpenCV decodes
BITS = {"jpeg": 8, "png16": 16}


def encode(image: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    """Encode an HxWx3 RGB array: ``jpeg`` and ``png`` need uint8, ``png16`` uint16."""
    expected = np.uint16 if fmt == "png16" else np.uint8
    if image.dtype != expected or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{fmt} needs HxWx3 {np.dtype(expected)}, got {image.dtype} {image.shape}")
    if fmt != "jpeg":
        return png_bytes(image)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # one pass, faster than a strided numpy copy
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return data.tobytes()


PNG_LEVEL = 6  # libdeflate's default: smaller than OpenCV's zlib level 3 at a similar speed
_PNG_ROWS = 256  # rows filtered at a time: bounded memory on a full-size frame


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def paeth_filtered(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """PNG's Paeth filter (type 4) of byte rows (N x W) whose previous row is ``above``: each
    byte minus the one of left, up and up-left closest to left + up - up-left."""
    up = np.vstack([above[None], rows[:-1]]).astype(np.int16)
    x = rows.astype(np.int16)
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    up_left = np.zeros_like(x)
    up_left[:, bpp:] = up[:, :-bpp]
    p = left + up - up_left
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
    predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    return ((x - predictor) & 0xFF).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """An HxWxC uint8/uint16 array (C 1: grey, 3: RGB, 4: RGBA, in the file's order) as PNG
    bytes that depend only on the pixels: every row Paeth-filtered, one libdeflate zlib
    stream."""
    height, width, channels = pixels.shape
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}[pixels.dtype]
    data = np.ascontiguousarray(pixels, dtype=">u2" if depth == 16 else np.uint8)
    rows = data.view(np.uint8).reshape(height, -1)
    bpp = channels * depth // 8
    parts, above = [], np.zeros(rows.shape[1], np.uint8)
    for start in range(0, height, _PNG_ROWS):
        block = rows[start : start + _PNG_ROWS]
        filtered = paeth_filtered(block, above, bpp)
        parts.append(np.hstack([np.full((len(block), 1), 4, np.uint8), filtered]).tobytes())
        above = block[-1]
    colour = {1: 0, 3: 2, 4: 6}[channels]  # greyscale, truecolour, truecolour with alpha
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", header),
        _chunk(b"IDAT", deflate.zlib_compress(b"".join(parts), PNG_LEVEL)),
        _chunk(b"IEND", b""),
    ])  # fmt: skip


def write_image(path: Path, image: np.ndarray, fmt: str, quality: int = 95) -> Path:
    data = encode(image, fmt, quality)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def decode_image(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Encoded JPEG/PNG bytes -> HxWx3 RGB, uint8 or uint16 as stored (grey is repeated to
    three channels, alpha dropped)."""
    if not data:
        raise DatasetError(f"{source}: empty file (0 bytes), not a JPEG/PNG image")
    try:
        flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYCOLOR
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:
        raise DatasetError(f"{source}: not a readable JPEG/PNG image ({exc.msg})") from None
    if image is None:
        raise DatasetError(f"{source}: not a readable JPEG/PNG image")
    if image.ndim == 3 and image.shape[2] <= 2:  # grey, grey + alpha
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"{source}: unsupported image layout {image.dtype} {image.shape}")
    return np.ascontiguousarray(image[..., 2::-1])


def read_image(loc: storage.Location) -> np.ndarray:
    """HxWx3 RGB from a local path or URI, uint8 or uint16 as stored."""
    try:
        data = storage.read_bytes(loc)
    except (FileNotFoundError, OSError) as exc:
        raise DatasetError(f"{loc}: missing or unreadable image ({exc})") from None
    return decode_image(data, str(loc))


# Packed Bayer values (0 = black, 1 = white) are signed: read noise leaves half the dark pixels
# below black, and clipping them at 0 would lift every dark mean (issue 23). 16-bit files store
# v in [-1, 1] as offset binary, round(v * 32767) + 32768: black and white exact, steps of
# 3.1e-5 (under 0.01 DN of a 14-bit sensor at x100). The a7S II's read noise at x250 reaches
# -1.6 in a handful of pixels (synthetic frames): the clip at -1 moves their mean by < 1e-4.
SIGNED_FLOOR = -1.0
SIGNED16 = "signed16"  # the encoding's name, in patch files' metadata
_SIGNED_STEP, _SIGNED_ZERO = 32767, 32768


def encode_signed16(values: np.ndarray) -> np.ndarray:
    """Signed float values -> uint16 offset binary (outside [-1, 1] clipped)."""
    scaled = np.clip(values, SIGNED_FLOOR, 1.0).astype(np.float32) * np.float32(_SIGNED_STEP)
    return (np.rint(scaled) + _SIGNED_ZERO).astype(np.uint16)


def decode_signed16(stored: np.ndarray) -> np.ndarray:
    """``encode_signed16``'s uint16 -> float32 in [-1, 1]."""
    signed = stored.astype(np.float32) - np.float32(_SIGNED_ZERO)
    return signed * np.float32(1 / _SIGNED_STEP)


def write_packed(path: Path, planes: np.ndarray) -> Path:
    """A packed mosaic (HxWxC float, signed: ``encode_signed16``) as a 16-bit PNG, channels
    kept in order: C 4 (Bayer) as a 4-channel PNG (OpenCV writes and reads 4 channels back
    unswapped), C 9 (X-Trans) as a 3Hx3W grey PNG, each packed pixel's channels a 3x3 cell
    in reading order (PNG holds at most 4 channels)."""
    data = encode_signed16(planes)
    # OpenCV reads a 4-channel PNG as BGRA: the file holds channels 2, 1, 0, 3
    bayer = data.shape[2] == BAYER_CHANNELS
    data = data[..., [2, 1, 0, 3]] if bayer else cells_of(data)[..., None]
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(data))
    return path


BAYER_CHANNELS = 4


def cells_of(planes: np.ndarray) -> np.ndarray:
    """HxWx(k*k) -> (kH)x(kW): each pixel's channels as a k x k cell (a depth-to-space)."""
    height, width, channels = planes.shape
    side = math.isqrt(channels)
    if side * side != channels:
        raise ValueError(f"{channels} channels are not a square number of cells")
    cells = planes.reshape(height, width, side, side).transpose(0, 2, 1, 3)
    return cells.reshape(height * side, width * side)


def planes_of(cells: np.ndarray, channels: int) -> np.ndarray:
    """The inverse of ``cells_of``."""
    side = math.isqrt(channels)
    height, width = cells.shape[0] // side, cells.shape[1] // side
    planes = cells.reshape(height, side, width, side).transpose(0, 2, 1, 3)
    return planes.reshape(height, width, channels)


def read_packed(loc: storage.Location, channels: int = BAYER_CHANNELS) -> np.ndarray:
    """A packed mosaic PNG (``write_packed``) -> HxWxC uint16 as stored (``decode_signed16``
    gives the values)."""
    what = "packed Bayer" if channels == BAYER_CHANNELS else f"packed {channels}-channel"
    try:
        data = storage.read_bytes(loc)
    except (FileNotFoundError, OSError) as exc:
        raise DatasetError(f"{loc}: missing or unreadable {what} file ({exc})") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if channels == BAYER_CHANNELS:
        if image is None or image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.uint16:
            raise DatasetError(f"{loc}: not a packed Bayer PNG (16-bit, 4 channels)")
        return image
    side = math.isqrt(channels)
    if (image is None or image.ndim != 2 or image.dtype != np.uint16
            or image.shape[0] % side or image.shape[1] % side):  # fmt: skip
        raise DatasetError(f"{loc}: not a {what} PNG (16-bit grey, {side}x{side} cells)")
    return planes_of(image, channels)


def to_dtype(image: np.ndarray, dtype: str) -> np.ndarray:
    """Rescale between 8 and 16 bits (x257 keeps white white), or return as is."""
    target = np.dtype(dtype)
    if image.dtype == target:
        return image
    if image.dtype == np.uint8 and target == np.uint16:
        return image.astype(np.uint16) * 257
    if image.dtype == np.uint16 and target == np.uint8:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise ValueError(f"cannot convert {image.dtype} to {target}")
