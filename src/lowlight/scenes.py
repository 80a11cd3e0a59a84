"""Procedural scenes: dead-leaves images, natural-image statistics without any photo.

The dead-leaves model (Matheron 1968; Lee, Mumford & Huang, IJCV 2001) stacks random occluding
disks whose radii follow a power law ~ r**-3, which gives the scale invariance and the edge
statistics of natural images. Achddou et al. ("Synthetic images as a regularity prior for image
restoration neural networks", SSVM 2021) trained denoisers on such images alone and came close to
training on natural photos; textured leaves (gradients, gratings, smooth noise) narrow the gap.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

# Radii as fractions of the shorter image side; at least one pixel.
R_MIN = 0.005
R_MAX = 0.5
# Disks per image: enough for their areas to add up to COVERAGE images, so a pixel is left to
# the background with probability ~ exp(-COVERAGE).
COVERAGE = 4.0
# Leaf fills: flat colour, linear gradient, sinusoidal grating, smoothed noise.
FILLS = ("flat", "gradient", "grating", "noise")
FILL_WEIGHTS = (0.4, 0.2, 0.2, 0.2)


def power_law_radii(
    n: int, r_min: float, r_max: float, rng: np.random.Generator, exponent: float = 3.0
) -> np.ndarray:
    """``n`` radii with density ~ r**-exponent on [r_min, r_max] (inverse-CDF sampling)."""
    a = 1.0 - exponent  # the CDF is linear in r**a
    u = rng.uniform(0.0, 1.0, n)
    return (r_min**a + u * (r_max**a - r_min**a)) ** (1.0 / a)


def _disk_count(area: float, r_min: float, r_max: float) -> int:
    """Disks whose areas add up to COVERAGE times ``area`` (where their centres fall)."""
    # E[r**2] under the r**-3 density: 2 ln(r_max / r_min) / (r_min**-2 - r_max**-2).
    mean_r2 = 2.0 * np.log(r_max / r_min) / (r_min**-2 - r_max**-2)
    return int(np.ceil(COVERAGE * area / (np.pi * mean_r2)))


def leaf_labels(size: tuple[int, int], centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """HxW index of the visible disk per pixel (disk i covers the ones before it; -1 = none)."""
    height, width = size
    labels = np.full((height, width), -1, dtype=np.int32)
    for i, ((cy, cx), r) in enumerate(zip(centres, radii, strict=True)):
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, height)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, width)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = (np.arange(y0, y1) - cy)[:, None]
        dx = (np.arange(x0, x1) - cx)[None, :]
        labels[y0:y1, x0:x1][dy * dy + dx * dx <= r * r] = i
    return labels


def dead_leaves(
    size: tuple[int, int],
    rng: np.random.Generator,
    r_min: float = R_MIN,
    r_max: float = R_MAX,
) -> np.ndarray:
    """A dead-leaves scene, sRGB float32 HxWx3 in [0, 1]; radii are fractions of the shorter
    side. Each leaf is a flat colour, a linear gradient, a grating or smoothed noise between
    two random colours; uncovered pixels take a background leaf's colour."""
    height, width = size
    side = min(height, width)
    lo, hi = max(r_min * side, 1.0), max(r_max * side, 2.0)
    # Centres up to half the largest radius outside the frame, so big leaves also enter it.
    n = _disk_count((height + hi) * (width + hi), lo, hi)
    centres = rng.uniform((-hi / 2, -hi / 2), (height + hi / 2, width + hi / 2), (n, 2))
    radii = power_law_radii(n, lo, hi, rng)
    # Leaf n (the last index, reached through label -1) is the background, a flat leaf.
    labels = leaf_labels(size, centres, radii)
    centres = np.vstack([centres, [[height / 2, width / 2]]])
    radii = np.append(radii, hi)
    fill = rng.choice(len(FILLS), n + 1, p=FILL_WEIGHTS)
    fill[-1] = 0
    colour_a = rng.uniform(0.0, 1.0, (n + 1, 3))
    colour_b = rng.uniform(0.0, 1.0, (n + 1, 3))
    angle = rng.uniform(0.0, 2 * np.pi, n + 1)
    # Grating periods from 3 pixels to the leaf's diameter; a random phase.
    period = np.exp(rng.uniform(np.log(3.0), np.log(np.maximum(2 * radii, 3.5))))
    phase = rng.uniform(0.0, 2 * np.pi, n + 1)
    # Two smooth noise fields (fine and coarse) shared by all noise leaves, in [0, 1].
    fields = [gaussian_filter(rng.standard_normal(size), sigma) for sigma in (1.5, 6.0)]
    fields = [np.clip(0.5 + f / (4 * f.std() + 1e-12), 0.0, 1.0) for f in fields]
    which_field = rng.integers(0, 2, n + 1)

    leaf = labels  # -1 indexes the background leaf, the last one
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (xs - centres[leaf, 1]) * np.cos(angle[leaf]) + (ys - centres[leaf, 0]) * np.sin(
        angle[leaf]
    )
    kind = fill[leaf]
    gradient = np.clip(0.5 + along / (2 * radii[leaf]), 0.0, 1.0)
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * along / period[leaf] + phase[leaf])
    noise = np.where(which_field[leaf] == 0, fields[0], fields[1])
    mix = np.select([kind == 1, kind == 2, kind == 3], [gradient, grating, noise], 0.0)
    mix = mix[..., None].astype(np.float32)
    image = colour_a[leaf] * (1.0 - mix) + colour_b[leaf] * mix
    return np.clip(image, 0.0, 1.0).astype(np.float32)
