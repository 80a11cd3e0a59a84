"""synth: a small SID-layout dataset of synthetic RAW frames (the demo's and the tests' data),
or of the dark JPEGs a camera makes of them (``synth.output: jpeg``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from lowlight import noise, sid, storage
from lowlight import synth as synthetic
from lowlight.config import SynthConfig

# what synth writes (SID's Sony or Fuji layout): its output before markers
KNOWN = ("Sony/*", "Sony_*_list.txt", "Fuji/*", "Fuji_*_list.txt")


def run(cfg: SynthConfig, out: Path, seed: int) -> dict:
    """Write ``out/Sony/{short,long}/*.dng`` (jpeg: ``short/*.jpg``, ``long/*.png``) and the
    three list files; the profile's camera names the folder as SID does (FujiXT2: ``Fuji/``,
    X-Trans DNGs, ``Fuji_{train,val,test}_list.txt``)."""
    camera = sid.camera_folder(noise.load_profile(cfg.profile).make)
    storage.check_output(out, (cfg.photos,), KNOWN)  # before the photos load
    photos = synthetic.load_photos(Path(cfg.photos) if cfg.photos else None)
    rng = np.random.default_rng(seed)
    exposures = synthetic.exposure_settings(cfg)
    plans = synthetic.plan_scenes(cfg.scenes, len(photos), rng, cfg.procedural, cfg.profile,
                                  exposures)  # fmt: skip
    lines: dict[str, list[str]] = {split: [] for split in sid.SPLITS}
    with storage.staged_dir(out, (cfg.photos,), KNOWN, stage="synth") as staging:
        for plan in tqdm(plans, desc="synth", unit="scene"):
            photo = None if plan.procedural else photos[plan.photo][1]
            lines[plan.split] += synthetic.write_scene(
                staging / camera,
                plan,
                photo,
                cfg.size,
                cfg.frames,
                seed,
                cfg.profile,
                cfg.read_noise,
                cfg,
            )
        for split, split_lines in lines.items():
            path = staging / sid.list_file(camera, split)
            path.write_text("".join(f"{line}\n" for line in split_lines))
    return {
        "scenes": len(plans),
        "files": len(plans) * (cfg.frames + 1),
        "size": f"{cfg.size[0]}x{cfg.size[1]}",
        "splits": {split: len(v) // cfg.frames for split, v in lines.items()},
        "procedural": sum(plan.procedural for plan in plans),
        "output": cfg.output,
        "out": str(Path(out) / camera),
    }
