"""Synthetic SID-like data: scenes turned into noisy short / clean long Bayer exposures of a
calibrated camera, by default SID's own Sony a7S II.

A scene is a photo or a procedural dead-leaves image (``lowlight.scenes``) as a camera sees
it: magnified onto the sensor's pixel grid and blurred by the lens and the pixel aperture in
linear light (``lowlight.optics``), lit by a night-time light (a blackbody or a sodium lamp,
``lowlight.colour``) and mapped into the camera's raw RGB through its colour matrix; the DNGs
carry that matrix and the light's as-shot neutral, so LibRaw renders the scene's colours back.
Each scene draws a system gain K (and its ISO) from the noise profile (``lowlight.noise``: ELD's
calibration) and each frame its own noise. Test and validation scenes come only from their own
held-out photos; procedural scenes and the remaining photos are for training.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowlight import isp, optics
from lowlight import noise as sensor
from lowlight.colour import (
    as_shot_neutral,
    draw_night_light,
    lit_srgb_to_camera,
    srgb_to_camera,
    srgb_to_linear,
)
from lowlight.config import SynthConfig
from lowlight.dng import DngMeta, write_dng
from lowlight.errors import DatasetError
from lowlight.imageio import write_image
from lowlight.scenes import dead_leaves
from lowlight.sid import SidName, camera_folder, format_exposure, format_list_line
from lowlight.xtrans import PERIOD, xtrans_pattern

log = logging.getLogger(__name__)

# Sony a7S II, as used by SID (Chen et al. 2018): 14-bit with a black level of 512. The default
# profile holds the same levels; a frame always uses its profile's.
BLACK_LEVEL = 512
WHITE_LEVEL = 16383
# Exposures SID used: long 10 s or 30 s; short 0.1 / 0.04 / 0.033 s (ratios 100, 250, 300).
LONG_EXPOSURES = (10.0, 10.0, 10.0, 30.0)
SHORT_EXPOSURES = (0.1, 0.04, 0.033, 0.1)
# The long exposure behind synthetic JPEGs: a dark frame at 1/darkness of it is named for its
# exposure (SID's names), so that pair finds the darkness as the ratio.
JPEG_LONG_EXPOSURE = 10.0
# The D65 white lands at 90 % of the raw range in green in the long exposure.
LONG_HEADROOM = 0.9


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """Sample an HxWx3 image through an RGGB colour filter array -> HxW."""
    return mosaic(rgb, "RGGB")


def mosaic(rgb: np.ndarray, cfa: str) -> np.ndarray:
    """Sample an HxWx3 image through a 2x2 colour filter array (``cfa`` e.g. "RGGB") or a 6x6
    X-Trans one (36 letters in reading order, tiled from the top-left pixel) -> HxW."""
    height, width, _ = rgb.shape
    if len(cfa) == PERIOD * PERIOD:
        block = xtrans_pattern(cfa).colors.astype(np.intp)
        colours = np.tile(block, (-(-height // PERIOD), -(-width // PERIOD)))[:height, :width]
        return np.take_along_axis(rgb, colours[..., None], axis=2)[..., 0]
    if height % 2 or width % 2:
        raise ValueError(f"a Bayer mosaic needs even sizes, got {height}x{width}")
    bayer = np.empty((height, width), dtype=rgb.dtype)
    for index, colour in enumerate(cfa):
        dy, dx = divmod(index, 2)
        channel = "RGB".index(colour)
        bayer[dy::2, dx::2] = rgb[dy::2, dx::2, channel]
    return bayer


def scene_colour(
    profile: sensor.NoiseProfile, light_xy: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(linear sRGB -> camera RGB matrix, as-shot neutral) of a scene seen by ``profile``'s
    camera under a light of CIE xy ``light_xy`` (D65 when None)."""
    xyz_to_camera = np.asarray(profile.xyz_to_camera)
    if light_xy is None:
        to_camera = srgb_to_camera(xyz_to_camera)
    else:
        to_camera = lit_srgb_to_camera(xyz_to_camera, light_xy)
    return to_camera, as_shot_neutral(to_camera)


def scene_signal(
    linear_rgb: np.ndarray,
    exposure_fraction: float,
    to_camera: np.ndarray | None = None,
    profile: sensor.NoiseProfile | None = None,
) -> np.ndarray:
    """Mean raw signal (DN above black, Bayer HxW) of a linear sRGB scene.

    ``exposure_fraction`` is this frame's exposure over the long one (1 for the long exposure);
    ``to_camera`` maps linear sRGB to the camera's RGB (default: the profile's camera under D65).
    """
    profile = profile or sensor.load_profile(sensor.DEFAULT_PROFILE)
    if to_camera is None:
        to_camera, _ = scene_colour(profile)
    camera_rgb = np.clip(linear_rgb @ np.asarray(to_camera).T, 0.0, None)
    return mosaic(camera_rgb, profile.cfa) * full_scale(profile) * exposure_fraction


