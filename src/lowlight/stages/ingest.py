"""ingest (Kubeflow's first step): bring a RAW folder in from S3, a path or a DVC repository."""

from __future__ import annotations

import time
from pathlib import Path

from lowlight import storage
from lowlight.errors import DatasetError
from lowlight.raw import RAW_SUFFIXES


def run(source: str, out: Path, repo: str | None = None, rev: str | None = None) -> dict:
    """Copy a RAW folder to ``out``: from an ``s3://`` URI, a local path, or ``source`` inside
    the DVC-tracked git repository ``repo`` at revision ``rev`` (pulled from its DVC remote)."""
    out = Path(out)
    start = time.perf_counter()
    with storage.staged_dir(out, stage="ingest") as staging:
        if repo:
            storage.copy_from_dvc(repo, rev or None, source, staging)
        else:
            storage.copy_tree(source, staging)
        files = {p: p.stat().st_size for p in staging.rglob("*") if p.is_file()}
        if not files:
            raise DatasetError(f"{source}: no files to ingest")
    return {
        "source": f"{repo}@{rev or 'HEAD'}:{source}" if repo else source,
        "files": len(files),
        "raw_files": sum(1 for p in files if p.suffix.lower() in RAW_SUFFIXES),
        "megabytes": round(sum(files.values()) / 1e6, 1),
        "seconds": round(time.perf_counter() - start, 1),
        "out": str(out),
    }
