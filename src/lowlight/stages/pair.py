"""pair: each short exposure with its scene's long exposure, from the convert manifest."""

from __future__ import annotations

from pathlib import Path

from lowlight import conversion, pairs, sid, storage
from lowlight.config import PairConfig
from lowlight.errors import DatasetError


def run(cfg: PairConfig, converted: Path, pairs_path: Path, lists_dir: Path | None = None) -> dict:
    """Pair short with long exposures from the converted manifest (+ SID list files)."""
    table, raw_dir = conversion.read_manifest(converted)
    rows = table.to_pylist()
    ok = [r for r in rows if r["status"] == "ok"]
    frames, files, unnamed = pairs.manifest_frames(ok, conversion.INPUT_FILE_COLUMN)
    lists = {}
    for folder in [lists_dir] if lists_dir else [raw_dir, storage.parent(raw_dir)]:
        if folder and storage.is_dir(folder):
            lists.update(sid.read_list_files(folder))
    found = sid.pair_frames(frames, cfg.select, lists)
    if not found:
        raise DatasetError(
            f"{converted}: no (short, long) pairs among {len(ok)} converted frames "
            "(no long exposures, or no SID-named files)"
        )
    pairs.write_pairs(pairs_path, found, files, str(converted))
    return {
        "pairs": len(found),
        "splits": {s: sum(1 for p in found if p.split == s) for s in sid.SPLITS},
        "ratios": sorted({round(p.ratio) for p in found}),
        "failed_conversions": len(rows) - len(ok),
        "not_sid_named": unnamed,
        "lists_used": bool(lists),
        "out": str(pairs_path),
    }
