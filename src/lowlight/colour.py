"""The sRGB transfer curve, defined once: synthesis undoes it, evaluation and LibRaw apply it."""

from __future__ import annotations

import numpy as np

# The curve in LibRaw's (power, toe slope) form, for ``postprocess(gamma=...)``.
SRGB_GAMMA = (2.4, 12.92)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding of values in [0, 1] (clipped) to linear light."""
    srgb = np.clip(srgb, 0.0, 1.0)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encoding of linear light (>= 0) to sRGB values."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


# --- camera colour -------------------------------------------------------------------------------

# Linear sRGB -> XYZ, D65 white (IEC 61966-2-1). Its row sums are the D65 white point's XYZ.
SRGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
)


def srgb_to_camera(xyz_to_camera: np.ndarray) -> np.ndarray:
    """The 3x3 map from linear sRGB to a camera's raw RGB, scaled so that the D65 white
    (sRGB 1, 1, 1) gives green 1.

    That scale is the one LibRaw's rendering undoes (it normalises each row of camera-from-sRGB
    to sum 1 and divides by the as-shot neutral), so a scene value s comes back as s.
    """
    camera = np.asarray(xyz_to_camera, dtype=np.float64) @ SRGB_TO_XYZ
    return camera / camera.sum(axis=1)[1]


def as_shot_neutral(to_camera: np.ndarray) -> np.ndarray:
    """The camera's response to the scene's white (sRGB 1, 1, 1 under ``to_camera``), green 1:
    the DNG AsShotNeutral that makes LibRaw's camera white balance render that white grey."""
    white = np.asarray(to_camera, dtype=np.float64).sum(axis=1)
    return white / white[1]


# --- night-time light ----------------------------------------------------------------------------

# CIE 1931 xy of the high-pressure sodium lamps of CIE 15:2004 (Colorimetry, 3rd ed., table T.9):
# HP1 standard (CCT 1959 K), HP2 colour-enhanced (CCT 2506 K): street light at night.
SODIUM_XY = ((0.5330, 0.4150), (0.4778, 0.4158))
# ANSI C78.377 lets white LED lamps lie this far (Duv) off the Planckian locus.
LED_TINT = 0.006


def planckian_xy(cct: float) -> tuple[float, float]:
    """CIE 1931 xy of a blackbody at ``cct`` kelvin (1667-25000 K): the cubic-spline fit of Kim
    et al., "Design of advanced color temperature control system for HDTV applications" (J.
    Korean Phys. Soc. 41, 2002), within 5e-4 of the exact locus."""
    if not 1667 <= cct <= 25000:
        raise ValueError(f"the Planckian fit covers 1667-25000 K, got {cct}")
    t = 1e3 / cct
    if cct <= 4000:
        x = -0.2661239 * t**3 - 0.2343589 * t**2 + 0.8776956 * t + 0.179910
    else:
        x = -3.0258469 * t**3 + 2.1070379 * t**2 + 0.2226347 * t + 0.240390
    if cct <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif cct <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def _uv(xy: tuple[float, float]) -> np.ndarray:
    """CIE 1960 uv, where Duv (distance from the locus) is defined."""
    x, y = xy
    return np.array([4 * x, 6 * y]) / (-2 * x + 12 * y + 3)


def tinted_planckian_xy(cct: float, duv: float) -> tuple[float, float]:
    """The xy ``duv`` off the Planckian locus at ``cct`` in CIE 1960 uv (positive: greenish,
    above the locus; negative: magenta, below it), as lamp makers specify white light."""
    here, hotter = _uv(planckian_xy(cct)), _uv(planckian_xy(cct + 1.0))
    tangent = (hotter - here) / np.linalg.norm(hotter - here)  # towards higher CCT: bluer
    u, v = here + duv * np.array([tangent[1], -tangent[0]])  # the tangent turned to +v (green)
    d = 2 * u - 8 * v + 4
    return float(3 * u / d), float(2 * v / d)


def xy_to_xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def lit_srgb_to_camera(xyz_to_camera: np.ndarray, white_xy: tuple[float, float]) -> np.ndarray:
    """The linear sRGB -> camera RGB map of a scene lit by a light of chromaticity ``white_xy``:
    the light scales each camera channel by the camera's response to it relative to D65 (von
    Kries in the camera's own space, exact for narrow-band filters), so the camera's white
    balance undoes it as LibRaw's rendering assumes; scaled so the light's white gives green 1."""
    xyz_to_camera = np.asarray(xyz_to_camera, dtype=np.float64)
    d65 = SRGB_TO_XYZ.sum(axis=1)
    gains = (xyz_to_camera @ xy_to_xyz(white_xy)) / (xyz_to_camera @ (d65 / d65[1]))
    camera = np.diag(gains) @ srgb_to_camera(xyz_to_camera)
    return camera / camera.sum(axis=1)[1]


def draw_night_light(
    rng: np.random.Generator, cct: tuple[float, float], sodium: float
) -> tuple[str, tuple[float, float]]:
    """A scene's light: a high-pressure sodium lamp with probability ``sodium``, otherwise a
    blackbody (tungsten, warm to cool white LEDs, moonlit or twilight sky) uniform in mired over
    ``cct`` kelvin with a tint within LED_TINT. Returns its description and its xy."""
    if rng.random() < sodium:
        index = int(rng.integers(len(SODIUM_XY)))
        return f"sodium HP{index + 1}", SODIUM_XY[index]
    mired = rng.uniform(1e6 / cct[1], 1e6 / cct[0])
    duv = rng.uniform(-LED_TINT, LED_TINT)
    return f"{1e6 / mired:.0f} K, Duv {duv:+.4f}", tinted_planckian_xy(1e6 / mired, duv)
