"""Full-image inference in overlapping tiles whose borders are context only.

A tile's output near its cut edges differs from the whole-image output (the network sees
padding there instead of the neighbouring pixels); deeper inside, it is the same. So each tile
keeps only its part at least ``overlap / 2`` pixels from every cut edge, and neighbouring tiles
share ``overlap`` pixels of input. Tiles start on multiples of the network's own multiple
(``2**depth``), so their pooling grids are the whole image's: with the default overlap
(``default_overlap``) the shipped model's tiled output is its bare forward pass's to within
0.1/255 (tests/test_tiling.py), with no blending and no seams, and its activations stay bounded
by the tile, whatever the image.
Tiles of a few hundred pixels are also faster per pixel than one pass over a large frame, whose
activations do not fit the CPU's caches (BENCHMARKS.md, "inference").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import pairwise

import numpy as np

# A batch of tiles (N x C x h x w, float32) -> the model's output (N x C' x s*h x s*w).
TileFn = Callable[[np.ndarray], np.ndarray]


def axis_plan(
    length: int, tile: int, overlap: int, multiple: int = 1
) -> tuple[int, list[tuple[int, int, int]]]:
    """Tiles along one axis: (their size, at most ``tile``; a (tile start, kept start, kept
    end) per tile). Tiles start on multiples of ``multiple``, are as few as ``tile`` allows and
    spread evenly (no tile mostly repeats its neighbour), and their kept parts cover
    [0, length) once, each at least ``overlap // 2`` from the tile's cut edges. The last tile
    may run past ``length`` by less than ``multiple`` (padded as the whole-image pass pads)."""
    stride = (tile - overlap) // multiple * multiple
    if stride <= 0:
        raise ValueError(f"tile {tile} with overlap {overlap} leaves no stride that is a multiple "
                         f"of {multiple}: use a larger tile or a smaller overlap")  # fmt: skip
    if length <= tile:
        return length, [(0, 0, length)]
    count = 1 + math.ceil((length - tile) / stride)
    even = math.ceil((length - overlap) / (count * multiple)) * multiple
    if even + overlap <= tile:  # the same count of smaller tiles
        stride, tile = even, even + overlap
    starts = [i * stride for i in range(count - 1)]
    starts.append(math.ceil((length - tile) / multiple) * multiple)
    # each boundary in the middle of the two tiles' shared input
    cuts = [0] + [(start + nxt + tile) // 2 for start, nxt in pairwise(starts)] + [length]
    return tile, list(zip(starts, cuts, cuts[1:], strict=False))  # len(cuts) = count + 1


CONTEXT = 12  # the default overlap, in multiples of the network's own (2**depth)


def default_overlap(multiple: int) -> int:
    """The overlap that makes tiles the whole-image pass: the U-Net's reach grows with
    ``2**depth``; 12x it put the shipped models (depth 3 and 4) within 0.1/255 of the bare
    pass, 8x left up to 1.5/255 (tests/test_tiling.py)."""
    return CONTEXT * multiple


def tile_grid(
    height: int, width: int, tile: int, overlap: int | None, multiple: int = 1
) -> tuple[tuple[int, int], list[tuple[tuple[int, int, int], tuple[int, int, int]]]]:
    """The tiles' (height, width) and every tile's (y plan, x plan), from ``axis_plan``;
    ``overlap`` None: ``default_overlap(multiple)``."""
    overlap = default_overlap(multiple) if overlap is None else overlap
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    tile_h, ys = axis_plan(height, tile, overlap, multiple)
    tile_w, xs = axis_plan(width, tile, overlap, multiple)
    return (tile_h, tile_w), [(y, x) for y in ys for x in xs]


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _cut(chw: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    """The tile at (y, x) of size (h, w), reflect-padded where it runs past the image."""
    part = chw[:, y : y + h, x : x + w]
    pad_h, pad_w = h - part.shape[1], w - part.shape[2]
    if pad_h or pad_w:
        mode = "reflect" if pad_h < part.shape[1] and pad_w < part.shape[2] else "edge"
        part = np.pad(part, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)
    return part


def run_tiles(
    image: np.ndarray,
    model: TileFn,
    tile: int,
    overlap: int | None,
    batch: int = 4,
    multiple: int = 1,
) -> np.ndarray:
    """Run ``model`` over an HxWxC float image tile by tile; returns the assembled output.

    A model whose output is ``s`` times larger than its input (packed Bayer in, RGB out) gives
    an (s*H)x(s*W)xC' image. ``multiple``: the network's own (``2**depth``); tiles start on it.
    ``overlap`` None: ``default_overlap(multiple)``.
    """
    height, width = image.shape[:2]
    (h, w), grid = tile_grid(height, width, tile, overlap, multiple)
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    output: np.ndarray | None = None
    for group in _batches(grid, batch):
        tiles = np.stack([_cut(chw, ys[0], xs[0], h, w) for ys, xs in group])
        results = model(tiles)
        scale = results.shape[-1] // tiles.shape[-1]
        if output is None:
            output = np.empty((height * scale, width * scale, results.shape[1]), np.float32)
        for ((y, y0, y1), (x, x0, x1)), result in zip(group, results, strict=True):
            kept = result[
                :, scale * (y0 - y) : scale * (y1 - y), scale * (x0 - x) : scale * (x1 - x)
            ]
            output[scale * y0 : scale * y1, scale * x0 : scale * x1] = kept.transpose(1, 2, 0)
    return output


def pad_to_multiple(tiles: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad N x C x H x W tiles so H and W are multiples (for exported graphs)."""
    height, width = tiles.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "edge"
        tiles = np.pad(tiles, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode=mode)
    return tiles, height, width
