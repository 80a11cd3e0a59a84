"""The window grid shared by patch cutting and tiled inference."""

import math

import numpy as np
import pytest

from lowlight.windows import cut_windows, reassemble, window_starts


@pytest.mark.parametrize(
    "length, size, stride, expected",
    [
        (256, 100, 50, [0, 50, 100, 150, 156]),
        (200, 100, 50, [0, 50, 100]),
        (100, 100, 50, [0]),
        (60, 100, 50, [0]),
        (101, 100, 50, [0, 1]),
    ],
)
def test_window_starts(length, size, stride, expected):
    assert window_starts(length, size, stride) == expected


@pytest.mark.parametrize("length", [100, 101, 149, 150, 151, 333, 1416])
def test_window_count_formula_and_edge_alignment(length):
    starts = window_starts(length, 100, 50)
    assert len(starts) == math.ceil((length - 100) / 50) + 1
    assert starts[-1] + 100 == length  # the last window touches the edge


def test_windows_cover_every_pixel():
    image = np.zeros((137, 211, 3), np.uint8)
    starts, windows = cut_windows(image, 40, 30)
    covered = np.zeros(image.shape[:2], bool)
    for y, x in starts:
        covered[y : y + 40, x : x + 40] = True
    assert covered.all() and windows.shape == (len(starts), 40, 40, 3)


def test_round_trip_image_patches_image():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (137, 211, 3), dtype=np.uint8)
    starts, windows = cut_windows(image, 40, 30)
    assert np.array_equal(reassemble(starts, windows, image.shape), image)


def test_small_image_is_padded_by_reflection():
    image = np.arange(30 * 20 * 3, dtype=np.uint16).reshape(30, 20, 3)
    starts, windows = cut_windows(image, 32, 16)
    assert starts.tolist() == [[0, 0]] and windows.shape == (1, 32, 32, 3)
    assert np.array_equal(windows[0, :30, :20], image)
    assert np.array_equal(windows[0, 30:, :20], image[::-1][:2])  # mirrored rows
    assert np.array_equal(reassemble(starts, windows, image.shape), image)
