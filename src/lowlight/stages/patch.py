"""patch: the train/val pairs cut into overlapping windows, streamed into Parquet parts."""

from __future__ import annotations

import contextlib
import hashlib

from lowlight import modes, pairs, patches, storage
from lowlight.config import PatchConfig

KNOWN = ("train/part-*.parquet", "val/part-*.parquet")  # its output before markers


def run(
    cfg: PatchConfig,
    pairs_loc: storage.Location,
    out: storage.Location,
    seed: int,
    images: storage.Location | None = None,
    mode: str = modes.DEFAULT,
) -> dict:
    """Cut every train/val pair into windows of the input ``mode`` (model.input).

    Test pairs are not patched: evaluation uses whole images.
    """
    table, images = pairs.read_pairs(pairs_loc, images)
    storage.check_output(out, (pairs_loc, images), KNOWN)
    input_mode = modes.get(mode)
    rows = sorted(table.to_pylist(), key=lambda r: r["pair_id"])
    input_mode.check_pairs([r for r in rows if r["split"] != "test"], pairs_loc)
    digest = hashlib.sha256(storage.read_bytes(pairs_loc)).hexdigest()
    curve = pairs.render_curve(rows)
    spec = input_mode.patch_spec(cfg.size, cfg.stride, cfg.format, digest, curve)
    summary: dict = {}
    skipped: list[str] = []
    # A local output is built aside and swapped in at the end; S3 objects appear one by one.
    staged = storage.staged_dir(out, (pairs_loc, images), KNOWN, stage="patch")
    staged = contextlib.nullcontext(out) if storage.is_remote(out) else staged
    with staged as root:
        for split in ("train", "val"):
            split_rows = [r for r in rows if r["split"] == split]
            counts = patches.write_split(root, split, split_rows, images, spec, cfg, seed,
                                         input_mode)  # fmt: skip
            skipped += counts.pop("skipped")
            summary.update(counts)
    summary.update(size=cfg.size, stride=cfg.stride, dtype=cfg.format, input=spec.input,
                   out=str(out), skipped=len(skipped))  # fmt: skip
    return summary
