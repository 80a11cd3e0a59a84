"""A calibrated camera's sensor noise: profiles as data, per-frame parameters, noisy raw frames.

The model is ELD's (Wei et al., "A Physics-based Noise Formation Model for Extreme Low-light
Raw Denoising", CVPR 2020), in DN (digital numbers above black):

    raw = round(K * Poisson(signal / K) + read + row + bias[channel]) + black, clipped to white

with system gain K (DN per photo-electron), read noise from a Tukey-lambda (or Gaussian)
distribution whose scale is log-linear in K, one Gaussian offset per sensor row, and a per-CFA-
channel colour bias by K bin. A profile (``profiles/<name>.json``) holds one camera's
calibration; another calibrated camera is one more JSON file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np

from lowlight.errors import ConfigError
from lowlight.xtrans import xtrans_pattern

DEFAULT_PROFILE = "SonyA7S2"
READ_NOISE = ("tukey", "gaussian")
ReadNoise = Literal["tukey", "gaussian"]
# The 2x2 colour layouts a profile may name (as in DngMeta.cfa), besides a 6x6 X-Trans layout
# as 36 letters in reading order (lowlight.xtrans.xtrans_pattern).
CFA_LAYOUTS = ("RGGB", "GRBG", "GBRG", "BGGR")


@dataclass(frozen=True)
class LogLinear:
    """ln(value) = slope * ln K + bias + N(0, sigma): ELD's fit of a noise scale against K."""

    slope: float
    bias: float
    sigma: float

    def median(self, gain: float) -> float:
        return math.exp(self.slope * math.log(gain) + self.bias)

    def sample(self, gain: float, rng: np.random.Generator) -> float:
        return math.exp(self.slope * math.log(gain) + self.bias + rng.normal(0.0, self.sigma))


@dataclass(frozen=True)
class NoiseProfile:
    """One camera's calibration: sensor levels, gain range, noise fits and colour matrix."""

    name: str
    source: str
    make: str
    model: str
    cfa: str
    black_level: int
    white_level: int
    k_min: float
    k_max: float
    iso_k: float  # a calibration point: K ``iso_k`` at ISO ``iso_ref`` (ISO is linear in K)
    iso_ref: float
    tukey: LogLinear
    tukey_lambdas: tuple[float, ...]
    gaussian: LogLinear
    row: LogLinear
    color_bias: tuple[tuple[float, float, float, float], ...]  # DN; R, G1, B, G2 per K bin
    xyz_to_camera: tuple[tuple[float, float, float], ...]  # XYZ (D65) -> camera RGB

    def iso(self, gain: float) -> int:
        """The ISO that gives system gain ``gain`` (K is proportional to the analogue gain)."""
        return max(1, round(gain * self.iso_ref / self.iso_k))

    def gain(self, iso: float) -> float:
        return iso * self.iso_k / self.iso_ref

    def k_bin(self, gain: float) -> int:
        """``gain``'s row in the per-gain tables: equal bins over [k_min, k_max] (ELD's release
        profile; LED indexes its colour bias the same way), clipped to the first and last."""
        rows = len(self.color_bias)
        width = (self.k_max - self.k_min) / rows
        return int(np.clip(math.floor((gain - self.k_min) / width), 0, rows - 1))

    def bias_at(self, gain: float) -> np.ndarray:
        """The colour bias (R, G1, B, G2) of ``gain``'s K bin."""
        return np.asarray(self.color_bias[self.k_bin(gain)], dtype=np.float64)

    def lambda_at(self, gain: float) -> float:
        """The Tukey-lambda shape of ``gain``'s K bin: ELD calibrates one shape per gain, in
        the same bins as the colour bias (0.0 is the logistic distribution)."""
        return self.tukey_lambdas[self.k_bin(gain)]


@dataclass(frozen=True)
class FrameNoise:
    """The noise parameters of one frame, all in DN."""

    gain: float  # K, DN per photo-electron
    read: ReadNoise
    read_scale: float  # Tukey-lambda scale, or the Gaussian sigma
    read_lambda: float  # Tukey-lambda shape (unused for Gaussian read noise)
    row_sigma: float
    color_bias: tuple[float, float, float, float]  # R, G1, B, G2


# --- profiles ------------------------------------------------------------------------------------


def available_profiles() -> list[str]:
    folder = resources.files("lowlight") / "profiles"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


@lru_cache(maxsize=16)
def load_profile(name: str) -> NoiseProfile:
    """The profile ``src/lowlight/profiles/<name>.json``, validated (ConfigError names the file)."""
    path = resources.files("lowlight") / "profiles" / f"{name}.json"
    if not name or "/" in name or "\\" in name or not path.is_file():
        known = ", ".join(available_profiles())
        raise ConfigError(f"{path}: no noise profile {name!r} (known: {known})")
    try:
        data = json.loads(path.read_text())
        return _parse_profile(name, data)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ConfigError(f"{path}: invalid noise profile ({what})") from exc


def _log_linear(section: dict[str, Any]) -> LogLinear:
    fit = LogLinear(float(section["slope"]), float(section["bias"]), float(section["sigma"]))
    if fit.sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {fit.sigma}")
    return fit


