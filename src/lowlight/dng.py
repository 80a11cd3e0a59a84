"""Write Bayer RAW frames as DNG files that LibRaw (rawpy) reads back exactly."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

from lowlight.storage import atomic_path
from lowlight.xtrans import xtrans_pattern

# XYZ (D65) -> linear sRGB (IEC 61966-2-1). The default ColorMatrix1, for a "camera" that sees
# linear sRGB: LibRaw then maps camera RGB to sRGB with the identity. The synthetic Sony writes
# its profile's own matrix instead (lowlight.synth).
XYZ_TO_SRGB = np.array(
    [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]
)


@dataclass(frozen=True)
class DngMeta:
    black_level: int
    white_level: int
    as_shot_neutral: tuple[float, float, float]
    exposure: float  # seconds
    iso: int
    fnumber: float = 8.0
    make: str = "lowlight"
    model: str = "synthetic RGGB"
    # The 2x2 layout (RGGB, GRBG, GBRG or BGGR) or an X-Trans 6x6 one: its 36 colours in
    # reading order (lowlight.xtrans.xtrans_pattern).
    cfa: str = "RGGB"
    orientation: int = 1  # TIFF/EXIF orientation: 1 upright, 3 180, 6 90 CW, 8 90 CCW
    # ColorMatrix1 (CalibrationIlluminant1 D65): XYZ -> camera RGB, 3x3 row by row.
    color_matrix: tuple[float, ...] = tuple(float(v) for v in XYZ_TO_SRGB.ravel())


def _rational(value: float, denominator: int = 10000) -> list[int]:
    frac = Fraction(value).limit_denominator(denominator)
    return [frac.numerator, frac.denominator]


def write_dng(path: Path, bayer: np.ndarray, meta: DngMeta) -> Path:
    """Write a Bayer or X-Trans mosaic (uint16, HxW, layout ``meta.cfa``) as an uncompressed
    DNG, atomically. LibRaw reads a 6x6 layout back as X-Trans (a 6x6 ``raw_pattern``), and
    demosaics it only from 512x512 up (xtrans_interpolate's tile; smaller: LibRawIOError)."""
    if bayer.dtype != np.uint16 or bayer.ndim != 2:
        raise ValueError(f"expected an HxW uint16 mosaic, got {bayer.dtype} {bayer.shape}")
    height, width = bayer.shape
    tags = DNGTags()
    tags.set(Tag.ImageWidth, width)
    tags.set(Tag.ImageLength, height)
    tags.set(Tag.TileWidth, width)
    tags.set(Tag.TileLength, height)
    tags.set(Tag.Orientation, meta.orientation)
    tags.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    tags.set(Tag.SamplesPerPixel, 1)
    tags.set(Tag.BitsPerSample, 16)
    if len(meta.cfa) == 4:
        tags.set(Tag.CFARepeatPatternDim, [2, 2])
        tags.set(Tag.CFAPattern, getattr(CFAPattern, meta.cfa))
    else:  # TIFF/EP CFAPattern: 0 red, 1 green, 2 blue, row by row
        tags.set(Tag.CFARepeatPatternDim, [6, 6])
        tags.set(Tag.CFAPattern, xtrans_pattern(meta.cfa).colors.ravel().tolist())
    tags.set(Tag.BlackLevel, meta.black_level)
    tags.set(Tag.WhiteLevel, meta.white_level)
    if len(meta.color_matrix) != 9:
        raise ValueError(f"expected a 3x3 colour matrix (9 values), got {len(meta.color_matrix)}")
    tags.set(Tag.ColorMatrix1, [_rational(v) for v in meta.color_matrix])
    tags.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    tags.set(Tag.AsShotNeutral, [_rational(v) for v in meta.as_shot_neutral])
    tags.set(Tag.BaselineExposure, [[0, 100]])
    tags.set(Tag.ExposureTime, [_rational(meta.exposure, 100000)])
    tags.set(Tag.FNumber, [_rational(meta.fnumber, 100)])
    tags.set(Tag.PhotographicSensitivity, meta.iso)
    tags.set(Tag.Make, meta.make)
    tags.set(Tag.Model, meta.model)
    tags.set(Tag.UniqueCameraModel, f"{meta.make} {meta.model}")
    tags.set(Tag.DNGVersion, DNGVersion.V1_4)
    tags.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)

    writer = RAW2DNG()
    writer.options(tags, path="", compress=False)
    data = writer.convert(bayer, filename="")
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(data))
    return path