def full_scale(profile: sensor.NoiseProfile) -> float:
    """The raw level (DN above black) of the scene's white in the long exposure."""
    return (profile.white_level - profile.black_level) * LONG_HEADROOM


def crop_scene(photo: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random HxW crop of an sRGB photo in [0, 1] (upscaled first if too small), maybe flipped."""
    from skimage.transform import resize

    height, width = size
    scale = max(height / photo.shape[0], width / photo.shape[1], 1.0)
    if scale > 1.0:
        new = (int(np.ceil(photo.shape[0] * scale)), int(np.ceil(photo.shape[1] * scale)))
        photo = resize(photo, new, order=1, anti_aliasing=False)
    y = int(rng.integers(0, photo.shape[0] - height + 1))
    x = int(rng.integers(0, photo.shape[1] - width + 1))
    crop = photo[y : y + height, x : x + width]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


# --- scenes and splits -------------------------------------------------------------------------

# Natural colour photos shipped inside scikit-image's wheel (no download at run time).
BUNDLED_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "retina.jpg",
    "color.png",
)


@dataclass(frozen=True)
class ScenePlan:
    scene_id: str
    split: str
    photo: int | None  # index into the photo list; None = a procedural (dead-leaves) scene
    long_exposure: float
    short_exposure: float
    iso: int
    gain: float = 0.0  # system gain K (DN per electron) the ISO stands for; 0 = from the ISO

    @property
    def procedural(self) -> bool:
        return self.photo is None


def split_counts(scenes: int) -> dict[str, int]:
    """About 65/25/10 % train/test/val, at least one scene in each."""
    if scenes < 3:
        raise ValueError(f"need at least 3 scenes (one per split), got {scenes}")
    test = max(1, round(0.25 * scenes))
    val = max(1, round(0.1 * scenes))
    return {"train": scenes - test - val, "test": test, "val": val}


def assign_photos(n_photos: int, counts: dict[str, int]) -> dict[str, list[int]]:
    """Disjoint photos for the splits with photo scenes (``counts``), roughly in proportion.

    Test and validation come first: with fewer photos than such splits, training gets none (its
    scenes become procedural) and, with one photo, test and validation share it. A photo used
    for test or validation is never used for training.
    """
    order = ("test", "val", "train")
    needing = [split for split in order if counts.get(split, 0) > 0]
    groups: dict[str, list[int]] = {split: [] for split in order}
    if n_photos < len(needing):
        held_out = [split for split in needing if split != "train"]
        for i, split in enumerate(held_out):
            groups[split] = [i % n_photos] if n_photos else []
        return groups
    total = sum(counts[split] for split in needing)
    start = 0
    for i, split in enumerate(needing):
        later = len(needing) - i - 1
        if later == 0:
            take = n_photos - start
        else:
            take = min(max(1, round(n_photos * counts[split] / total)), n_photos - start - later)
        groups[split] = list(range(start, start + take))
        start += take
    return groups


def procedural_count(train: int, procedural: float) -> int:
    """How many of ``train`` training scenes are procedural for a fraction ``procedural``."""
    if not 0.0 <= procedural <= 1.0:
        raise ValueError(f"procedural must be a fraction in [0, 1], got {procedural}")
    return round(train * procedural)


def exposure_settings(cfg: SynthConfig) -> list[tuple[float, float]]:
    """The (long, short) exposures scenes cycle through: SID's for DNGs; for JPEGs, 1/darkness
    of JPEG_LONG_EXPOSURE per ``cfg.darkness`` level, the short one as SID's names write it (so
    that long / short, pair's ratio, is the darkness the frame was exposed at)."""
    if cfg.output == "dng":
        return list(zip(LONG_EXPOSURES, SHORT_EXPOSURES, strict=True))
    long = JPEG_LONG_EXPOSURE
    return [(long, float(format_exposure(long / level))) for level in cfg.darkness]


def plan_scenes(
    scenes: int,
    n_photos: int,
    rng: np.random.Generator,
    procedural: float = 0.0,
    profile: str | sensor.NoiseProfile = sensor.DEFAULT_PROFILE,
    exposures: list[tuple[float, float]] | None = None,
) -> list[ScenePlan]:
    """Scene ids with SID's split prefixes, cycling through the (long, short) ``exposures``
    (default SID's: ``exposure_settings``).

    A fraction ``procedural`` of the training scenes are dead-leaves scenes (spread evenly among
    them); validation and test scenes are always their own held-out photos. Each scene draws a
    system gain K from ``profile`` and the ISO that goes with it.
    """
    profile = sensor.load_profile(profile) if isinstance(profile, str) else profile
    exposures = exposures or exposure_settings(SynthConfig())
    counts = split_counts(scenes)
    n_procedural = procedural_count(counts["train"], procedural)
    photo_counts = {**counts, "train": counts["train"] - n_procedural}
    photos = assign_photos(n_photos, photo_counts)
    if photo_counts["train"] and not photos["train"]:
        log.warning("only %d photo(s), kept for test and validation: training scenes are all "
                    "procedural", n_photos)  # fmt: skip
        n_procedural = counts["train"]
    prefix = {"train": 0, "test": 1, "val": 2}
    plans = []
    for split in ("train", "test", "val"):
        n = counts[split]
        made = {"photo": 0, "procedural": 0}
        for i in range(n):
            # Procedural scene i when the running share floor(i * n_procedural / n) steps up.
            is_procedural = split == "train" and (
                (i + 1) * n_procedural // n > i * n_procedural // n
            )
            kind = "procedural" if is_procedural else "photo"
            # Cycle within each split and kind so that both see every ratio (100, 250 and 300).
            long_exposure, short_exposure = exposures[made[kind] % len(exposures)]
            photo = None if is_procedural else photos[split][made[kind] % len(photos[split])]
            made[kind] += 1
            gain = sensor.sample_gain(profile, rng)
            plans.append(
                ScenePlan(
                    scene_id=f"{prefix[split]}{i + 1:04d}",
                    split=split,
                    photo=photo,
                    long_exposure=long_exposure,
                    short_exposure=short_exposure,
                    iso=profile.iso(gain),
                    gain=gain,
                )
            )
    return plans


def split_sources(plans: list[ScenePlan], names: list[str]) -> dict[str, dict]:
    """Per split: how many scenes, how many procedural, and the names of the photos used
    (``names``: the photo list's names, as ``plan.photo`` indexes them)."""
    splits: dict[str, dict] = {}
    for plan in plans:
        split = splits.setdefault(plan.split, {"scenes": 0, "procedural": 0, "photos": set()})
        split["scenes"] += 1
        if plan.procedural:
            split["procedural"] += 1
        else:
            split["photos"].add(names[plan.photo])
    return {name: {**s, "photos": sorted(s["photos"])} for name, s in splits.items()}


def frame_meta(
    profile: sensor.NoiseProfile,
    neutral: np.ndarray,
    exposure: float,
    iso: int,
    fnumber: float = 8.0,
) -> DngMeta:
    """The DNG metadata of a frame of ``profile``'s camera: its levels, layout, make and model,
    its XYZ -> camera matrix (ColorMatrix1, D65) and the scene's as-shot neutral."""
    return DngMeta(
        profile.black_level,
        profile.white_level,
        tuple(float(v) for v in neutral),  # type: ignore[arg-type]
        exposure,
        iso,
        fnumber,
        make=profile.make,
        model=profile.model,
        cfa=profile.cfa,
        color_matrix=tuple(float(v) for row in profile.xyz_to_camera for v in row),
    )


# --- files ---------------------------------------------------------------------------------------


def load_photos(folder: Path | None) -> list[tuple[str, np.ndarray]]:
    """(name, sRGB float image in [0, 1]) for the bundled photos or every image in ``folder``."""
    import skimage
    from skimage import io
    from skimage.color import gray2rgb, rgba2rgb
    from skimage.util import img_as_float32

    if folder is None:
        data = Path(skimage.__file__).parent / "data"
        paths = [data / name for name in BUNDLED_PHOTOS]
    else:
        paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if not paths:
            raise DatasetError(f"{folder}: no photos ({', '.join(PHOTO_SUFFIXES)}) to build scenes")
    photos = []
    for path in paths:
        image = io.imread(path)
        if image.ndim == 2:
            image = gray2rgb(image)
        elif image.shape[2] == 4:
            image = rgba2rgb(image)
        photos.append((path.name, img_as_float32(image)))
    return photos


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def write_scene(
    folder: Path,
    plan: ScenePlan,
    photo: np.ndarray | None,
    size: tuple[int, int],
    frames: int,
    seed: int,
    profile: str | sensor.NoiseProfile = sensor.DEFAULT_PROFILE,
    read_noise: sensor.ReadNoise = "tukey",
    capture: SynthConfig | None = None,
) -> list[str]:
    """Write one scene's long exposure and ``frames`` short ones; return the SID list lines.

    ``photo`` is the scene's sRGB photo, or None for a procedural plan (a dead-leaves image).
    The scene is magnified onto the sensor, blurred by the lens and lit as ``capture``'s camera
    settings draw (scale, fnumber, defocus, shake, cct, sodium; default: params.yaml's defaults);
    every frame draws its own noise at the scene's system gain. ``capture.output`` says what the
    camera writes: raw DNGs, or (jpeg) the camera's processing of them (``lowlight.isp``): each
    short frame a JPEG at a quality drawn from ``capture.jpeg_quality``, and as the long one the
    scene rendered without noise or mosaic, a 16-bit PNG, its exposure metered to
    ``capture.metering``: brightness then has one meaning across scenes, which a model that sees
    a JPEG without its exposure time can learn.
    """
    profile = sensor.load_profile(profile) if isinstance(profile, str) else profile
    rng = np.random.default_rng([seed, int(plan.scene_id)])
    capture = capture or SynthConfig()
    lens = optics.draw_optics(rng, capture.scale, capture.fnumber, capture.defocus, capture.shake)
    if plan.procedural:
        # drawn at the photo scale, so that magnification softens it as it does a photo
        photo = dead_leaves(tuple(int(np.ceil(n / lens.scale)) for n in size), rng)
    elif photo is None:
        raise ValueError(f"scene {plan.scene_id} is planned from photo {plan.photo}: pass it")
    if rng.random() < 0.5:
        photo = photo[:, ::-1]
    window, scale = optics.place(photo, size, lens.scale, rng)
    lens = dataclasses.replace(lens, scale=scale)
    # A JPEG's values went through the camera's tone curve as well as the sRGB curve.
    to_linear = isp.to_linear if capture.output == "jpeg" else srgb_to_linear
    linear = optics.image_on_sensor(to_linear(window), size, lens)
    if capture.output == "jpeg":  # exposed as the camera meters it: a JPEG has no other exposure
        linear = linear * (capture.metering / max(float(np.mean(linear)), 1e-6))
    _, light = draw_night_light(rng, capture.cct, capture.sodium)
    to_camera, neutral = scene_colour(profile, light)
    gain = plan.gain or profile.gain(plan.iso)

    def raw_frame(exposure: float) -> np.ndarray:
        signal = scene_signal(linear, exposure / plan.long_exposure, to_camera, profile)
        frame_noise = sensor.sample_frame_noise(profile, gain, rng, read_noise)
        return sensor.apply_noise(
            signal, frame_noise, rng, profile.black_level, profile.white_level, profile.cfa
        )

    def dng(path: Path, exposure: float) -> None:
        meta = frame_meta(profile, neutral, exposure, plan.iso, lens.fnumber)
        write_dng(path, raw_frame(exposure), meta)

    def target(path: Path, exposure: float) -> None:
        # the camera's ideal rendering of the long exposure: no mosaic, no noise
        rendered = isp.develop(np.clip(linear @ to_camera.T, 0.0, None), to_camera)
        write_image(path, isp.quantise(rendered, 16), "png16")

    def dark(path: Path, exposure: float) -> None:
        quality = int(rng.integers(capture.jpeg_quality[0], capture.jpeg_quality[1] + 1))
        raw = raw_frame(exposure)
        rendered = isp.process(raw, profile.black_level, full_scale(profile), profile.cfa,
                               to_camera)  # fmt: skip
        write_image(path, isp.quantise(rendered, 8), "jpeg", quality)

    (write_long, long_suffix), (write_short, short_suffix) = {
        "dng": ((dng, ".dng"), (dng, ".dng")),
        "jpeg": ((target, ".png"), (dark, ".jpg")),
    }[capture.output]
    long_file = SidName(plan.scene_id, 0, plan.long_exposure).stem() + long_suffix
    write_long(folder / "long" / long_file, plan.long_exposure)
    lines = []
    for index in range(frames):
        short_file = SidName(plan.scene_id, index, plan.short_exposure).stem() + short_suffix
        write_short(folder / "short" / short_file, plan.short_exposure)
        lines.append(format_list_line(short_file, long_file, plan.iso, lens.fnumber,
                                      camera_folder(profile.make)))  # fmt: skip
    return lines
