"""Fujifilm X-Trans mosaics: the 6x6 colour pattern, SID's 9-channel packing and its inverse.

SID's Fuji network (Chen et al., "Learning to See in the Dark", CVPR 2018; ``pack_raw`` in its
``train_Fuji.py``) packs an X-Trans mosaic into 9 channels at a third of the size: each packed
pixel holds the nine pixels of one 3x3 cell of the 6x6 period (2 red, 5 green, 2 blue), and
the network's pixel shuffle x3 turns 27 output channels back into full-size RGB. SID wrote the
positions down for its own X-T2 files' phase; here they follow from each file's own pattern,
so that the channels mean the same colours whatever the phase: R, R, G, G, G, G, G, B, B, each
colour's pixels in reading order within their cell (at SID's phase that is SID's channels in
the order 0, 3, 1, 5, 6, 7, 8, 2, 4).

At 5 of the 9 cell alignments every 3x3 cell holds 2 R, 5 G and 2 B. At the other 4 some
cells hold 3 of one and 1 of the other (e.g. GRG/GBG/RGR); there the surplus pixel packs into
the neighbouring cell of the same 6x6 block that lacks it (the assignment nearest to the cells'
centres), so the packing stays an exact permutation of each 6x6 block and the mosaic is only
ever cropped at its end, as ``raw.pack_bayer`` crops: the packed array x3 lines up with the
file's RGB rendering from the top-left corner.

Pure numpy, like ``raw.pack_bayer``'s array code; the callers read the pattern from LibRaw
(``raw_pattern`` or ``raw_colors_visible`` and ``color_desc``), never a hard-coded phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from lowlight.windows import window_starts

PERIOD = 6  # the X-Trans pattern repeats every 6 pixels down and across
CELL = 3  # one packed pixel per 3x3 cell (SID's Fuji packing)
PACKED_PERIOD = PERIOD // CELL  # the 6x6 period in packed pixels: 2
# Channel colours of packed X-Trans arrays, the same at every phase.
XTRANS_ORDER = "RRGGGGGBB"
# An X-Trans 6x6 block holds 8 red, 20 green and 8 blue (Fujifilm's layout; LibRaw's
# xtrans_interpolate refuses patterns far from these counts).
_COUNTS = {"R": 8, "G": 20, "B": 8}


@dataclass(frozen=True)
class XTransPattern:
    """One file's X-Trans layout at its top-left pixel, and how its 6x6 blocks pack.

    ``letters``: the 36 colours ("R", "G", "B") in reading order. ``source[qy, qx, ch]``: the
    position (row * 6 + col) in the 6x6 block whose pixel becomes channel ``ch`` of the block's
    packed pixel (qy, qx).
    """

    letters: str
    source: np.ndarray = field(repr=False, compare=False)

    @property
    def colors(self) -> np.ndarray:
        """The 6x6 colour indices 0 R, 1 G, 2 B: LibRaw's numbering for X-Trans (and the DNG
        CFAPattern values)."""
        return np.array(["RGB".index(c) for c in self.letters], dtype=np.uint8).reshape(6, 6)


def xtrans_pattern(colors: np.ndarray | str, desc: str | bytes = "RGB") -> XTransPattern:
    """The X-Trans layout of a file from LibRaw's colour indices and their names.

    ``colors``: ``raw_pattern`` (6x6) or the whole ``raw_colors_visible`` map (checked to repeat
    every 6 pixels), indices into ``desc`` (``color_desc``, e.g. b"RGBG"); or the 36 letters in
    reading order, as a noise profile's ``camera.cfa`` holds them. ValueError, naming what is
    wrong, for anything but an X-Trans layout (a Bayer sensor, a wrong size, missing colours).
    """
    if isinstance(colors, str):
        letters = colors.upper()
        if len(letters) != PERIOD * PERIOD:
            raise ValueError(
                f"not a 6x6 X-Trans pattern: {len(letters)} colours, expected 36 ({colors!r})"
            )
    else:
        letters = _letters(np.asarray(colors), desc.decode() if isinstance(desc, bytes) else desc)
    return _pattern(letters)


def _letters(colors: np.ndarray, desc: str) -> str:
    """LibRaw's colour indices as letters, checked to repeat with the 6x6 period."""
    if colors.ndim != 2 or colors.shape[0] < PERIOD or colors.shape[1] < PERIOD:
        raise ValueError(f"not a 6x6 X-Trans pattern: colour indices of shape {colors.shape}")
    block = colors[:PERIOD, :PERIOD]
    reps = (-(-colors.shape[0] // PERIOD), -(-colors.shape[1] // PERIOD))
    if not np.array_equal(np.tile(block, reps)[: colors.shape[0], : colors.shape[1]], colors):
        raise ValueError("not an X-Trans sensor: the colour layout does not repeat every 6 pixels")
    if block.min() < 0 or block.max() >= len(desc):
        raise ValueError(f"colour indices {sorted(set(block.ravel().tolist()))} outside {desc!r}")
    return "".join(desc[int(i)] for i in block.ravel())


@lru_cache(maxsize=64)
def _pattern(letters: str) -> XTransPattern:
    counts = {c: letters.count(c) for c in "RGB"}
    if sum(counts.values()) != len(letters) or counts != _COUNTS:
        raise ValueError(f"not an X-Trans pattern: {counts['R']} R, {counts['G']} G, "
                         f"{counts['B']} B in 6x6 ({letters!r}); X-Trans has 8, 20, 8")  # fmt: skip
    grid = np.array(list(letters)).reshape(PERIOD, PERIOD)
    for name, lines in (("row", grid), ("column", grid.T)):
        for i, line in enumerate(lines):
            if set(line) != {"R", "G", "B"}:
                raise ValueError(f"not an X-Trans pattern: {name} {i} lacks a colour ({letters!r})")
    source = _assign(grid)
    source.setflags(write=False)
    return XTransPattern(letters, source)


def _assign(grid: np.ndarray) -> np.ndarray:
    """Each colour's pixels of a 6x6 block given out to its four 3x3 cells, XTRANS_ORDER's count
    to each, nearest to the cells' centres first (every pixel in its own cell where the cells
    hold 2 R, 5 G, 2 B); within a cell and colour, reading order."""
    from scipy.optimize import linear_sum_assignment

    centres = [(CELL * qy + 1, CELL * qx + 1) for qy in range(2) for qx in range(2)]
    source = np.zeros((2, 2, len(XTRANS_ORDER)), dtype=np.intp)
    for colour in "RGB":
        positions = np.argwhere(grid == colour)
        slots = [q for q in range(4) for _ in range(XTRANS_ORDER.count(colour))]
        cost = np.array([[(r - centres[q][0]) ** 2 + (c - centres[q][1]) ** 2 for q in slots]
                         for r, c in positions])  # fmt: skip
        pixels, chosen = linear_sum_assignment(cost)
        first = XTRANS_ORDER.index(colour)
        for q in range(4):
            picked = [positions[p] for p, s in zip(pixels, chosen, strict=True) if slots[s] == q]
            mine = sorted(int(r) * PERIOD + int(c) for r, c in picked)
            source[q // 2, q % 2, first : first + len(mine)] = mine
    return source


def pack_xtrans(mosaic: np.ndarray, pattern: XTransPattern) -> np.ndarray:
    """An HxW X-Trans mosaic -> (H/3, W/3, 9), channels XTRANS_ORDER, the mosaic's dtype.

    Rows and columns past the last whole 6x6 block are dropped (at the end only). Normalise
    before or after packing as ``raw.pack_bayer`` does (black per colour, white, gain, clip to
    [-1, 1]): the packing only moves pixels.
    """
    if mosaic.ndim != 2:
        raise ValueError(f"expected an HxW mosaic, got shape {mosaic.shape}")
    rows, cols = mosaic.shape[0] // PERIOD, mosaic.shape[1] // PERIOD
    if not rows or not cols:
        raise ValueError(f"mosaic {mosaic.shape} is smaller than one 6x6 X-Trans block")
    blocks = mosaic[: rows * PERIOD, : cols * PERIOD].reshape(rows, PERIOD, cols, PERIOD)
    blocks = blocks.transpose(0, 2, 1, 3).reshape(rows, cols, PERIOD * PERIOD)
    cells = blocks[..., pattern.source]  # rows, cols, 2, 2, 9
    channels = len(XTRANS_ORDER)
    return cells.transpose(0, 2, 1, 3, 4).reshape(2 * rows, 2 * cols, channels)


def unpack_xtrans(planes: np.ndarray, pattern: XTransPattern) -> np.ndarray:
    """The inverse of ``pack_xtrans``: (2h, 2w, 9) -> the (6h, 6w) mosaic."""
    rows, cols = planes.shape[0] // 2, planes.shape[1] // 2
    if planes.shape != (2 * rows, 2 * cols, len(XTRANS_ORDER)):
        raise ValueError(f"expected an (even, even, 9) packed X-Trans array, got {planes.shape}")
    blocks = planes.reshape(rows, 2, cols, 2, -1).transpose(0, 2, 1, 3, 4).reshape(rows, cols, -1)
    mosaic = blocks[..., np.argsort(pattern.source.ravel())]  # back to reading order in the block
    mosaic = mosaic.reshape(rows, cols, PERIOD, PERIOD).transpose(0, 2, 1, 3)
    return mosaic.reshape(rows * PERIOD, cols * PERIOD)


def align_window(y: int, x: int) -> tuple[int, int]:
    """The window origin at or before packed (y, x) that starts a 6x6 block: a window cut
    there holds the same pattern phase as the whole file (full-size origin 3y, 3x)."""
    return y - y % PACKED_PERIOD, x - x % PACKED_PERIOD


def aligned_starts(length: int, size: int, stride: int) -> list[int]:
    """``windows.window_starts`` on the 6x6 period (packed coordinates): ``size`` and
    ``stride`` must be even; ``length`` (a packed axis, even by construction) then ends the
    last window at the edge as before."""
    if size % PACKED_PERIOD or stride % PACKED_PERIOD:
        raise ValueError(
            f"X-Trans windows need an even packed size and stride (the 6x6 period is "
            f"{PACKED_PERIOD} packed pixels), got size {size}, stride {stride}"
        )
    starts = window_starts(length - length % PACKED_PERIOD, size, stride)
    return sorted({align_window(s, 0)[0] for s in starts})
