"""Rendering linear camera RGB the way LibRaw renders a RAW file: white balance, the camera's
colour matrix, clipping, a tone curve. Pure numpy; ``lowlight.models.render`` is the same step
in torch, differentiable, for training.

A packed-mosaic model restores the scene in the camera's own linear RGB and each file's metadata
renders it (DESIGN.md, "colours that travel"), so the network never learns one camera's colours.

LibRaw's ``postprocess(use_camera_wb=True, no_auto_bright=True)`` does, per pixel: subtract the
black level and scale by the white level; multiply by the camera white balance normalised so its
smallest multiplier is 1; clip to 1; apply ``rgb_cam`` (camera -> sRGB primaries, rows summing
to 1 so a neutral stays neutral); clip to [0, 1]; apply the gamma curve, by default BT.709's
(power 1/2.222, toe slope 4.5), which SID's code uses. (``adjust_maximum_thr=0``: LibRaw's default
0.75 lowers the white level to a bright frame's own maximum, a per-image brightness change
nothing at inference could know; lowlight turns it off.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from lowlight.colour import SRGB_GAMMA, linear_to_srgb

# LibRaw's and rawpy's default gamma (power, toe slope): BT.709, as SID rendered its images.
BT709_GAMMA = (2.222, 4.5)
# The tone curves by name, as LibRaw's postprocess(gamma=...) takes them.
LIBRAW_GAMMA = {"bt709": BT709_GAMMA, "srgb": SRGB_GAMMA}
CURVES = tuple(LIBRAW_GAMMA)
VECTOR_SIZE = 12  # RenderParams.vector: white balance (3), then rgb_cam row by row (9)


@dataclass(frozen=True)
class RenderParams:
    """What a file's metadata says about turning its camera RGB into an image."""

    wb: tuple[float, float, float]  # multipliers of camera R, G, B; the smallest is 1
    rgb_cam: tuple[tuple[float, float, float], ...]  # 3x3, camera RGB -> linear sRGB
    curve: str = "bt709"

    @classmethod
    def neutral(cls, curve: str = "bt709") -> RenderParams:
        """No white balance and no colour transform (a camera that sees sRGB)."""
        return cls((1.0, 1.0, 1.0), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), curve)

    @classmethod
    def from_libraw(cls, camera_wb, color_matrix, curve: str = "bt709") -> RenderParams:
        """From rawpy's ``camera_whitebalance`` (4 values, G = 1 or scaled) and ``color_matrix``
        (3x4, its first three columns camera R, G, B)."""
        wb = np.asarray(camera_wb, np.float64)[:3]
        if not np.all(wb > 0):
            wb = np.ones(3)  # no as-shot white balance in the file
        wb = wb / wb.min()
        matrix = np.asarray(color_matrix, np.float64)[:3, :3]
        if not np.any(matrix):
            matrix = np.eye(3)
        return cls(tuple(float(v) for v in wb), tuple(tuple(float(v) for v in r) for r in matrix),
                   curve)  # fmt: skip

    def to_dict(self) -> dict:
        return {"wb": list(self.wb), "rgb_cam": [list(r) for r in self.rgb_cam],
                "curve": self.curve}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> RenderParams:
        return cls(tuple(data["wb"]), tuple(tuple(r) for r in data["rgb_cam"]),
                   data.get("curve", "bt709"))  # fmt: skip

    @property
    def vector(self) -> np.ndarray:
        """12 float32: wb (3) then rgb_cam row by row (9), as patch rows store them."""
        return np.concatenate([self.wb, np.ravel(self.rgb_cam)]).astype(np.float32)


@cache
def power_curve(power: float, slope: float) -> tuple[float, float, float]:
    """(1/power, break point x0, offset a) of the curve y = slope*x below x0 and
    (1 + a) x**(1/power) - a above, continuous with a continuous first derivative."""
    p = 1.0 / power
    lo, hi = 1e-9, 0.5
    for _ in range(200):  # bisection on f(x0) = 1 + slope*x0*(1/p - 1) - slope*x0**(1-p)/p
        mid = 0.5 * (lo + hi)
        if 1 + slope * mid * (1 / p - 1) - slope * mid ** (1 - p) / p > 0:
            lo = mid  # still left of the root (f(0) = 1 > 0)
        else:
            hi = mid
    x0 = 0.5 * (lo + hi)
    return p, x0, slope * x0 * (1 / p - 1)


def bt709(linear: np.ndarray) -> np.ndarray:
    p, x0, a = power_curve(*BT709_GAMMA)
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear < x0, BT709_GAMMA[1] * linear, (1 + a) * linear**p - a)


def tone(linear: np.ndarray, curve: str) -> np.ndarray:
    """A tone curve by name on linear values in [0, 1]."""
    if curve not in CURVES:
        raise ValueError(f"unknown tone curve {curve!r} (known: {', '.join(CURVES)})")
    if curve == "srgb":
        return linear_to_srgb(np.clip(linear, 0.0, 1.0))
    return bt709(linear)


def render(camera_rgb: np.ndarray, params: RenderParams) -> np.ndarray:
    """HxWx3 linear camera RGB (black 0, white 1) -> HxWx3 image in [0, 1], as LibRaw would."""
    balanced = np.clip(camera_rgb * np.asarray(params.wb, np.float32), 0.0, 1.0)
    srgb = balanced @ np.asarray(params.rgb_cam, np.float32).T
    return tone(np.clip(srgb, 0.0, 1.0), params.curve).astype(np.float32)
