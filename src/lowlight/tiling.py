"""Full-image inference in overlapping tiles, blended with a raised-cosine window.

The seed stitched patches and saw noise at their borders. Here each tile's output is weighted
by a window that falls smoothly to near zero over the overlap, and the weights are normalised,
so there is no step at tile borders and the result approaches the whole-image output. Model
activations stay bounded by the tile size, whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from lowlight.windows import window_starts

# A batch of tiles (N x C x h x w, float32) -> the model's output of the same shape.
TileFn = Callable[[np.ndarray], np.ndarray]


def ramp_window(length: int, overlap: int) -> np.ndarray:
    """1-D weights: a raised-cosine rise over ``overlap`` samples at each end, 1 in between.

    Never exactly zero, so a pixel covered by a single tile (an image border) keeps its value.
    """
    weights = np.ones(length, np.float32)
    ramp = min(overlap, length // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        weights[:ramp] = rise
        weights[length - ramp :] = rise[::-1]
    return weights


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(y, x, h, w) of tiles covering the image, consecutive tiles sharing ``overlap`` pixels."""
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    stride = tile - overlap
    ys = window_starts(height, tile, stride)
    xs = window_starts(width, tile, stride)
    return [(y, x, min(tile, height), min(tile, width)) for y in ys for x in xs]


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def blend_tiles(
    image: np.ndarray, model: TileFn, tile: int, overlap: int, batch: int = 4
) -> np.ndarray:
    """Run ``model`` over an HxWxC float image tile by tile; returns the blended output.

    A model whose output is ``s`` times larger than its input (packed Bayer in, RGB out) gives
    an (s*H)x(s*W)xC' image; tiles and overlaps are scaled alike.
    """
    height, width = image.shape[:2]
    grid = tile_grid(height, width, tile, overlap)
    output: np.ndarray | None = None
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    scale = 1
    for group in _batches(grid, batch):
        tiles = np.stack([chw[:, y : y + h, x : x + w] for y, x, h, w in group])
        results = model(tiles)
        if output is None:
            scale = results.shape[-1] // tiles.shape[-1]
            output = np.zeros((height * scale, width * scale, results.shape[1]), np.float32)
            weight = np.zeros((height * scale, width * scale, 1), np.float32)
        for (y, x, h, w), result in zip(group, results, strict=True):
            y, x, h, w, lap = y * scale, x * scale, h * scale, w * scale, overlap * scale
            window = np.outer(ramp_window(h, lap), ramp_window(w, lap))[..., None]
            output[y : y + h, x : x + w] += result.transpose(1, 2, 0) * window
            weight[y : y + h, x : x + w] += window
    return output / weight


def pad_to_multiple(tiles: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad N x C x H x W tiles so H and W are multiples (for exported graphs)."""
    height, width = tiles.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "edge"
        tiles = np.pad(tiles, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode=mode)
    return tiles, height, width