def _parse_profile(name: str, data: dict[str, Any]) -> NoiseProfile:
    camera, gain, read = data["camera"], data["gain"], data["read_noise"]
    source = data["source"]
    lambdas = tuple(float(v) for v in read["tukey"]["lambda"])
    bias = tuple(tuple(float(v) for v in row) for row in data["color_bias"]["table"])
    matrix = tuple(tuple(float(v) for v in row) for row in data["xyz_to_camera"])
    profile = NoiseProfile(
        name=name,
        source=json.dumps(source) if not isinstance(source, str) else source,
        make=str(camera["make"]),
        model=str(camera["model"]),
        cfa=str(camera["cfa"]),
        black_level=int(camera["black_level"]),
        white_level=int(camera["white_level"]),
        k_min=float(gain["k_min"]),
        k_max=float(gain["k_max"]),
        iso_k=float(gain["iso_calibration"]["k"]),
        iso_ref=float(gain["iso_calibration"]["iso"]),
        tukey=_log_linear(read["tukey"]),
        tukey_lambdas=lambdas,
        gaussian=_log_linear(read["gaussian"]),
        row=_log_linear(data["row_noise"]),
        color_bias=bias,  # type: ignore[arg-type]
        xyz_to_camera=matrix,  # type: ignore[arg-type]
    )
    if profile.cfa not in CFA_LAYOUTS:
        try:
            xtrans_pattern(profile.cfa)
        except ValueError as exc:
            layouts = ", ".join(CFA_LAYOUTS)
            raise ValueError(f"camera.cfa must be one of {layouts} or a 6x6 X-Trans layout "
                             f"(36 letters), got {profile.cfa!r}: {exc}") from exc  # fmt: skip
    if not 0 <= profile.black_level < profile.white_level:
        raise ValueError(f"need 0 <= black_level < white_level, got {profile.black_level}, "
                         f"{profile.white_level}")  # fmt: skip
    if not 0 < profile.k_min < profile.k_max:
        raise ValueError(f"need 0 < k_min < k_max, got {profile.k_min}, {profile.k_max}")
    if profile.iso_k <= 0 or profile.iso_ref <= 0:
        raise ValueError("gain.iso_calibration needs k > 0 and iso > 0")
    # Tukey-lambda read noise needs a finite variance: lambda > -1/2.
    if not lambdas or min(lambdas) <= -0.5:
        raise ValueError(f"read_noise.tukey.lambda must be a non-empty list > -0.5, got {lambdas}")
    if not bias or any(len(row) != 4 for row in bias):
        raise ValueError("color_bias.table must be rows of 4 values (R, G1, B, G2)")
    if len(lambdas) != len(bias):
        raise ValueError(f"read_noise.tukey.lambda has {len(lambdas)} values, one per K bin "
                         f"like color_bias.table's {len(bias)} rows")  # fmt: skip
    if len(matrix) != 3 or any(len(row) != 3 for row in matrix):
        raise ValueError("xyz_to_camera must be a 3x3 matrix")
    return profile


def profile_of(camera: str) -> NoiseProfile | None:
    """The bundled profile calibrated on ``camera`` ("make model", as ``raw.RawMeta.camera``),
    in any letter case: real RAFs say "FUJIFILM" where the profile says "Fujifilm"."""
    wanted = camera.strip().casefold()
    for name in available_profiles():
        profile = load_profile(name)
        if wanted in (f"{profile.make} {profile.model}".casefold(), profile.model.casefold()):
            return profile
    return None


def dark_offset(camera: str, iso: int | None) -> np.ndarray | None:
    """How far a calibrated camera's dark level sits above the file's black level at ``iso``:
    the colour bias (R, G1, B, G2 = LibRaw colour indices 0..3, in DN) of that ISO's K bin.

    A few DN, but a short frame is amplified up to 300x: left in, it tints the output by ISO,
    which a network cannot tell from the image. Subtracting the calibrated dark level per ISO
    before the network is PMN's dark shading correction (Feng et al., "Learnability
    Enhancement for Low-light Raw Denoising", ACM MM 2022). None: no profile or no ISO.
    """
    profile = profile_of(camera) if iso else None
    if profile is None or iso is None:
        return None
    return profile.bias_at(profile.gain(iso)).astype(np.float32)


# --- per-frame parameters ------------------------------------------------------------------------


def sample_gain(profile: NoiseProfile, rng: np.random.Generator) -> float:
    """A system gain K drawn log-uniformly over the profile's range (as ELD and LED sample it)."""
    return math.exp(rng.uniform(math.log(profile.k_min), math.log(profile.k_max)))


