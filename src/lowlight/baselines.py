"""Classical baselines the model must beat, chosen by name (``evaluate.baselines``).

Each takes the dark frame's RGB conversion (HxWx3 float in [0, 1]) and returns its estimate:
for RAW models that conversion is ratio-amplified, so "amplify" is already bright; for sRGB
models it is the dark JPEG as the camera wrote it (convert's gain undone), so "exposure",
"gamma+clahe" and "lime" brighten it themselves, as the tools a user would otherwise reach for
("exposure" as convert does for the sRGB model: that model's own input). Each "+bm3d"
variant then denoises with BM3D.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

# scikit-image's estimate_sigma (wavelet MAD of the finest scale) reads the noise of amplified,
# demosaiced, JPEG-compressed dark frames far too low: demosaicing and JPEG make the noise
# spatially correlated and strip its finest detail, and shot noise grows with the signal.
# BM3D with that sigma barely denoises. This scale on the estimate was chosen on the
# validation split of `make pretrain`'s data (the Sony a7S II camera of lowlight synth with its
# camera-like scenes, BT.709 renderings, dark frames corrected for the calibrated dark offset):
# the highest mean PSNR of the scales 1 to 120 that bench/pretrain.py lists, x36 (24.77 dB; x24
# 24.30, x54 24.16, x64 23.02: the amplified frames' noise is far above skimage's estimate, and
# strong smoothing wins), then fixed: no test image's ground truth is used. (On the earlier,
# photo-sharp scenes the best was x54; before the dark offset correction x80; the first, milder
# synthetic camera's 4.5.) BENCHMARKS.md, "pretrain".
BM3D_SIGMA_SCALE = 36.0


def amplify(image: np.ndarray) -> np.ndarray:
    """The ratio-amplified conversion as it is: what SID's paper calls the traditional pipeline."""
    return image


def bm3d_sigma(image: np.ndarray, scale: float = BM3D_SIGMA_SCALE) -> float:
    """The noise sigma handed to BM3D: ``scale`` x scikit-image's per-image estimate."""
    from skimage.restoration import estimate_sigma

    return scale * float(estimate_sigma(image, channel_axis=-1, average_sigmas=True))


def amplify_bm3d(image: np.ndarray, sigma_scale: float = BM3D_SIGMA_SCALE) -> np.ndarray:
    """BM3D (Dabov et al. 2007, the ``bm3d`` package) at ``bm3d_sigma`` of the image."""
    import bm3d

    sigma = bm3d_sigma(image, sigma_scale)
    if sigma <= 0:
        return image
    return np.clip(bm3d.bm3d_rgb(image, sigma_psd=sigma), 0.0, 1.0).astype(np.float32)


# The sRGB baselines' BM3D sees brightened dark JPEGs: tone-curved, 8-bit, JPEG-blocked noise,
# unlike the amplified RAW conversions that BM3D_SIGMA_SCALE was chosen on. Chosen on the
# validation split of `make pretrain-srgb`'s data (one noise draw per scene, the evaluation crop;
# bench/pretrain.py sigma_study): exposure+bm3d 28.97 / 30.02 / 29.80 dB at x8 / x16 / x32
# (brightened as evaluate does, on the whole frame); gamma+clahe+bm3d 19.82 / 19.81 / 19.78 and
# lime+bm3d 20.57 / 20.60 / 20.52 at x16 / x32 / x64 (brightened on the crop, as evaluate did
# then): x16, the best for exposure, within 0.03 dB of the best for the other two. No test
# image's ground truth is used. (Before exposure was a baseline: x32, of x2 to x32.)
SRGB_BM3D_SIGMA_SCALE = 16.0

# gamma+clahe. The gamma brightens the mean Rec. 709 luma of the frame to mid grey: 0.46 is the
# sRGB encoding of 18 % grey (CIELAB L* ~ 50), the level exposure meters aim for. The gamma stays
# within GAMMA_RANGE: 1 leaves a frame already that bright as it is (a user does not darken it),
# 0.1 lifts a mean of 0.0004 to mid grey, past which there is only quantised noise to lift.
MID_GREY = 0.46
GAMMA_RANGE = (0.1, 1.0)
# CLAHE (Zuiderveld 1994) as OpenCV's tutorial applies it to photos: clip limit 2 (OpenCV's
# default, 40, barely limits the contrast) on an 8x8 grid of tiles, on the L channel of Lab.
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)
LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 / sRGB

