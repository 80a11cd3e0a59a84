"""The pairs file: one row per (dark, bright) pair, the contract between pair and patch."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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
        ("dark_packed", pa.string()),  # the input mode's own file of the dark frame, or null
        ("dark_render", pa.string()),  # RenderParams JSON of each frame (lowlight.rendering)
        ("bright_render", pa.string()),
    ]
)


def write_pairs(
    path: Path, pairs: list[Pair], files: dict[str, ConvertedFile], converted_dir: str
) -> None:
    """Write ``pairs`` with dark/bright stems replaced by their converted files."""
    rows = []
    for pair in pairs:
        dark, bright = files[pair.dark], files[pair.bright]
        row = asdict(pair)
        row.update(dark=dark.output, bright=bright.output, dark_packed=dark.input_file,
                   dark_render=dark.render, bright_render=bright.render)  # fmt: skip
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
    for column in PATH_COLUMNS:
        for value in table.column(column).to_pylist():
            if value is not None and not inside(value):
                raise DatasetError(f"{loc}: {column} path {value!r} leaves the converted folder "
                                   "(paths are relative to it, without '..')")  # fmt: skip
    return table, (table.schema.metadata or {}).get(b"converted_dir", b"").decode()


PATH_COLUMNS = ("dark", "bright", "dark_packed")


def inside(path: str) -> bool:
    """A relative POSIX path that stays below its folder (no root and no '..')."""
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts


@dataclass(frozen=True)
class ConvertedFile:
    """What the pairs file takes from a frame's convert manifest row."""

    output: str  # the RGB conversion
    input_file: str | None  # the input mode's own file
    render: str | None  # RenderParams JSON


def manifest_frames(
    rows: list[dict], input_column: str
) -> tuple[list[Frame], dict[str, ConvertedFile], int]:
    """The SID-named ``ok`` rows of a convert manifest as frames to pair: (frames, their
    converted files by stem, how many rows had no SID name). ``input_column``: the manifest's
    column of the input mode's own file."""
    frames, files, unnamed = [], {}, 0
    for row in rows:
        name = parse_name(row["source"])
        if name is None:
            unnamed += 1
            continue
        stem = PurePosixPath(row["source"]).stem
        frames.append(Frame(stem, name, row["iso"]))
        files[stem] = ConvertedFile(row["output"], row[input_column], row.get("render"))
    return frames, files, unnamed


def render_curve(rows: list[dict]) -> str:
    """The tone curve the pairs' bright frames were rendered with (convert.curve)."""
    for row in rows:
        if row.get("bright_render"):
            return json.loads(row["bright_render"]).get("curve", "bt709")
    return "bt709"