def sample_frame_noise(
    profile: NoiseProfile, gain: float, rng: np.random.Generator, read: ReadNoise = "tukey"
) -> FrameNoise:
    """One frame's noise parameters at system gain ``gain``: each log-linear fit with its own
    N(0, sigma) draw, lambda that of the gain's bin."""
    if read not in READ_NOISE:
        raise ValueError(f"read noise must be one of {', '.join(READ_NOISE)}, got {read!r}")
    if read == "tukey":
        scale = profile.tukey.sample(gain, rng)
        lam = profile.lambda_at(gain)
    else:
        scale, lam = profile.gaussian.sample(gain, rng), 0.0
    return FrameNoise(
        gain=gain,
        read=read,
        read_scale=scale,
        read_lambda=lam,
        row_sigma=profile.row.sample(gain, rng),
        color_bias=tuple(float(v) for v in profile.bias_at(gain)),  # type: ignore[arg-type]
    )


# --- the Tukey-lambda distribution ---------------------------------------------------------------


def tukey_lambda_ppf(u: np.ndarray, lam: float) -> np.ndarray:
    """Inverse CDF of the standard Tukey-lambda distribution (Tukey 1962; scipy's tukeylambda):
    (u**lam - (1-u)**lam) / lam, and the logistic log(u / (1-u)) at lam = 0."""
    if lam == 0:
        return np.log(u / (1.0 - u))
    return (u**lam - (1.0 - u) ** lam) / lam


def tukey_lambda_variance(lam: float) -> float:
    """Variance of the standard Tukey-lambda distribution (finite for lam > -1/2):
    (2 / lam**2) * (1 / (1 + 2 lam) - Gamma(lam + 1)**2 / Gamma(2 lam + 2)); pi**2 / 3 at 0."""
    if lam == 0:
        return math.pi**2 / 3
    if lam <= -0.5:
        return math.inf
    return (2 / lam**2) * (1 / (1 + 2 * lam) - math.gamma(lam + 1) ** 2 / math.gamma(2 * lam + 2))


def sample_tukey_lambda(
    rng: np.random.Generator, lam: float, scale: float, shape: tuple[int, ...]
) -> np.ndarray:
    """Tukey-lambda samples by inverse transform of uniforms in the open interval (0, 1)."""
    u = rng.uniform(0.0, 1.0, shape)
    u = np.clip(u, np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)
    return scale * tukey_lambda_ppf(u, lam)


# --- frames ---------------------------------------------------------------------------------------


def cfa_channels(cfa: str, shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel colour-bias channel (0 R, 1 G1, 2 B, 3 G2; G1 is the first green of the 2x2
    block in reading order, like LibRaw's raw_pattern) of an HxW mosaic with layout ``cfa``.
    An X-Trans layout's greens are all G1: LibRaw numbers X-Trans colours 0 R, 1 G, 2 B."""
    if len(cfa) == 36:
        block = xtrans_pattern(cfa).colors.astype(np.intp)
    else:
        index, greens = [], iter((1, 3))
        for colour in cfa:
            index.append(next(greens) if colour == "G" else {"R": 0, "B": 2}[colour])
        block = np.asarray(index, dtype=np.intp).reshape(2, 2)
    height, width = shape
    size = len(block)
    return np.tile(block, (-(-height // size), -(-width // size)))[:height, :width]


def apply_noise(
    signal_dn: np.ndarray,
    noise: FrameNoise,
    rng: np.random.Generator,
    black: int,
    white: int,
    cfa: str = "RGGB",
) -> np.ndarray:
    """A raw frame (uint16, HxW) from a mean signal mosaic (DN above black): shot, read, row
    noise, colour bias, quantisation, black level, clipping to [0, white]."""
    shape = signal_dn.shape
    # Shot noise: photo-electrons are Poisson; K turns them into DN.
    frame = noise.gain * rng.poisson(np.maximum(signal_dn, 0.0) / noise.gain).astype(np.float64)
    if noise.read == "tukey":
        frame += sample_tukey_lambda(rng, noise.read_lambda, noise.read_scale, shape)
    else:
        frame += rng.normal(0.0, noise.read_scale, shape)
    frame += rng.normal(0.0, noise.row_sigma, (shape[0], 1))  # one offset per sensor row
    frame += np.asarray(noise.color_bias)[cfa_channels(cfa, shape)]
    frame = np.round(frame) + black  # quantisation to whole DN
    return np.clip(frame, 0, white).astype(np.uint16)


def read_variance(noise: FrameNoise) -> float:
    """Variance of the read noise alone (DN**2)."""
    if noise.read == "gaussian":
        return noise.read_scale**2
    return noise.read_scale**2 * tukey_lambda_variance(noise.read_lambda)


def expected_mean(signal_dn: np.ndarray | float, noise: FrameNoise, channel: int) -> np.ndarray:
    """Mean of a pixel of colour-bias ``channel`` (DN above black, before clipping): the noise
    is zero-mean except the colour bias (and rounding, which is unbiased on average)."""
    return np.asarray(signal_dn, dtype=np.float64) + noise.color_bias[channel]


def expected_variance(signal_dn: np.ndarray | float, noise: FrameNoise) -> np.ndarray:
    """Variance of a pixel over frames (before clipping): shot K * signal, read, row and the
    uniform quantisation error 1/12 (a good approximation once the noise spans a few DN)."""
    signal = np.maximum(np.asarray(signal_dn, dtype=np.float64), 0.0)
    return noise.gain * signal + read_variance(noise) + noise.row_sigma**2 + 1 / 12