# LIME's parameters for the sped-up solver with weighting strategy III (Guo, Li, Ling 2017):
# alpha 0.15 and sigma 2 as the demo script distributed with the authors' code sets them for that
# pairing (its comment: alpha is 0.15 for sped-up + strategy III), gamma 0.8 as in the paper's
# experiments, eps 1e-3 (the paper's "very small constant"). alpha trades fidelity to the max-RGB
# map against smoothness, sigma is the Gaussian's std in pixels, eps keeps the weights and the
# division finite, gamma < 1 keeps bright regions from being over-enhanced.
LIME_ALPHA = 0.15
LIME_SIGMA = 2.0
LIME_EPS = 1e-3
LIME_GAMMA = 0.8


def brightening_gamma(image: np.ndarray, target: float = MID_GREY) -> float:
    """The gamma that brings the mean luma of ``image ** gamma`` to ``target``, within
    GAMMA_RANGE: solved on the image (mean luma falls monotonically as gamma grows)."""
    from scipy.optimize import brentq

    image = np.clip(image, 0.0, 1.0)

    def excess(gamma: float) -> float:
        return float((image**gamma @ LUMA).mean()) - target

    low, high = GAMMA_RANGE
    if excess(high) >= 0:
        return high
    if excess(low) <= 0:
        return low
    return float(brentq(excess, low, high, xtol=1e-4))


def gamma_clahe(image: np.ndarray) -> np.ndarray:
    """Gamma to mid grey (``brightening_gamma``), then OpenCV's CLAHE on the 8-bit L of Lab:
    the gamma lifts the whole frame, CLAHE restores the local contrast the gamma flattens."""
    import cv2

    bright = np.clip(image, 0.0, 1.0) ** brightening_gamma(image)
    lab = cv2.cvtColor(np.round(bright * 255).astype(np.uint8), cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return (cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) / 255.0).astype(np.float32)


def lime_initial_map(image: np.ndarray) -> np.ndarray:
    """LIME's initial illumination T^(x): the max of R, G and B at each pixel."""
    return np.clip(image, 0.0, 1.0).max(axis=-1).astype(np.float64)


def _forward_differences(height: int, width: int) -> tuple:
    """Sparse horizontal and vertical forward differences on the row-major flattened grid,
    zero at the last column / row (no gradient across the border); each row sums to zero."""
    import scipy.sparse as sp

    def diff(n: int) -> sp.csr_matrix:
        d = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], format="lil")
        d[n - 1, n - 1] = 0
        return d.tocsr()

    return (
        sp.kron(sp.identity(height), diff(width), format="csr"),
        sp.kron(diff(height), sp.identity(width), format="csr"),
    )


def lime_weights(t_hat: np.ndarray, sigma: float = LIME_SIGMA, eps: float = LIME_EPS) -> tuple:
    """The sped-up solver's per-pixel weights on (grad_d T)^2 for d = h, v, with strategy III.

    Strategy III: W_d(x) = sum_y G(x, y) / (|sum_y G(x, y) grad_d T^(y)| + eps), G a Gaussian
    of std ``sigma`` (its weights sum to 1, so the numerator is 1): small across edges that
    persist over the window, large where gradients cancel out (noise, texture). The sped-up
    solver replaces the L1 prior |W_d grad_d T| by W_d (grad_d T)^2 / (|grad_d T^| + eps), so
    the quadratic weight is W_d / (|grad_d T^| + eps).
    """
    from scipy.ndimage import gaussian_filter

    weights = []
    for axis in (1, 0):  # h, v: forward differences, zero at the last column / row
        grad = np.diff(t_hat, axis=axis, append=np.take(t_hat, [-1], axis=axis))
        w = 1.0 / (np.abs(gaussian_filter(grad, sigma, mode="nearest")) + eps)
        weights.append(w / (np.abs(grad) + eps))
    return tuple(weights)


