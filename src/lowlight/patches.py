"""Overlapping patches of image pairs, stored as Parquet: the grid, the schema, writer and reader.

The schema is defined here once and imported by the writer, the datasets and the tests. Pixels
are fixed-size binary (HxWxC row-major of the declared dtype), so a row group decodes to one
contiguous numpy array without copies per patch.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from lowlight import __version__, imageio, modes, storage
from lowlight.config import PatchConfig
from lowlight.errors import DatasetError
from lowlight.rendering import VECTOR_SIZE, RenderParams
from lowlight.windows import cut_windows

log = logging.getLogger(__name__)

PART_NAME = "part-{index:05d}.parquet"
RENDER_BYTES = VECTOR_SIZE * 4  # a RenderParams.vector of float32
DTYPES = {"uint8": np.uint8, "uint16": np.uint16}


# --- the schema ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchSpec:
    """What a patch file holds; stored in every file's key-value metadata."""

    size: int
    stride: int
    dtype: str = "uint8"
    dark_shape: tuple[int, int, int] = (0, 0, 0)  # per patch, HxWxC
    bright_shape: tuple[int, int, int] = (0, 0, 0)
    pairs_sha256: str = ""
    extra: dict = field(default_factory=dict)
    input: str = modes.DEFAULT  # model.input (lowlight.modes) the dark patches are for
    dark_dtype: str = ""  # "" = dtype; packed Bayer is always uint16
    render: str = ""  # a tone curve: rows carry the bright frame's RenderParams (12 float32)
    # how dark integers map to values: "" = x / the dtype's max; imageio.SIGNED16 (packed Bayer)
    dark_encoding: str = ""

    @property
    def dark_pixels(self) -> str:
        return self.dark_dtype or self.dtype

    @property
    def channels(self) -> int:
        return self.dark_shape[2]

    def nbytes(self, shape: tuple[int, int, int], dtype: str = "") -> int:
        return int(np.prod(shape)) * np.dtype(dtype or self.dtype).itemsize

    def schema(self) -> pa.Schema:
        fields = [
            ("pair_id", pa.string()),
            ("scene_id", pa.string()),
            ("ratio", pa.float32()),
            ("y", pa.int32()),
            ("x", pa.int32()),
            ("dark", pa.binary(self.nbytes(self.dark_shape, self.dark_pixels))),
            ("bright", pa.binary(self.nbytes(self.bright_shape))),
        ]
        if self.render:
            fields.append(("render", pa.binary(RENDER_BYTES)))
        return pa.schema(fields, metadata=self.metadata())

    def metadata(self) -> dict[bytes, bytes]:
        values = {
            "size": self.size,
            "stride": self.stride,
            "dtype": self.dtype,
            "channels": self.channels,
            "dark_shape": list(self.dark_shape),
            "bright_shape": list(self.bright_shape),
            "pairs_sha256": self.pairs_sha256,
            "input": self.input,
            "dark_dtype": self.dark_pixels,
            "lowlight_version": __version__,
            **({"render": self.render} if self.render else {}),
            **({"dark_encoding": self.dark_encoding} if self.dark_encoding else {}),
            **self.extra,
        }
        return {f"lowlight.{k}".encode(): json.dumps(v).encode() for k, v in values.items()}

    @classmethod
    def from_metadata(cls, metadata: dict[bytes, bytes] | None, source: str = "") -> PatchSpec:
        prefix = b"lowlight."
        values = {
            k[len(prefix) :].decode(): json.loads(v)
            for k, v in (metadata or {}).items()
            if k.startswith(prefix)
        }
        try:
            spec = cls(
                size=values["size"],
                stride=values["stride"],
                dtype=values["dtype"],
                dark_shape=tuple(values["dark_shape"]),
                bright_shape=tuple(values["bright_shape"]),
                pairs_sha256=values.get("pairs_sha256", ""),
                input=values.get("input", modes.DEFAULT),
                # "" when the darks share the brights' dtype, as the spec was made
                dark_dtype=values.get("dark_dtype", values["dtype"]).replace(values["dtype"], ""),
                render=values.get("render", ""),
                dark_encoding=values.get("dark_encoding", ""),
            )
        except KeyError as exc:
            raise DatasetError(f"{source}: not a lowlight patch file (no {exc} metadata)") from None
        mode = modes.MODES.get(spec.input)  # an unknown one is train's to refuse
        if mode is not None and spec.dark_encoding != mode.dark_encoding():
            raise DatasetError(
                f"{source}: {spec.input} patches of an older lowlight (dark values encoded "
                f"{spec.dark_encoding or 'unsigned, below black clipped to 0'}, not "
                f"{mode.dark_encoding()}); run `lowlight patch` again"
            )
        return spec


