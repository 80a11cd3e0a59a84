"""PNG bytes that depend only on the pixels (issue 25): lowlight filters and deflates its PNGs
itself (numpy + the libdeflate of the pinned `deflate` wheel) instead of OpenCV's encoder,
which deflates through the machine's own libz, so a converted folder hashes the same on every
machine and the committed dvc.lock holds."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from lowlight import imageio


def pixels(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A fixed image with smooth parts and noise, from an integer formula (no RNG, no floats)."""
    y, x, c = np.indices(shape, dtype=np.int64)
    top = np.iinfo(dtype).max
    return ((y * 7919 + x * 104729 + c * 1299709) ** 2 % 65521 * (top // 65521 + 1)
            // (1 + (x % 3)) % (top + 1)).astype(dtype)  # fmt: skip


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [3, 4])
def test_png_bytes_read_back_exactly_by_opencv(dtype, channels):
    # more rows than one filtered block, odd sizes
    image = pixels((imageio._PNG_ROWS + 37, 53, channels), dtype)
    back = cv2.imdecode(np.frombuffer(imageio.png_bytes(image), np.uint8), cv2.IMREAD_UNCHANGED)
    order = [2, 1, 0] if channels == 3 else [2, 1, 0, 3]  # OpenCV reads BGR(A)
    np.testing.assert_array_equal(back, image[..., order])


def test_the_pipeline_png_writers_round_trip(tmp_path):
    rgb = pixels((40, 56, 3), np.uint16)
    imageio.write_image(tmp_path / "a.png", rgb, "png16")
    np.testing.assert_array_equal(imageio.read_image(tmp_path / "a.png"), rgb)
    rgb8 = pixels((40, 56, 3), np.uint8)
    np.testing.assert_array_equal(imageio.decode_image(imageio.encode(rgb8, "png")), rgb8)
    planes = (pixels((20, 28, 4), np.uint16).astype(np.float32) / 65535) * 2 - 1
    imageio.write_packed(tmp_path / "p.png", planes)
    stored = imageio.read_packed(tmp_path / "p.png")
    np.testing.assert_array_equal(stored, imageio.encode_signed16(planes))


def test_png_bytes_are_the_same_on_every_machine():
    """The bytes of a fixed image, pinned: they depend on the pixels, the filter and
    libdeflate's version only. A change here (a new `deflate` wheel, another PNG_LEVEL) changes
    every converted file: `make demo` and commit dvc.lock with it."""
    data = imageio.png_bytes(pixels((300, 200, 3), np.uint16))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert hashlib.sha256(data).hexdigest() == GOLDEN


GOLDEN = "7ef68dc869f830baec48677e258dad5504fb1b568f3cd6165a3db2140d6c4012"