def lime_refine(
    t_hat: np.ndarray, weights: tuple | None = None, alpha: float = LIME_ALPHA
) -> np.ndarray:
    """The refined illumination T: argmin ||T^ - T||^2 + alpha sum_d w_d (grad_d T)^2, i.e. the
    sparse system (I + alpha sum_d D_d^T diag(w_d) D_d) t = t^ (one direct solve, the paper's
    sped-up solver). ``weights`` default to ``lime_weights``; pass others to compare."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    d_h, d_v = _forward_differences(*t_hat.shape)
    w_h, w_v = lime_weights(t_hat) if weights is None else weights
    smooth = d_h.T @ sp.diags(np.ravel(w_h)) @ d_h + d_v.T @ sp.diags(np.ravel(w_v)) @ d_v
    system = (sp.identity(t_hat.size) + alpha * smooth).tocsc()
    return spsolve(system, t_hat.ravel()).reshape(t_hat.shape)


def lime(image: np.ndarray) -> np.ndarray:
    """LIME (Guo, Li, Ling, "LIME: Low-Light Image Enhancement via Illumination Map Estimation",
    IEEE TIP 2017), written from the paper: the max-RGB map refined under the structure-aware
    prior, gamma-corrected (T^0.8), and the image divided by it (Retinex: L = R * T). About
    0.5 s on a 256x384 frame on one core (the solve is a sparse banded system)."""
    t = lime_refine(lime_initial_map(image)) ** LIME_GAMMA
    out = np.clip(image, 0.0, 1.0) / np.maximum(t, LIME_EPS)[..., None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# exposure: what a photo editor's exposure control does, and the sRGB model's own input. The gain
# brings the photo's mean linear light to 18 % grey, convert.auto_target's default and the level
# synth meters every long exposure to; at most SID's largest ratio (convert's max_ratio).
EXPOSURE_TARGET = 0.18


def exposure(image: np.ndarray) -> np.ndarray:
    """The photo exposed longer in its linear light (``isp.expose``) by the gain that meters it
    to EXPOSURE_TARGET: brighter, with its noise and JPEG blocks brightened alike."""
    from lowlight import isp
    from lowlight.raw import estimate_gain
    from lowlight.sid import MAX_RATIO

    gain = estimate_gain(isp.level(image), EXPOSURE_TARGET, MAX_RATIO)
    return isp.expose(np.clip(image, 0.0, 1.0), gain)


@dataclass(frozen=True)
class Baseline:
    """A brightening step, then, with ``bm3d_scale``, BM3D at that scale of the noise estimate.
    ``whole``: the brightening meters the whole photo (exposure's gain, gamma's mean luma), so
    evaluate brightens whole frames, then cuts its crop; BM3D (slow) sees the crop only. LIME's
    map is local (a structure-aware smoothing of max-RGB), and its sparse solve grows faster
    than the pixels (a 512x768 frame: tens of seconds), so it runs on the crop."""

    brighten: Callable[[np.ndarray], np.ndarray]
    bm3d_scale: float | None = None
    whole: bool = True

    def denoise(self, image: np.ndarray) -> np.ndarray:
        return image if self.bm3d_scale is None else amplify_bm3d(image, self.bm3d_scale)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.denoise(self.brighten(image))

    def at_scale(self, bm3d_scale: float) -> Baseline:
        """The same baseline with another camera's BM3D scale (``evaluate.bm3d_sigma_scale``)."""
        return replace(self, bm3d_scale=bm3d_scale)


BASELINES: dict[str, Baseline] = {
    "amplify": Baseline(amplify),
    "amplify+bm3d": Baseline(amplify, BM3D_SIGMA_SCALE),
    "exposure": Baseline(exposure),
    "exposure+bm3d": Baseline(exposure, SRGB_BM3D_SIGMA_SCALE),
    "gamma+clahe": Baseline(gamma_clahe),
    "gamma+clahe+bm3d": Baseline(gamma_clahe, SRGB_BM3D_SIGMA_SCALE),
    "lime": Baseline(lime, whole=False),
    "lime+bm3d": Baseline(lime, SRGB_BM3D_SIGMA_SCALE, whole=False),
}
