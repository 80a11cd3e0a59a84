"""Put a trained generator into the package as a shipped model (``make pretrain``'s last step).

lowlight ships one model per kind of input (``lowlight.card.SHIPPED``/<input mode>: ``bayer``
for Bayer RAW files, ``xtrans`` for Fujifilm X-Trans RAW files, ``rgb`` for JPEG/PNG). Each
folder holds the weights in float16 (half the bytes, the same outputs to ~1e-3), the model card
with the training data's provenance and test metrics, and README.md, the card as Markdown.
``lowlight enhance`` uses the one that fits each file when the registry has no champion for it,
and ``train.init: shipped`` fine-tunes from it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from lowlight import card, evaluation, modes, storage
from lowlight.config import Params, SynthConfig
from lowlight.errors import DatasetError

MAX_BYTES = 8 * 2**20  # what the package may carry in all its shipped models (the project's rule)


def capture_note(cfg: SynthConfig) -> str:
    """How the synthetic scenes reached the sensor (lowlight.optics, lowlight.colour)."""
    shake = f"shake up to {cfg.shake:g} px" if cfg.shake else "no shake"
    return (
        f"{cfg.scale[0]:g}-{cfg.scale[1]:g} sensor pixels per photo pixel, f/{cfg.fnumber[0]:g}-"
        f"f/{cfg.fnumber[1]:g} diffraction, blur radius {cfg.defocus[0]:g}-{cfg.defocus[1]:g} px, "
        f"{shake}; blackbody light {cfg.cct[0]:g}-{cfg.cct[1]:g} K, {cfg.sodium:.0%} sodium lamps"
    )


def camera_note(cfg: SynthConfig) -> str:
    """The camera the frames were made for and whether its noise is calibrated: a profile
    whose source says NOT CALIBRATED (FujiXT2) is said so, in the profile's own words."""
    import json

    from lowlight import noise

    profile = noise.load_profile(cfg.profile)
    try:
        said = str(json.loads(profile.source).get("noise", ""))
    except (ValueError, AttributeError):  # a source given as plain text
        said = profile.source
    calibration = f"; {said}" if "NOT CALIBRATED" in said else ", calibrated"
    return (f"{profile.make} {profile.model}: noise profile {cfg.profile} ({cfg.read_noise} "
            f"read noise{calibration}), its colour matrix; other cameras through each file's "
            "own colour metadata")  # fmt: skip


def training_data(params: Params) -> dict:
    """Which photos and how many procedural scenes each split of the synthetic data holds."""
    import numpy as np

    from lowlight import synth

    photos = synth.load_photos(Path(params.synth.photos) if params.synth.photos else None)
    plans = synth.plan_scenes(params.synth.scenes, len(photos), np.random.default_rng(params.seed),
                              params.synth.procedural, params.synth.profile)  # fmt: skip
    return synth.split_sources(plans, [name for name, _ in photos])


# What the adversarial fine-tune may cost in PSNR on validation to ship (issue 23).
MAX_PSNR_COST = 0.3


def choose(l1_val: dict, gan_val: dict) -> tuple[bool, str]:
    """Whether the GAN fine-tune ships instead of the L1 model it started from, and why, from
    both models' validation metrics (never the test split's): both perceptual scores better
    (MS-SSIM higher, BRISQUE lower) at a PSNR cost of at most MAX_PSNR_COST."""
    a, b = l1_val["model"]["overall"], gan_val["model"]["overall"]
    cost = a["psnr"] - b["psnr"]
    figures = (
        f"validation, L1 -> GAN: PSNR {a['psnr']:.2f} -> {b['psnr']:.2f} dB, MS-SSIM "
        f"{a['msssim']:.4f} -> {b['msssim']:.4f}, BRISQUE {a['brisque']:.1f} -> {b['brisque']:.1f}"
    )
    perceptual = b["msssim"] > a["msssim"] and b["brisque"] < a["brisque"]
    if perceptual and cost <= MAX_PSNR_COST:
        return True, f"the GAN fine-tune: both perceptual scores better ({figures})"
    why = (
        f"costs {cost:.2f} dB, over {MAX_PSNR_COST}"
        if perceptual
        else "does not improve both perceptual scores"
    )
    return False, f"the L1 model: the GAN fine-tune {why} ({figures})"


