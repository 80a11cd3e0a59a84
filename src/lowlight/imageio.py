"""The pipeline's images: 8-bit JPEG and 16-bit PNG, RGB in memory, written atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lowlight.errors import DatasetError
from lowlight.storage import atomic_path

SUFFIX = {"jpeg": ".jpg", "png16": ".png"}
BITS = {"jpeg": 8, "png16": 16}


def encode(image: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    """Encode an HxWx3 RGB array: ``jpeg`` needs uint8, ``png16`` uint16."""
    expected = np.uint8 if fmt == "jpeg" else np.uint16
    if image.dtype != expected or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{fmt} needs HxWx3 {np.dtype(expected)}, got {image.dtype} {image.shape}")
    bgr = np.ascontiguousarray(image[..., ::-1])
    if fmt == "jpeg":
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return data.tobytes()


def write_image(path: Path, image: np.ndarray, fmt: str, quality: int = 95) -> Path:
    data = encode(image, fmt, quality)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def read_image(path: Path) -> np.ndarray:
    """HxWx3 RGB, uint8 or uint16 as stored."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYCOLOR)
    if image is None:
        raise DatasetError(f"{path}: missing or not a readable image")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., 2::-1])
