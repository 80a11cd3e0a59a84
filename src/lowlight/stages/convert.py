"""convert: every RAW file to an sRGB image (and the input mode's own file), plus the manifest."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from lowlight import conversion, modes, storage
from lowlight.config import ConvertConfig
from lowlight.errors import DatasetError

KNOWN = ("*.jpg", "*.png", "*.parquet")  # what convert writes: its output before markers


def run(
    cfg: ConvertConfig,
    raw_dir: Path,
    out: Path,
    shard: tuple[int, int] | None = None,
    mode: str = modes.DEFAULT,
) -> dict:
    """Convert every RAW under ``raw_dir`` (or one shard of them) and write the manifest.

    A whole conversion is built in a staging folder that replaces ``out`` only on success
    (unchanged files are linked over from the previous output); a shard writes into ``out``.
    ``mode`` (model.input) may add a file of its own per frame (bayer: the packed mosaic).
    """
    start = time.perf_counter()
    in_place = shard is not None or storage.is_remote(out)
    if in_place:  # shards of one conversion share ``out``: only never onto the input
        storage.check_apart(out, (raw_dir,))
    else:
        storage.check_output(out, (raw_dir,), KNOWN)
    input_mode = modes.get(mode)
    jobs = conversion.plan_jobs(conversion.list_raw_files(raw_dir), cfg, input_mode)
    if shard is not None:
        jobs = jobs[shard[0] :: shard[1]]
    manifest = conversion.manifest_name(shard)
    # unchanged files are linked over: from the last output, or from what a killed run finished
    previous = {source: (row, out) for source, row in
                conversion.previous_rows(storage.join(out, manifest)).items()}  # fmt: skip
    if storage.is_remote(out):
        salvage = []
    else:
        salvage = [Path(out)] if in_place else storage.stale_staging(out)
    for folder in salvage:
        found = conversion.journal_rows(folder, manifest)
        previous.update({source: (row, folder) for source, row in found.items()})
    # S3 objects appear one by one (each whole), as the patch stage's do
    staged = storage.staged_dir(out, (raw_dir,), KNOWN, stage="convert")
    with storage.output_errors(out), contextlib.nullcontext(out) if in_place else staged as target:
        journal = None
        if not storage.is_remote(target):
            journal = Path(target) / conversion.journal_name(manifest)
        rows = conversion.convert_jobs(jobs, cfg, raw_dir, target, previous, input_mode, journal)
        conversion.write_manifest(storage.join(target, manifest), rows, str(raw_dir))
        if journal is not None:
            journal.unlink(missing_ok=True)
        failed = [r for r in rows if r["status"] == "failed"]
        if rows and len(failed) == len(rows):
            raise DatasetError(
                f"{raw_dir}: every file failed to convert, first: {failed[0]['error']}"
            )
    skipped = sum(1 for r in rows if r.get("skipped"))
    megapixels = sum((r["width"] or 0) * (r["height"] or 0) for r in rows) / 1e6
    return {
        "files": len(rows),
        "converted": len(rows) - len(failed) - skipped,
        "skipped_unchanged": skipped,
        "failed": len(failed),
        "failed_files": [r["source"] for r in failed],
        "seconds": round(time.perf_counter() - start, 2),
        "megapixels": round(megapixels, 2),
        "manifest": str(storage.join(out, manifest)),
    }


def merge(out: Path, shard_dirs: list[Path] | None = None) -> dict:
    """Combine shard manifests written by ``run(..., shard=(i, n))``.

    With ``shard_dirs`` (each shard converted into its own folder), ``out`` is built from them.
    """
    if not shard_dirs:
        return conversion.merge_manifests(out)
    with storage.staged_dir(out, tuple(shard_dirs), KNOWN, stage="convert") as staging:
        conversion.gather_shards([Path(d) for d in shard_dirs], staging)
        summary = conversion.merge_manifests(staging)
    return {**summary, "manifest": str(Path(out) / conversion.MANIFEST)}
