"""Choosing the torch device, for training and inference alike (no training code imported)."""

from __future__ import annotations

import torch

from lowlight.errors import LowlightError


class DeviceError(LowlightError):
    """A device that was asked for but is not there."""


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when torch sees it, else CPU), ``cpu`` or ``cuda``."""
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda, but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
