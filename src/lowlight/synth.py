"""Synthetic SID-like data: clean photos turned into noisy short / clean long Bayer exposures.

The physics follows ELD (Wei et al., CVPR 2020): the scene is linear light, the sensor counts
photo-electrons (Poisson shot noise) with an ISO-dependent system gain K (DN per electron), and
the read-out adds read noise (Gaussian), row noise (one offset per row) and quantisation.
Levels are Sony a7S II's (SID's camera): black 512, white 16383.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowlight.colour import srgb_to_linear
from lowlight.dng import DngMeta, write_dng
from lowlight.errors import DatasetError
from lowlight.sid import SidName, format_list_line

# Sony a7S II, as used by SID (Chen et al. 2018): 14-bit with a black level of 512.
BLACK_LEVEL = 512
WHITE_LEVEL = 16383
# Camera-neutral white in raw RGB (AsShotNeutral); ~ daylight multipliers R x2.2, B x1.54.
AS_SHOT_NEUTRAL = (0.45, 1.0, 0.65)
# Exposures SID used: long 10 s or 30 s; short 0.1 / 0.04 / 0.033 s (ratios 100, 250, 300).
LONG_EXPOSURES = (10.0, 10.0, 10.0, 30.0)
SHORT_EXPOSURES = (0.1, 0.04, 0.033, 0.1)
ISOS = (100, 200, 400, 800, 1600, 3200, 6400)
# Brightest scene value lands at 90 % of the raw range in the long exposure.
LONG_HEADROOM = 0.9


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """Sample an HxWx3 image through an RGGB colour filter array -> HxW."""
    height, width, _ = rgb.shape
    if height % 2 or width % 2:
        raise ValueError(f"a Bayer mosaic needs even sizes, got {height}x{width}")
    bayer = np.empty((height, width), dtype=rgb.dtype)
    bayer[0::2, 0::2] = rgb[0::2, 0::2, 0]
    bayer[0::2, 1::2] = rgb[0::2, 1::2, 1]
    bayer[1::2, 0::2] = rgb[1::2, 0::2, 1]
    bayer[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return bayer


@dataclass(frozen=True)
class NoiseModel:
    """Sensor noise at one ISO; all figures in DN (digital numbers above black)."""

    gain: float  # K, DN per photo-electron
    read_sigma: float
    row_sigma: float

    @classmethod
    def for_iso(cls, iso: int) -> NoiseModel:
        # a7S II: ~150 k e- full well at base ISO 100 over ~15.9 k DN -> K ~ 0.1, linear in ISO.
        gain = 0.1 * iso / 100
        # Read noise grows with gain (ELD's log-linear fit), row noise ~ 15 % of it.
        read_sigma = 1.5 + 1.3 * gain
        return cls(gain=gain, read_sigma=read_sigma, row_sigma=0.15 * read_sigma)

    def variance(self, signal_dn: np.ndarray | float) -> np.ndarray | float:
        """Expected pixel variance for a mean signal (shot + read + row + quantisation)."""
        return self.gain * signal_dn + self.read_sigma**2 + self.row_sigma**2 + 1 / 12


def expose(
    signal_dn: np.ndarray,
    noise: NoiseModel,
    rng: np.random.Generator,
    black: int = BLACK_LEVEL,
    white: int = WHITE_LEVEL,
) -> np.ndarray:
    """Turn a mean signal (DN above black, HxW) into a raw frame with sensor noise, uint16."""
    electrons = rng.poisson(np.maximum(signal_dn, 0.0) / noise.gain)
    frame = electrons * noise.gain
    frame = frame + rng.normal(0.0, noise.read_sigma, signal_dn.shape)
    frame = frame + rng.normal(0.0, noise.row_sigma, (signal_dn.shape[0], 1))
    frame = np.round(frame + black)
    return np.clip(frame, 0, white).astype(np.uint16)


def scene_signal(linear_rgb: np.ndarray, exposure_fraction: float) -> np.ndarray:
    """Mean raw signal (DN above black, Bayer HxW) of a linear sRGB scene.

    ``exposure_fraction`` is this frame's exposure over the long one (1 for the long exposure).
    """
    camera_rgb = linear_rgb * np.asarray(AS_SHOT_NEUTRAL)
    full_scale = (WHITE_LEVEL - BLACK_LEVEL) * LONG_HEADROOM
    return mosaic_rggb(camera_rgb) * full_scale * exposure_fraction


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
    photo: int  # index into the photo list
    long_exposure: float
    short_exposure: float
    iso: int


def split_counts(scenes: int) -> dict[str, int]:
    """About 65/25/10 % train/test/val, at least one scene in each."""
    if scenes < 3:
        raise ValueError(f"need at least 3 scenes (one per split), got {scenes}")
    test = max(1, round(0.25 * scenes))
    val = max(1, round(0.1 * scenes))
    return {"train": scenes - test - val, "test": test, "val": val}


def assign_photos(n_photos: int, counts: dict[str, int]) -> dict[str, list[int]]:
    """Disjoint photos per split when there are enough, so no photo leaks between splits."""
    order = ("test", "val", "train")
    if n_photos < 3:
        return {split: list(range(n_photos)) for split in order}
    total = sum(counts.values())
    groups: dict[str, list[int]] = {}
    start = 0
    for split in order[:-1]:
        take = max(1, round(n_photos * counts[split] / total))
        groups[split] = list(range(start, start + take))
        start += take
    groups["train"] = list(range(start, n_photos))
    return groups


def plan_scenes(scenes: int, n_photos: int, rng: np.random.Generator) -> list[ScenePlan]:
    """Scene ids with SID's split prefixes, cycling through the exposure settings."""
    counts = split_counts(scenes)
    photos = assign_photos(n_photos, counts)
    prefix = {"train": 0, "test": 1, "val": 2}
    plans = []
    for split in ("train", "test", "val"):
        for i in range(counts[split]):
            # Cycle within each split so every split sees ratios 100, 250 and 300.
            setting = i % len(SHORT_EXPOSURES)
            plans.append(
                ScenePlan(
                    scene_id=f"{prefix[split]}{i + 1:04d}",
                    split=split,
                    photo=photos[split][i % len(photos[split])],
                    long_exposure=LONG_EXPOSURES[setting],
                    short_exposure=SHORT_EXPOSURES[setting],
                    iso=int(rng.choice(ISOS)),
                )
            )
    return plans


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
    folder: Path, plan: ScenePlan, photo: np.ndarray, size: tuple[int, int], frames: int, seed: int
) -> list[str]:
    """Write one scene's long exposure and ``frames`` short ones; return the SID list lines."""
    rng = np.random.default_rng([seed, int(plan.scene_id)])
    linear = srgb_to_linear(crop_scene(photo, size, rng))
    noise = NoiseModel.for_iso(plan.iso)
    fnumber = 8.0

    long_name = SidName(plan.scene_id, 0, plan.long_exposure).stem()
    long_frame = expose(scene_signal(linear, 1.0), noise, rng)
    meta = DngMeta(BLACK_LEVEL, WHITE_LEVEL, AS_SHOT_NEUTRAL, plan.long_exposure, plan.iso)
    write_dng(folder / "long" / f"{long_name}.dng", long_frame, meta)

    lines = []
    fraction = plan.short_exposure / plan.long_exposure
    for frame in range(frames):
        short_name = SidName(plan.scene_id, frame, plan.short_exposure).stem()
        short_frame = expose(scene_signal(linear, fraction), noise, rng)
        meta = DngMeta(BLACK_LEVEL, WHITE_LEVEL, AS_SHOT_NEUTRAL, plan.short_exposure, plan.iso)
        write_dng(folder / "short" / f"{short_name}.dng", short_frame, meta)
        lines.append(
            format_list_line(f"{short_name}.dng", f"{long_name}.dng", plan.iso, fnumber, "Sony")
        )
    return lines