def ship(
    models_dir: Path,
    reports_dir: Path,
    params: Params,
    params_file: str,
    command: str = "make pretrain",
    out: Path | None = None,
    versus: tuple[Path, Path] | None = None,
    validation: tuple[Path, Path] | None = None,
) -> dict:
    """Copy ``models_dir``'s generator and card, with provenance and ``reports_dir``'s test
    metrics, into ``out`` (default: the package's shipped model for its input mode)."""
    import torch

    from lowlight import tracking

    choice = {}
    if versus is not None:  # (GAN models, GAN reports): ship it if validation favours it
        if validation is None:
            raise DatasetError("--versus needs --validation: both models' validation reports")
        gan, why = choose(*(evaluation.read_metrics(folder) for folder in validation))
        other = reports_dir if gan else versus[1]
        if gan:
            models_dir, reports_dir = versus
        choice = {
            "chosen": why,
            "the other's test metrics": evaluation.read_metrics(other)["model"]["overall"],
        }
    state, trained = card.load_state(models_dir)  # checked against its card
    metrics = evaluation.read_metrics(reports_dir)
    provenance = {
        **trained.provenance,
        "trained on": "synthetic SID-layout frames of lowlight synth (no real photo pairs)",
        "camera": camera_note(params.synth),
        "data": training_data(params),
        "frames": f"{params.synth.scenes} scenes of {params.synth.size[0]}x{params.synth.size[1]}"
        f", {params.synth.frames} noise draws each, seed {params.seed}",
        "capture": capture_note(params.synth),
        "params": _relative(params_file),
        "code commit": tracking.git_commit(),
        "test metrics": {m: b.get("overall") for m, b in metrics.items()},
        "test metrics by ratio": {
            m: {k: v["psnr"] for k, v in b.items() if k.startswith("ratio_")}
            for m, b in metrics.items()
        },
        **choice,
        "reproduce": command,
    }
    shipped = dataclasses.replace(trained, provenance=provenance)
    out = Path(out) if out is not None else card.SHIPPED / shipped.input
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with storage.staged_dir(
        out, known=("README.md", *card.KNOWN), stage="export pretrained"
    ) as staging:
        torch.save(half, staging / card.WEIGHTS)
        shipped.save(staging)
        (staging / "README.md").write_text(readme(shipped))
    size = folder_bytes(out)
    # with the package's other shipped models, when this one is one of them
    others = [p for p in out.parent.iterdir() if p.is_dir() and p != out] if (
        out.parent.resolve() == card.SHIPPED.resolve()) else []  # fmt: skip
    total = size + sum(folder_bytes(p) for p in others)
    if total > MAX_BYTES:
        shutil.rmtree(out)
        raise DatasetError(f"{out}: {size / 2**20:.1f} MiB, {total / 2**20:.1f} MiB with the "
                           f"other shipped models, over the {MAX_BYTES / 2**20:.0f} MiB the "
                           "package may carry; train a smaller model")  # fmt: skip
    return {"out": str(out), "bytes": size, "input": shipped.input, **shipped.arguments,
            **({"chosen": choice["chosen"]} if choice else {})}  # fmt: skip


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# What each kind of shipped model is and is not, for its README.
ABOUT = {
    modes.RAW_MODE: (
        "# The RAW model shipped with lowlight\n\n"
        "What it is: a U-Net trained by `make pretrain` only on synthetic low-light frames of "
        "SID's camera, the Sony a7S II, made by `lowlight synth` with ELD's calibrated noise "
        "model. It restores linear camera RGB from the packed RAW mosaic; each file's own white "
        "balance and colour matrix render it, so other Bayer cameras get their own colours.\n\n"
        "What it is not: trained on real photo pairs (SID's or anyone's), on X-Trans or other "
        "non-Bayer sensors, or on JPEG/PNG input (it enhances RAW files only; `enhance` gives "
        "JPEG/PNG files to the sRGB model). Its noise model is the a7S II's; another camera's "
        "noise differs.\n\n"
    ),
    modes.XTRANS_MODE: (
        "# The X-Trans RAW model shipped with lowlight\n\n"
        "What it is: a U-Net trained by `make pretrain-xtrans` only on synthetic low-light "
        "frames of SID's second camera, the Fujifilm X-T2, made by `lowlight synth --profile "
        "FujiXT2`: the X-T2's black and white levels (SID's Fuji files: 1024, 16383), its "
        "colour matrix (LibRaw's and dcraw's table) and its 6x6 X-Trans layout, packed as SID's "
        "Fuji network takes it (9 channels at a third of the size). `enhance` gives it the RAW "
        "files whose own metadata says X-Trans; each file's white balance and colour matrix "
        "render it.\n\n"
        "Its noise is NOT calibrated: no public noise calibration of the X-T2 exists, so its "
        "training frames carry the Sony a7S II's calibrated noise (ELD's model) scaled to the "
        "X-T2's levels (`src/lowlight/profiles/FujiXT2.json` says how). A real X-T2's noise "
        "differs: expect it to denoise real RAFs less well than its test figures below say.\n\n"
        "What it is not: trained on real photo pairs (SID's Fuji set or anyone's), on Bayer "
        "sensors (`enhance` gives those to the RAW model) or on JPEG/PNG input.\n\n"
    ),
    modes.IMAGE_MODE: (
        "# The sRGB (JPEG/PNG) model shipped with lowlight\n\n"
        "What it is: a U-Net trained by `make pretrain` on dark JPEGs as a camera makes them: "
        "`lowlight synth` with `synth.output: jpeg` unprocesses each photo to the Sony a7S II's "
        "RAW (Brooks et al., CVPR 2019), exposes it 1/4 to 1/64 as bright through ELD's "
        "calibrated noise model, and processes it back as a camera would (demosaic, white "
        "balance, colour matrix, tone curve, 8 bits, JPEG at quality 70-95), every bright "
        "target metered to one level (`synth.metering`). A dark JPEG or PNG has no exposure "
        "time: `enhance` first brightens it in its linear light to that level (`--ratio auto`, "
        "the default; `convert.auto_target`), and the model removes the noise, the JPEG blocks "
        "and the crushed shadows.\n\n"
        "What it is not: trained on real phone photos or on another camera's processing (a "
        "phone's multi-frame night mode, its own tone curve or sharpening differ); it does not "
        "take RAW files (`enhance` gives those to the RAW model).\n\n"
    ),
}


def readme(shipped: card.ModelCard) -> str:
    about = ABOUT.get(shipped.input, f"# The {shipped.input} model shipped with lowlight\n\n")
    return (
        about
        + "Generated by `lowlight export pretrained`; do not edit by hand.\n\n"
        + shipped.describe()
    )


def _relative(path: str) -> str:
    """``path`` from the repository's root when it lies inside it (pretrain/params.yaml)."""
    root = Path(__file__).resolve().parents[2]
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return path
