"""A scene as a camera sees it: placed on the sensor's pixel grid, blurred by the lens and the
pixel aperture, lit by a physical night-time light.

Why: a downsized photo is sharp to its last pixel, a real frame is not. A 12 MP full-frame sensor
behind a real lens records far less detail per pixel, and models trained on photo-sharp frames
fail on real ones (issue 23). So each scene is magnified onto the sensor (``scale`` sensor pixels
per photo pixel), then filtered by the optical transfer function (OTF) of the imaging chain,
all in linear light and in the frequency domain, so the contrast of every spatial frequency
after rendering is the product of the formulas below (tests check it on gratings):

- magnification: ideal (sinc) interpolation, transfer 1 up to the photo's Nyquist frequency;
- diffraction of a circular aperture at f-number N, incoherent light (Goodman, "Introduction to
  Fourier Optics", 3rd ed., eq. 7-35): OTF(v) = 2/pi (acos v - v sqrt(1 - v^2)), v = f / fc,
  cutoff fc = 1 / (lambda N), in cycles per pixel fc = pitch / (lambda N);
- defocus (and residual aberrations) as the geometric blur disk of radius r pixels (Hopkins 1955,
  geometric limit; Boreman, "Modulation Transfer Function in Optical and Electro-Optical
  Systems", SPIE 2001, ch. 2): OTF(f) = 2 J1(2 pi r f) / (2 pi r f);
- the pixel aperture, a square of the pixel pitch (gapless microlenses; Boreman ch. 2):
  OTF = sinc(fx) sinc(fy);
- optionally camera shake, uniform motion of L pixels at angle theta: OTF = sinc(L f . u).

Numbers: the a7S II's pixel pitch is 35.6 mm / 4240 px = 8.40 um (Sony's specification: a
35.6 x 23.8 mm sensor, 4240 x 2832 effective pixels; SID's frames are that size); light at
550 nm (the peak of the photopic response). At f/8 diffraction alone leaves 0.67 of the
contrast at Nyquist (0.5 cycles/pixel), the pixel aperture 0.64, a blur disk of 1 pixel radius
0.72 at half Nyquist. With the defaults (f/2.8-f/11, blur radius 0-1.5 px) MTF50, the frequency
that keeps half the contrast, ranges from beyond Nyquist (in focus at f/2.8) to 0.19 cycles per
pixel (f/11, 1.5 px), where a downsized photo is sharp to its last pixel. A frame of ``size`` is
a crop of a full 4240 x 2832 frame at full detail, not a downsized view of the whole scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import j1

# Sony a7S II (ILCE-7SM2): 35.6 mm sensor width over 4240 effective pixels.
PIXEL_PITCH_UM = 35.6e3 / 4240
WAVELENGTH_UM = 0.55
# Full stops a photographer sets; a scene draws one within the configured range.
F_STOPS = (1.4, 2.0, 2.8, 4.0, 5.6, 8.0, 11.0, 16.0, 22.0)
# Photo pixels of context kept around a crop (mirrored where the photo ends), so that the
# periodic frequency-domain filtering wraps only in what is cut away.
MARGIN = 8


@dataclass(frozen=True)
class Optics:
    """One scene's imaging: magnification and lens, recorded in the DNG and the list files."""

    scale: float  # sensor pixels per photo pixel
    fnumber: float
    defocus: float  # blur-disk radius, pixels
    shake: float = 0.0  # motion length, pixels
    shake_angle: float = 0.0  # radians


def diffraction_otf(f: np.ndarray, fnumber: float, pitch_um: float = PIXEL_PITCH_UM) -> np.ndarray:
    """Diffraction-limited OTF of a circular aperture at radial frequency ``f`` (cycles/pixel)."""
    cutoff = pitch_um / (WAVELENGTH_UM * fnumber)
    v = np.clip(np.abs(f) / cutoff, 0.0, 1.0)
    return (2 / np.pi) * (np.arccos(v) - v * np.sqrt(1.0 - v * v))


def defocus_otf(f: np.ndarray, radius: float) -> np.ndarray:
    """OTF of a uniform blur disk of ``radius`` pixels (jinc; 1 at f = 0, negative lobes kept:
    a defocused lens does reverse the contrast of those frequencies)."""
    x = 2 * np.pi * radius * np.abs(np.asarray(f, dtype=np.float64))
    out = np.ones_like(x)
    nonzero = x > 1e-12
    out[nonzero] = 2 * j1(x[nonzero]) / x[nonzero]
    return out