def decode_pixels(
    column: pa.ChunkedArray | pa.Array, shape: tuple[int, ...], dtype: str
) -> np.ndarray:
    """A fixed-size binary column -> N x shape array, without a copy per row."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    width = column.type.byte_width
    data = column.buffers()[1]
    flat = np.frombuffer(
        data, dtype=np.uint8, count=width * len(column), offset=column.offset * width
    )
    return flat.view(np.dtype(dtype)).reshape((len(column), *shape))


# --- writing -------------------------------------------------------------------------------------


class PatchWriter:
    """Streams patch rows into ``folder/part-NNNNN.parquet``: zstd, row groups of ``row_group``.

    Memory holds at most one row group; each part appears atomically when it is complete.
    """

    def __init__(self, folder: storage.Location, spec: PatchSpec, row_group: int, part_rows: int):
        self.folder, self.spec = folder, spec
        self.row_group, self.part_rows = row_group, max(part_rows, row_group)
        self.schema = spec.schema()
        self.parts: list[str] = []
        self.rows = 0
        self._buffer: dict[str, list] = {name: [] for name in self.schema.names}
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0
        self._tmp: Path | None = None
        self._location: storage.Location = ""

    def add(
        self,
        pair_id: str,
        scene_id: str,
        ratio: float,
        starts: np.ndarray,
        dark: np.ndarray,
        bright: np.ndarray,
        render: np.ndarray | None = None,
    ) -> None:
        """Add the windows of one pair (N starts, N dark and N bright windows; ``render``: the
        pair's 12 rendering floats when the spec carries them)."""
        if self.spec.render and render is None:
            raise ValueError(f"pair {pair_id}: the patch spec needs its rendering parameters")
        dtype, dark_dtype = DTYPES[self.spec.dtype], DTYPES[self.spec.dark_pixels]
        for i in range(len(starts)):
            self._buffer["pair_id"].append(pair_id)
            self._buffer["scene_id"].append(scene_id)
            self._buffer["ratio"].append(ratio)
            self._buffer["y"].append(int(starts[i][0]))
            self._buffer["x"].append(int(starts[i][1]))
            self._buffer["dark"].append(np.ascontiguousarray(dark[i], dark_dtype).tobytes())
            self._buffer["bright"].append(np.ascontiguousarray(bright[i], dtype=dtype).tobytes())
            if self.spec.render:
                self._buffer["render"].append(np.asarray(render, np.float32).tobytes())
            self._buffered += 1
            if self._buffered >= self.row_group:
                self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        if self._writer is None:
            self._open_part()
        table = pa.Table.from_pydict(self._buffer, schema=self.schema)
        self._writer.write_table(table, row_group_size=self.row_group)
        self.rows += self._buffered
        self._part_rows += self._buffered
        self._buffer = {name: [] for name in self.schema.names}
        self._buffered = 0
        if self._part_rows >= self.part_rows:
            self._close_part()

    def _open_part(self) -> None:
        self._location = storage.join(self.folder, PART_NAME.format(index=len(self.parts)))
        self._tmp = storage.temp_for(self._location)
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")

    def _close_part(self) -> None:
        self._writer.close()
        self._writer = None
        storage.commit(self._tmp, self._location)
        self.parts.append(str(self._location))
        self._part_rows = 0

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._close_part()

    def abort(self) -> None:
        """Drop the part being written: nothing partial appears."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> PatchWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowGroup:
    """One unit of reading: a row group of one part file."""

    path: str
    index: int
    rows: int


def list_parts(folder: storage.Location) -> list[str]:
    return storage.list_files(folder, ".parquet")


def open_part(location: str) -> pq.ParquetFile:
    fs, path = storage.resolve(location)
    return pq.ParquetFile(fs.open_input_file(path))


def scan(folder: storage.Location) -> tuple[PatchSpec, list[RowGroup]]:
    """The spec shared by all parts in ``folder`` and their row groups, from footers only."""
    parts = list_parts(folder)
    if not parts:
        raise DatasetError(f"{folder}: no patch parts (part-*.parquet); run `lowlight patch`")
    spec, groups = None, []
    for location in parts:
        meta = open_part(location).metadata
        part_spec = PatchSpec.from_metadata(meta.metadata, location)
        if spec is not None and part_spec != spec:
            raise DatasetError(f"{location}: patch spec {part_spec} differs from {spec}")
        spec = part_spec
        groups += [
            RowGroup(location, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)
        ]
    return spec, groups


def read_row_group(group: RowGroup, spec: PatchSpec) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """(dark N x H x W x C, bright N x H x W x C, the other columns) of one row group."""
    table = open_part(group.path).read_row_group(group.index)
    dark = decode_pixels(table.column("dark"), spec.dark_shape, spec.dark_pixels)
    bright = decode_pixels(table.column("bright"), spec.bright_shape, spec.dtype)
    return dark, bright, table.drop_columns(["dark", "bright"])


def read_renders(table: pa.Table) -> np.ndarray:
    """The N x 12 rendering floats of a row group's other columns (``read_row_group``)."""
    return decode_pixels(table.column("render"), (VECTOR_SIZE,), "float32")


def iter_patches(folder: storage.Location) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    spec, groups = scan(folder)
    for group in groups:
        dark, bright, _ = read_row_group(group, spec)
        yield from zip(dark, bright, strict=True)


def cut_pair(
    row: dict, images: storage.Location, cfg: PatchConfig, seed: int, mode: modes.InputMode
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """(starts, dark windows, bright windows) of one pair, or why it has to be skipped.

    The dark windows come from the mode's input, at ``1 / mode.scale`` of the coordinates and
    the size of the bright windows. Their starts fall on the mode's pattern period (X-Trans:
    6x6) because its patch size and stride do (``InputMode.patch_spec``) and a packed input
    ends on a whole period.
    """
    dark_name, scale = row[mode.dark_column], mode.scale
    if dark_name is None:
        return f"pair {row['pair_id']} skipped: {mode.missing_input('its pairs row')}"
    dark_loc, bright_loc = storage.join(images, dark_name), storage.join(images, row["bright"])
    try:
        dark = mode.read_input(dark_loc, cfg.format)
        bright = imageio.to_dtype(imageio.read_image(bright_loc), cfg.format)
    except DatasetError as exc:
        return f"pair {row['pair_id']} skipped ({dark_loc}, {bright_loc}): {exc}"
    beyond = [b - scale * d for b, d in zip(bright.shape[:2], dark.shape[:2], strict=True)]
    if all(0 <= extra < mode.period for extra in beyond):
        # packing drops the edges past the last whole block of the colour pattern
        bright = bright[: scale * dark.shape[0], : scale * dark.shape[1]]
    if bright.shape[:2] != (dark.shape[0] * scale, dark.shape[1] * scale):
        return (
            f"pair {row['pair_id']} skipped: {dark_loc} is {dark.shape[1]}x{dark.shape[0]} "
            f"but {bright_loc} is {bright.shape[1]}x{bright.shape[0]}"
        )
    starts, dark_windows = cut_windows(dark, cfg.size // scale, cfg.stride // scale)
    _, bright_windows = cut_windows(bright, cfg.size, cfg.stride)
    starts = starts * scale
    if cfg.max_per_image is not None and len(starts) > cfg.max_per_image:
        rng = np.random.default_rng([seed, zlib.crc32(row["pair_id"].encode())])
        keep = np.sort(rng.choice(len(starts), cfg.max_per_image, replace=False))
        starts, dark_windows, bright_windows = (
            starts[keep],
            dark_windows[keep],
            bright_windows[keep],
        )
    return starts, dark_windows, bright_windows


def write_split(
    root: storage.Location,
    split: str,
    rows: list[dict],
    images: storage.Location,
    spec: PatchSpec,
    cfg: PatchConfig,
    seed: int,
    mode: modes.InputMode,
) -> dict:
    """One split's parts under ``root/split``, replacing any stale ones; its counts and the
    pairs that had to be skipped (logged, the others go on; all of them: an error)."""
    folder = storage.join(root, split)
    storage.make_dirs(folder)
    for stale in list_parts(folder):
        storage.remove(stale)
    skipped = []
    with PatchWriter(folder, spec, cfg.row_group, cfg.part_rows) as writer:
        for row in tqdm(rows, desc=f"patch {split}", unit="pair"):
            windows = cut_pair(row, images, cfg, seed, mode)
            if isinstance(windows, str):
                log.warning("%s", windows)
                skipped.append(windows)
                continue
            render = None
            if spec.render:
                render = RenderParams.from_dict(json.loads(row["bright_render"])).vector
            writer.add(row["pair_id"], row["scene_id"], row["ratio"], *windows, render=render)
    if rows and len(skipped) == len(rows):  # empty patch folders would only fail in train
        raise DatasetError(f"{images}: none of the {len(rows)} {split} pairs could be used; "
                           f"first: {skipped[0]}")  # fmt: skip
    return {
        f"{split}_pairs": len(rows),
        f"{split}_patches": writer.rows,
        f"{split}_parts": len(writer.parts),
        "skipped": skipped,
    }
