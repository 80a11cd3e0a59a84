"""The pairs file: one row per (dark, bright) pair, the contract between pair and patch."""

from __future__ import annotations

import json
import os
import posixpath
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


def read_pairs(
    loc: storage.Location, images: storage.Location | None = None
) -> tuple[pa.Table, storage.Location]:
    """The pairs table and the folder its paths are relative to: ``images`` when given, else
    the converted folder the file records (``recorded_folder``)."""
    if not storage.exists(loc):
        raise DatasetError(f"{loc}: pairs file not found; run `lowlight pair` first")
    table = read_parquet(loc)
    if table.schema.remove_metadata() != PAIRS_SCHEMA:
        raise DatasetError(f"{loc}: not a lowlight pairs file (columns {table.column_names})")
    for column in PATH_COLUMNS:
        for value in table.column(column).to_pylist():
            if value is not None and not inside(value):
                raise DatasetError(f"{loc}: {column} path {value!r} leaves the converted folder "
                                   "(paths are relative to it, without '..')")  # fmt: skip
    for index, row in enumerate(table.select(list(REQUIRED)).to_pylist()):
        for column, what in REQUIRED.items():
            if row[column] is None:
                pair = f"row {index + 1}" if row["pair_id"] is None else f"pair {row['pair_id']}"
                raise DatasetError(f"{loc}: {pair}: its {what} is missing (null)")
    if images:
        return table, images
    return table, recorded_folder(loc, (table.schema.metadata or {}).get(b"converted_dir", b""))


# What every pairs row has (pair writes them all); the other columns may be null.
REQUIRED = {"pair_id": "pair id", "scene_id": "scene id", "split": "split",
            "dark": "dark image path", "bright": "bright image path", "ratio": "ratio"}  # fmt: skip


def recorded_folder(loc: storage.Location, recorded: bytes) -> str:
    """The converted folder pairs file ``loc`` records, refused when it lies outside both the
    working directory and the pairs file's own folder: a pairs file from elsewhere may no more
    send reads anywhere on the machine through it than through its paths (``inside``)."""
    folder = recorded.decode(errors="replace")
    where = _absolute(folder)
    anchors = (_absolute(str(storage.parent(loc))), os.getcwd())
    if not any(where == a or where.startswith(a.rstrip("/") + "/") for a in anchors if a != "/"):
        raise DatasetError(
            f"{loc}: its converted folder {folder!r} lies outside the working directory and the "
            "pairs file's folder; name the converted folder (patch --images, evaluate CONVERTED)"
        )
    return folder


def _absolute(loc: str) -> str:
    """``loc`` absolute with '..' resolved, in words (no links followed): a URI stays a URI."""
    if storage.is_remote(loc):
        scheme, path = loc.split("://", 1)
        return f"{scheme}://{posixpath.normpath('/' + path).lstrip('/')}"
    return os.path.abspath(loc)


PATH_COLUMNS = ("dark", "bright", "dark_packed")


def read_parquet(loc: storage.Location) -> pa.Table:
    """A whole Parquet file (manifest, pairs file); a damaged one is one line naming it."""
    fs, path = storage.resolve(loc)
    try:
        return pq.read_table(path, filesystem=fs)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the file system's, not Parquet's
            raise DatasetError(f"{loc}: cannot read: {exc.strerror or exc}") from None
        # pyarrow's words after "Could not open Parquet input source '<path>': ", first sentence
        reason = str(exc).split("': ", 1)[-1].split(". ")[0].strip().rstrip(".:")
        raise DatasetError(f"{loc}: not a Parquet file, or truncated ({reason})") from None


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
