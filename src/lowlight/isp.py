"""A camera's image processing (ISP), both ways: what turns a raw frame into the JPEG a camera
or a phone writes, and its inverse, which turns a photo back into the raw signal behind it.

Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019): a camera
demosaics the raw mosaic, white balances it, maps camera RGB to linear sRGB with its colour matrix,
applies the sRGB curve and a global tone curve (Brooks' smoothstep, on the curve's encoded
values as in their code), and quantises to 8 bits. Unprocessing runs the same steps backwards
(inverse smoothstep, sRGB decoding, the inverse matrix, the inverse white balance), so the
synthetic dark JPEGs of ``lowlight.synth`` (``synth.output: jpeg``) come from photos through
the calibrated sensor noise (``lowlight.noise``) like a camera's own, and the bright target is
the same scene rendered without noise.

The colour of a shot is the scene's linear sRGB -> camera RGB matrix (``synth.scene_colour``:
the camera's matrix under the scene's light): its as-shot neutral is the white balance, and the
matrix with the neutral divided out (rows summing to 1, so white stays white) is the camera's
colour matrix, the same for every light, as in LibRaw's rendering (``lowlight.rendering``).
"""

from __future__ import annotations

import cv2
import numpy as np

from lowlight.colour import as_shot_neutral, linear_to_srgb, srgb_to_linear

# OpenCV's edge-aware demosaicing (8 and 16 bits) by the sensor's 2x2 layout. OpenCV names a
# Bayer pattern by its second row's two middle pixels: RGGB is its "BG".
DEMOSAIC = {
    "RGGB": cv2.COLOR_BayerBG2RGB_EA,
    "GRBG": cv2.COLOR_BayerGB2RGB_EA,
    "GBRG": cv2.COLOR_BayerGR2RGB_EA,
    "BGGR": cv2.COLOR_BayerRG2RGB_EA,
}


def tone_curve(x: np.ndarray) -> np.ndarray:
    """Brooks' global tone curve, the smoothstep 3x^2 - 2x^3 on [0, 1]: darker shadows and
    brighter highlights, as a camera's S-curve."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def inverse_tone_curve(y: np.ndarray) -> np.ndarray:
    """The smoothstep's inverse on [0, 1]: 0.5 - sin(asin(1 - 2y) / 3)."""
    y = np.clip(y, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


def white_balance(to_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(as-shot neutral, camera colour matrix) of a shot whose scene reaches the sensor through
    ``to_camera`` (linear sRGB -> camera RGB): the camera divides by the neutral, then maps the
    balanced camera RGB to linear sRGB with the matrix."""
    to_camera = np.asarray(to_camera, np.float64)
    neutral = as_shot_neutral(to_camera)
    return neutral, np.linalg.inv(to_camera / neutral[:, None])


def unprocess(srgb: np.ndarray, to_camera: np.ndarray) -> np.ndarray:
    """An sRGB photo (HxWx3 in [0, 1]) -> the linear camera RGB behind it (1 = the raw level of
    the scene's white): ``to_linear``, then the shot's colour."""
    return to_linear(srgb) @ np.asarray(to_camera, np.float64).T


def to_linear(srgb: np.ndarray) -> np.ndarray:
    """A photo's values -> the scene's linear sRGB light: inverse tone curve, sRGB decoding."""
    return srgb_to_linear(inverse_tone_curve(srgb))


def from_linear(linear: np.ndarray) -> np.ndarray:
    """Linear sRGB light -> a photo's values in [0, 1] (float32): clipping, sRGB curve, tone
    curve. ``to_linear``'s inverse."""
    return tone_curve(linear_to_srgb(np.clip(linear, 0.0, 1.0))).astype(np.float32)


def develop(camera_rgb: np.ndarray, to_camera: np.ndarray) -> np.ndarray:
    """Linear camera RGB (HxWx3, black 0) -> the camera's sRGB rendering in [0, 1] (float32):
    white balance, colour matrix, then ``from_linear``. ``unprocess``'s inverse."""
    neutral, matrix = white_balance(to_camera)
    return from_linear((np.asarray(camera_rgb, np.float64) / neutral) @ matrix.T)


def level(photo: np.ndarray) -> float:
    """A photo's exposure: the mean of its linear light (0 black, 1 white), what a camera's
    average metering reads and what ``synth.metering`` sets a long exposure to."""
    return float(np.mean(to_linear(photo)))


def expose(photo: np.ndarray, gain: float) -> np.ndarray:
    """A photo (HxWx3 in [0, 1]) as if exposed ``gain`` times longer: its light multiplied in
    linear light (tone curve and sRGB curve undone, then redone), the highlights clipped as a
    camera clips them. A dark JPEG's gain of 1 / darkness undoes a darkness, not its noise."""
    if gain == 1.0:
        return np.asarray(photo, np.float32)
    return from_linear(to_linear(photo) * gain)


def demosaic(raw: np.ndarray, cfa: str) -> np.ndarray:
    """An HxW uint16 mosaic of layout ``cfa`` (e.g. "RGGB") -> HxWx3 uint16 RGB, by OpenCV's
    edge-aware interpolation (exact on locally linear images away from the border)."""
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"demosaic needs an HxW uint16 mosaic, got {raw.dtype} {raw.shape}")
    return cv2.cvtColor(raw, DEMOSAIC[cfa])


def process(
    raw: np.ndarray, black: float, full_scale: float, cfa: str, to_camera: np.ndarray
) -> np.ndarray:
    """A raw frame (HxW uint16 DN) as the camera renders it (HxWx3 float32 sRGB in [0, 1]):
    demosaic, black level subtracted and ``full_scale`` DN (the scene's white) as 1, then
    ``develop``. No gain: a dark frame stays as dark as it was exposed."""
    camera_rgb = (demosaic(raw, cfa).astype(np.float32) - np.float32(black)) / full_scale
    return develop(camera_rgb, to_camera)


def quantise(image: np.ndarray, bits: int = 8) -> np.ndarray:
    """Values in [0, 1] -> uint8 (``bits`` 8) or uint16 (16), rounded as a camera writes them."""
    top, dtype = {8: (255, np.uint8), 16: (65535, np.uint16)}[bits]
    return np.rint(np.clip(image, 0.0, 1.0) * top).astype(dtype)