def transfer(shape: tuple[int, int], optics: Optics) -> np.ndarray:
    """The chain's OTF sampled on the ``rfft2`` grid of an image of ``shape`` (sensor pixels)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    radial = np.hypot(fy, fx)
    otf = diffraction_otf(radial, optics.fnumber) * defocus_otf(radial, optics.defocus)
    otf = otf * np.sinc(fy) * np.sinc(fx)
    if optics.shake > 0:
        along = fx * np.cos(optics.shake_angle) + fy * np.sin(optics.shake_angle)
        otf = otf * np.sinc(optics.shake * along)
    return otf


def fourier_zoom(image: np.ndarray, out_shape: tuple[int, int], otf: np.ndarray) -> np.ndarray:
    """Resample a 2-D ``image`` to ``out_shape`` by ideal interpolation and filter it by ``otf``
    (on out_shape's rfft2 grid) in one pass. The input's Nyquist components (no sign) are
    dropped; the mean is kept."""
    h, w = image.shape
    out_h, out_w = out_shape
    spectrum = np.fft.rfft2(image)
    result = np.zeros((out_h, out_w // 2 + 1), dtype=np.complex128)
    rows = (min(h, out_h) - 1) // 2  # positive (and as many negative) row frequencies kept
    cols = (min(w, out_w) - 1) // 2 + 1
    result[: rows + 1, :cols] = spectrum[: rows + 1, :cols]
    if rows:
        result[-rows:, :cols] = spectrum[-rows:, :cols]
    result *= otf
    return np.fft.irfft2(result, s=out_shape) * (out_h * out_w / (h * w))


def photo_window(
    shape: tuple[int, int], size: tuple[int, int], scale: float, rng: np.random.Generator
) -> tuple[float, tuple[int, int, int, int]]:
    """Where a frame of ``size`` sensor pixels falls on a photo of ``shape`` at ``scale``: the
    scale actually used (raised when the photo is too small to fill the frame) and the photo
    window (top, left, height, width) the frame covers, before the margin."""
    need = max(size[0] / shape[0], size[1] / shape[1])
    scale = max(scale, need)
    height = min(shape[0], int(np.ceil(size[0] / scale)))
    width = min(shape[1], int(np.ceil(size[1] / scale)))
    top = int(rng.integers(0, shape[0] - height + 1))
    left = int(rng.integers(0, shape[1] - width + 1))
    return scale, (top, left, height, width)


def place(
    photo: np.ndarray, size: tuple[int, int], scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """The part of ``photo`` a frame of ``size`` sensor pixels sees at ``scale`` (raised when
    the photo is too small to fill the frame), with MARGIN photo pixels around it (mirrored past
    the photo's edges), and the scale used. A frame is a crop of a full frame at full detail,
    not a downsized view of the whole photo."""
    scale, (top, left, height, width) = photo_window(photo.shape[:2], size, scale, rng)
    m = MARGIN
    padded = np.pad(photo, ((m, m), (m, m), (0, 0)), mode="symmetric")
    return padded[top : top + height + 2 * m, left : left + width + 2 * m], scale


def image_on_sensor(window: np.ndarray, size: tuple[int, int], optics: Optics) -> np.ndarray:
    """The HxWx3 frame of ``size`` that ``optics`` form of a linear-light ``window`` (from
    ``place``: MARGIN photo pixels around the frame's view), >= 0."""
    margin = int(round(MARGIN * optics.scale))
    out_shape = (size[0] + 2 * margin, size[1] + 2 * margin)
    # the window's sensor size (within a pixel of its photo size times the scale)
    zoom_shape = (
        max(out_shape[0], round(window.shape[0] * optics.scale)),
        max(out_shape[1], round(window.shape[1] * optics.scale)),
    )
    otf = transfer(zoom_shape, optics)
    channels = [fourier_zoom(window[..., c], zoom_shape, otf) for c in range(window.shape[2])]
    frame = np.stack(channels, axis=-1)[margin : margin + size[0], margin : margin + size[1]]
    # Ringing of sharp photo edges dips below zero: no light is negative.
    return np.clip(frame, 0.0, None)


def draw_optics(
    rng: np.random.Generator,
    scale: tuple[float, float],
    fnumber: tuple[float, float],
    defocus: tuple[float, float],
    shake: float = 0.0,
) -> Optics:
    """One scene's optics: scale log-uniform in its range, an f-stop within ``fnumber``'s range,
    a defocus radius uniform in its range, shake (if any) uniform up to ``shake`` pixels."""
    stops = [f for f in F_STOPS if fnumber[0] <= f <= fnumber[1]] or [fnumber[0]]
    return Optics(
        scale=float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1])))),
        fnumber=float(stops[int(rng.integers(len(stops)))]),
        defocus=float(rng.uniform(*defocus)),
        shake=float(rng.uniform(0.0, shake)) if shake > 0 else 0.0,
        shake_angle=float(rng.uniform(0.0, np.pi)) if shake > 0 else 0.0,
    )
