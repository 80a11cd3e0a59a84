"""The window grid shared by patch cutting and tiled inference: where overlapping windows start.

Pure numpy, so that inference can use it without the Parquet code of ``lowlight.patches``.
"""

from __future__ import annotations

import math

import numpy as np


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Starts 0, stride, 2*stride, ... with the last window aligned to the edge.

    ``ceil((length - size) / stride) + 1`` windows, or one when ``length <= size``.
    """
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be positive, got {size}, {stride}")
    if length <= size:
        return [0]
    count = math.ceil((length - size) / stride) + 1
    return [min(i * stride, length - size) for i in range(count)]


def pad_to(image: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad an image smaller than ``size`` along either axis up to ``size``."""
    pad_y, pad_x = max(size - image.shape[0], 0), max(size - image.shape[1], 0)
    if not pad_y and not pad_x:
        return image
    return np.pad(image, ((0, pad_y), (0, pad_x), (0, 0)), mode="symmetric")


def cut_windows(image: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of an HxWxC image: (N x 2 array of (y, x) starts, N x size x size x C)."""
    image = pad_to(image, size)
    ys = window_starts(image.shape[0], size, stride)
    xs = window_starts(image.shape[1], size, stride)
    starts = np.array([(y, x) for y in ys for x in xs], dtype=np.int32)
    windows = np.stack([image[y : y + size, x : x + size] for y, x in starts])
    return starts, windows


def reassemble(starts: np.ndarray, windows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Put windows back in place (later ones overwrite the overlap); the inverse of cut_windows."""
    image = np.zeros(shape, dtype=windows.dtype)
    for (y, x), window in zip(starts, windows, strict=True):
        h, w = min(window.shape[0], shape[0] - y), min(window.shape[1], shape[1] - x)
        image[y : y + h, x : x + w] = window[:h, :w]
    return image
