"""The pairs file: one row per (dark, bright) pair, the contract between pair and patch."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from lowlight import __version__, storage
from lowlight.errors import DatasetError
from lowlight.sid import Frame, Pair, parse_name
from lowlight.storage import atomic_path

PAIRS_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("scene_id", pa.string()),
        ("split", pa.string()),
        ("dark", pa.string()),  # relative to the converted folder (metadata "converted_dir")
        ("bright", pa.string()),
        ("dark_exposure", pa.float64()),
        ("bright_exposure", pa.float64()),
        ("ratio", pa.float64()),
        ("iso", pa.int32()),
        (
            "dark_packed",
            pa.string(),
        ),  # the input mode's own file of the dark frame, or null
    ]
)


def write_pairs(
    path: Path,
    pairs: list[Pair],
    outputs: dict[str, str],
    converted_dir: str,
    inputs: dict[str, str | None] | None = None,
) -> None:
    """Write ``pairs`` with dark/bright stems replaced by their converted files' paths
    (``inputs``: the input mode's own file of each stem, from the manifest)."""
    rows = []
    for pair in pairs:
        row = asdict(pair)
        row["dark"], row["bright"] = outputs[pair.dark], outputs[pair.bright]
        row["dark_packed"] = (inputs or {}).get(pair.dark)
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=PAIRS_SCHEMA)
    table = table.replace_schema_metadata(
        {b"converted_dir": converted_dir.encode(), b"lowlight_version": __version__.encode()}
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_pairs(loc: storage.Location) -> tuple[pa.Table, str]:
    """The pairs table and the converted folder its paths are relative to."""
    if not storage.exists(loc):
        raise DatasetError(f"{loc}: pairs file not found; run `lowlight pair` first")
    fs, path = storage.resolve(loc)
    table = pq.read_table(path, filesystem=fs)
    if table.schema.remove_metadata() != PAIRS_SCHEMA:
        raise DatasetError(f"{loc}: not a lowlight pairs file (columns {table.column_names})")
    return table, (table.schema.metadata or {}).get(b"converted_dir", b"").decode()


def manifest_frames(
    rows: list[dict], input_column: str
) -> tuple[list[Frame], dict[str, str], dict[str, str | None], int]:
    """The SID-named ``ok`` rows of a convert manifest as frames to pair: (frames, converted
    file by stem, the input mode's own file (``input_column``) by stem, how many rows had no
    SID name)."""
    frames, outputs, inputs, unnamed = [], {}, {}, 0
    for row in rows:
        name = parse_name(row["source"])
        if name is None:
            unnamed += 1
            continue
        stem = PurePosixPath(row["source"]).stem
        frames.append(Frame(stem, name, row["iso"]))
        outputs[stem], inputs[stem] = row["output"], row[input_column]
    return frames, outputs, inputs, unnamed
