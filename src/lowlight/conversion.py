"""Planning and bookkeeping of the convert stage: which files, which gain, the manifest.

The manifest (``converted.parquet``) is the stage's contract: one row per RAW file, ``ok`` or
``failed`` with the reason, so a corrupt file is reported and the batch goes on. JPEG and PNG
sources (a camera's own processing, e.g. ``synth.output: jpeg``) are brightened in their own
linear light (``lowlight.isp``) to a metered level: a JPEG has no exposure time to read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from lowlight import __version__, isp, modes, storage
from lowlight.colour import linear_to_srgb, srgb_to_linear
from lowlight.config import ConvertConfig
from lowlight.errors import DatasetError, LowlightError
from lowlight.imageio import BITS, IMAGE_SUFFIXES, SUFFIX, decode_image, to_dtype, write_image
from lowlight.modes import InputMode
from lowlight.pairs import read_parquet
from lowlight.raw import RAW_SUFFIXES, RawMeta, decode, estimate_gain
from lowlight.rendering import RenderParams
from lowlight.sid import exposure_ratio, parse_name
from lowlight.storage import Location, atomic_path

log = logging.getLogger(__name__)

MANIFEST = "converted.parquet"
# SID's long exposures are 10 s or 30 s and its short ones 0.1 s or less: 1 s separates them.
LONG_EXPOSURE_MIN = 1.0
# The manifest's camera of a JPEG/PNG source: its pixels are already rendered.
IMAGE_CAMERA = "image"
# The column of the input mode's own file. Named for bayer, the first mode to have one; kept so
# that manifests stay byte for byte what they were.
INPUT_FILE_COLUMN = "packed"
MANIFEST_SCHEMA = pa.schema(
    [
        ("source", pa.string()),  # relative to the RAW folder
        ("output", pa.string()),  # relative to the converted folder; null when failed
        ("source_sha256", pa.string()),
        ("exposure", pa.float64()),
        ("iso", pa.int32()),
        ("camera", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("gain", pa.float64()),
        ("status", pa.string()),  # ok | failed
        ("error", pa.string()),
        ("settings", pa.string()),  # what produced the output; unchanged -> skip on re-run
        (INPUT_FILE_COLUMN, pa.string()),  # relative, as output; null when the mode has none
        ("render", pa.string()),  # JSON of lowlight.rendering.RenderParams: how LibRaw renders it
    ]
)


@dataclass(frozen=True)
class Job:
    source: str
    output: str
    gain: float | str  # a number or "auto"
    exposure: float | None  # from the SID name, when it has one
    input_file: str | None = None  # where the input mode's own file goes (lowlight.modes)


def list_raw_files(raw_dir: Location) -> list[str]:
    """Every RAW file (and JPEG/PNG image) under ``raw_dir`` (any depth, local or ``s3://``),
    as sorted relative POSIX paths."""
    if not storage.is_dir(raw_dir):
        raise DatasetError(f"{raw_dir}: RAW folder not found")
    files = [
        name
        for name in storage.list_suffixed(raw_dir, RAW_SUFFIXES | IMAGE_SUFFIXES)
        if not PurePosixPath(name).name.startswith(".")
    ]
    if not files:
        raise DatasetError(f"{raw_dir}: no RAW files ({', '.join(sorted(RAW_SUFFIXES))}) or "
                           f"images ({', '.join(sorted(IMAGE_SUFFIXES))})")  # fmt: skip
    return files


def is_image(source: str) -> bool:
    """A JPEG/PNG source, converted as it is, not a RAW file."""
    return PurePosixPath(source).suffix.lower() in IMAGE_SUFFIXES


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise LowlightError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise LowlightError(f"--shard {text}: need 0 <= i < n")
    return index, count


def output_stems(files: list[str]) -> dict[str, str]:
    """Each file's output name without its extension: the source's path without its suffix,
    unless two files would then share it (IMG_1.dng and IMG_1.DNG, or .ARW beside .DNG, also
    on case-insensitive disks): those keep the suffix (IMG_1.DNG -> IMG_1.DNG.png)."""
    plain = {f: PurePosixPath(f).with_suffix("").as_posix() for f in files}
    counts = defaultdict(int)
    for stem in plain.values():
        counts[stem.casefold()] += 1
    return {f: stem if counts[stem.casefold()] == 1 else f for f, stem in plain.items()}


def plan_jobs(files: list[str], cfg: ConvertConfig, mode: InputMode) -> list[Job]:
    """One job per file with its gain: SID shorts by exposure ratio, others by ``cfg.ratio``.

    The ratio uses the longest exposure of the same scene among ALL files (not only a shard's).
    The input ``mode`` may add a file of its own per job (bayer: the packed mosaic).
    """
    mode.check_convert(cfg)
    names = {f: parse_name(f) for f in files}
    longest: dict[str, float] = defaultdict(float)
    for name in names.values():
        if name is not None:
            longest[name.scene_id] = max(longest[name.scene_id], name.exposure)
    fallback: float | str = cfg.ratio if cfg.ratio is not None else 1.0

    stems = output_stems(files)
    jobs = []
    missing_long = set()
    for source in files:
        name = names[source]
        long = name is not None and name.exposure >= max(longest[name.scene_id],
                                                         LONG_EXPOSURE_MIN)  # fmt: skip
        if not cfg.amplify or (long and is_image(source)):
            gain: float | str = 1.0
        elif is_image(source):  # a JPEG's darkness is judged from its pixels, not its name
            gain = cfg.ratio if cfg.ratio is not None else "auto"
        elif name is None:
            gain = fallback
        elif longest[name.scene_id] > name.exposure:
            gain = exposure_ratio(longest[name.scene_id], name.exposure, cfg.max_ratio)
        elif name.exposure >= LONG_EXPOSURE_MIN:
            gain = 1.0  # the scene's long exposure
        else:
            gain = fallback
            missing_long.add(name.scene_id)
        stem = stems[source]
        own = mode.input_file(stem, gain)
        jobs.append(Job(source, stem + SUFFIX[cfg.format], gain, name.exposure if name else None,
                        own))  # fmt: skip
    if missing_long:
        log.warning(
            "no long exposure for scene(s) %s: their frames get gain %s (set --ratio)",
            ", ".join(sorted(missing_long)),
            fallback,
        )
    return jobs


def settings_key(job: Job, cfg: ConvertConfig, mode: InputMode) -> str:
    """Everything that changes the output bytes of a job."""
    keys = {"format": cfg.format, "quality": cfg.quality, "half_size": cfg.half_size,
            "curve": cfg.curve}  # fmt: skip
    keys["gain"] = job.gain
    if job.input_file:
        keys.update(mode.settings())
    if job.gain == "auto":
        keys.update(auto_target=cfg.auto_target, max_ratio=cfg.max_ratio)
    return json.dumps(keys, sort_keys=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def convert_one(
    raw_dir: Location,
    out_dir: Location,
    job: Job,
    cfg: ConvertConfig,
    previous: dict | None = None,
    previous_dir: Location | None = None,
    *,
    mode: InputMode = modes.MODES[modes.DEFAULT],
) -> dict:
    """Convert one file; never raises for a bad file: it becomes a ``failed`` row.

    A file whose hash and settings match ``previous`` (its row in the manifest of
    ``previous_dir``, default ``out_dir``) is not decoded again: its output is linked over.
    Folders may be ``s3://`` URIs: a RAW object is streamed to a temp file while it converts.
    An output that cannot be written is not the file's failure: ``OutputWriteError`` is raised.
    """
    previous_dir = previous_dir or out_dir
    row = {field.name: None for field in MANIFEST_SCHEMA}
    row.update(source=job.source, settings=settings_key(job, cfg, mode), exposure=job.exposure)
    try:
        with storage.local_file(storage.join(raw_dir, job.source)) as source:
            return _convert_file(source, out_dir, job, cfg, row, previous, previous_dir, mode)
    except OutputWriteError:
        raise
    except OSError as exc:
        return {**row, "status": "failed", "error": f"{job.source}: cannot read: {exc}"}
    except Exception as exc:  # whatever else goes wrong is this file's failure, not the batch's
        log.warning("%s: %s: %s", job.source, type(exc).__name__, exc)
        return {**row, "status": "failed", "error": f"{job.source}: {type(exc).__name__}: {exc}"}


class OutputWriteError(OSError):
    """An OSError writing a file's outputs. The output's fault, not the input's: a full disk
    (ENOSPC, EDQUOT) or a read-only one (EROFS) fails every later file too, so it stops the
    conversion instead of becoming a failed row."""


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Any OSError in the block is an ``OutputWriteError`` (errno and words kept; it pickles
    from a worker process)."""
    try:
        yield
    except OSError as exc:
        raise OutputWriteError(exc.errno, exc.strerror or str(exc)) from exc


def _convert_file(
    source: Path,
    out_dir: Location,
    job: Job,
    cfg: ConvertConfig,
    row: dict,
    previous: dict | None,
    previous_dir: Location,
    mode: InputMode,
) -> dict:
    row["source_sha256"] = sha256_file(source)
    outputs = [job.output] + ([job.input_file] if job.input_file else [])
    if (
        previous is not None
        and previous["status"] == "ok"
        and previous["source_sha256"] == row["source_sha256"]
        and previous["settings"] == row["settings"]
        and all(storage.exists(storage.join(previous_dir, name)) for name in outputs)
    ):
        with writing():
            for name in outputs:
                reuse(storage.join(previous_dir, name), storage.join(out_dir, name))
        return {**previous, "status": "ok", "error": None, "skipped": True}
    try:
        if is_image(job.source):
            image, meta, gain = decode_picture(source, cfg, job.gain)
        else:
            image, meta, gain = decode(
                source,
                job.gain,
                half_size=cfg.half_size,
                bits=BITS[cfg.format],
                auto_target=cfg.auto_target,
                max_gain=cfg.max_ratio,
                curve=cfg.curve,
            )
        with writing():
            write_image(storage.join(out_dir, job.output), image, cfg.format, cfg.quality)
            if job.input_file:
                mode.write_input(source, storage.join(out_dir, job.input_file), gain)
    except LowlightError as exc:
        log.warning("%s", exc)
        return {**row, "status": "failed", "error": str(exc)}
    row.update(
        output=job.output,
        exposure=job.exposure if job.exposure is not None else meta.exposure,
        iso=meta.iso,
        camera=meta.camera,
        width=meta.width,
        height=meta.height,
        gain=gain,
        status="ok",
    )
    row[INPUT_FILE_COLUMN] = job.input_file
    row["render"] = json.dumps(meta.render.to_dict())
    return row


@dataclass(frozen=True)
class Shot:
    """How convert brightened a dark frame (its manifest row): by ``gain``, in a JPEG/PNG's own
    linear light (``picture``: ``isp.expose``) or in a RAW conversion's sRGB."""

    gain: float
    picture: bool = False

    def as_taken(self, image: np.ndarray) -> np.ndarray:
        """The frame as the camera wrote it: convert's gain undone."""
        if self.picture:
            return isp.expose(image, 1.0 / self.gain)
        return linear_to_srgb(srgb_to_linear(image) / self.gain)

    def for_baselines(self, image: np.ndarray) -> np.ndarray:
        """What the classical baselines start from: a JPEG as taken (the user's tools brighten
        it themselves), a RAW conversion as converted (amplified by its ratio)."""
        return self.as_taken(image) if self.picture else image


def read_shots(converted_dir: Location) -> dict[str, Shot]:
    """Each converted file's ``Shot``, from the manifest."""
    manifest, _ = read_manifest(converted_dir)
    return {r["output"]: Shot(r["gain"], r["camera"] == IMAGE_CAMERA)
            for r in manifest.to_pylist() if r["status"] == "ok"}  # fmt: skip


def shot_of(row: dict, shots: dict[str, Shot]) -> Shot:
    """A pair's dark frame's ``Shot`` (by default: amplified by the pair's ratio)."""
    return shots.get(row["dark"], Shot(row["ratio"]))


def decode_picture(
    source: Path, cfg: ConvertConfig, gain: float | str = 1.0
) -> tuple[np.ndarray, RawMeta, float]:
    """A JPEG/PNG source as ``raw.decode`` gives a RAW one: exposed by ``gain`` in the photo's
    linear light (``expose_picture``), halved by 2x2 averages with ``half_size`` as LibRaw
    halves RAW files, in the output format's bit depth; no EXIF read, a neutral rendering (its
    values are sRGB already). Returns the image, its metadata and the gain applied."""
    image = decode_image(source.read_bytes(), str(source))
    if cfg.half_size:
        half = (max(1, image.shape[1] // 2), max(1, image.shape[0] // 2))
        image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
    if gain != 1.0:
        exposed, gain = expose_picture(modes.to_unit(image), gain, cfg)
        image = isp.quantise(exposed, 16)
    image = to_dtype(image, "uint8" if BITS[cfg.format] == 8 else "uint16")
    height, width = image.shape[:2]
    meta = RawMeta(None, None, IMAGE_CAMERA, width, height, RenderParams.neutral("srgb"))
    return image, meta, gain


def expose_picture(
    photo: np.ndarray, gain: float | str, cfg: ConvertConfig
) -> tuple[np.ndarray, float]:
    """A photo (float in [0, 1]) exposed ``gain`` times longer in its linear light
    (``isp.expose``); ``"auto"``: the gain that brings its level (``isp.level``) to
    ``cfg.auto_target``, as a camera's metering would have exposed it, within [1,
    ``cfg.max_ratio``]. A JPEG has no exposure time: its darkness is judged from its pixels."""
    if gain == "auto":
        gain = estimate_gain(isp.level(photo), cfg.auto_target, cfg.max_ratio)
    return isp.expose(photo, float(gain)), float(gain)


def convert_jobs(
    jobs: list[Job],
    cfg: ConvertConfig,
    raw_dir: Location,
    out: Location,
    previous: dict[str, tuple[dict, Location]],
    mode: InputMode,
    journal: Path | None = None,
) -> list[dict]:
    """Run the conversion jobs, in worker processes when ``cfg.workers`` > 1.

    ``previous``: an earlier row of a file and the folder holding its outputs (reused when
    unchanged). ``journal``: each finished row is appended there at once, so a run killed
    midway leaves what it finished for the next one (``journal_rows``). An output that cannot
    be written (a full disk) stops the run: ``OutputWriteError``, an OSError.
    """
    work = partial(convert_one, raw_dir, out, mode=mode)
    args = [(job, cfg, *previous.get(job.source, (None, None))) for job in jobs]
    bar = partial(tqdm, total=len(jobs), desc="convert", unit="file")
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal, "a") if journal else contextlib.nullcontext() as log_file:

        def record(row: dict) -> dict:
            if log_file is not None and row["status"] == "ok":
                log_file.write(json.dumps(row) + "\n")
                log_file.flush()
            return row

        workers = worker_count(cfg.workers, len(jobs))
        if workers > 1:
            # spawn, not fork: LibRaw's OpenMP and OpenCV's thread pools deadlock in forked
            # children; one OpenMP thread per worker, or N workers x one thread per core
            # oversubscribe the CPU.
            spawn = multiprocessing.get_context("spawn")
            with (
                single_threaded_children(),
                ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool,
            ):
                try:
                    return [record(r) for r in bar(pool.map(work, *zip(*args, strict=True)))]
                except BaseException:
                    pool.shutdown(cancel_futures=True)  # a full disk would fail them all
                    raise
        return [record(work(*a)) for a in bar(args)]


def worker_count(asked: int, files: int) -> int:
    """``asked`` capped at the files and the cores, said in one line: more processes than
    either only cost memory and start-up (``--workers 1000`` on 2 cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = max(1, min(asked, files, cores or 1))
    if workers < asked:
        log.warning("%d workers asked: using %d (%d files, %d cores)", asked, workers, files, cores)
    return workers


def journal_name(manifest: str) -> str:
    """The journal of a conversion writing ``manifest``: in its folder only while it runs."""
    return f".{manifest}.journal.jsonl"


def journal_rows(folder: Path, manifest: str) -> dict[str, dict]:
    """The rows a killed conversion finished in ``folder`` (its journal), by source; a torn
    last line (the kill) is ignored."""
    rows = {}
    with contextlib.suppress(OSError), open(folder / journal_name(manifest)) as fh:
        for line in fh:
            with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):
                row = json.loads(line)
                rows[row["source"]] = row
    return rows


def reuse(source: Location, dest: Location) -> None:
    """Put an unchanged output in place: a hard link where possible, else a copy."""
    if str(source) == str(dest):
        return
    if storage.is_remote(source) or storage.is_remote(dest):
        storage.copy_file(source, dest)
        return
    source, dest = Path(source), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def manifest_name(shard: tuple[int, int] | None) -> str:
    if shard is None:
        return MANIFEST
    return f"converted-part-{shard[0]:05d}-of-{shard[1]:05d}.parquet"


def write_manifest(path: Path, rows: list[dict], raw_dir: str) -> None:
    rows = sorted(rows, key=lambda r: r["source"])
    table = pa.Table.from_pylist(
        [{k: r.get(k) for k in MANIFEST_SCHEMA.names} for r in rows], schema=MANIFEST_SCHEMA
    )
    meta = {b"raw_dir": raw_dir.encode(), b"lowlight_version": __version__.encode()}
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_manifest(converted_dir: Location) -> tuple[pa.Table, str]:
    """The converted folder's manifest (or its shard manifests combined) and its RAW folder."""
    if not storage.is_dir(converted_dir):
        if storage.exists(converted_dir):
            raise DatasetError(f"{converted_dir}: is a file, not the converted folder (the one "
                               f"`lowlight convert` wrote, holding {MANIFEST})")  # fmt: skip
        raise DatasetError(f"{converted_dir}: converted folder not found; run `lowlight convert`")
    path = storage.join(converted_dir, MANIFEST)
    paths = [path] if storage.exists(path) else shard_manifests(converted_dir)
    if not paths:
        raise DatasetError(f"{path}: no manifest; run `lowlight convert` first")
    return read_manifest_parts(paths)


def read_manifest_parts(paths: list[Location]) -> tuple[pa.Table, str]:
    tables = []
    for part in paths:
        table = read_parquet(part)
        if table.schema.remove_metadata() != MANIFEST_SCHEMA:
            raise DatasetError(f"{part}: not a lowlight manifest (columns {table.column_names})")
        tables.append(table)
    raw_dir = (tables[0].schema.metadata or {}).get(b"raw_dir", b"").decode()
    return pa.concat_tables(tables).sort_by("source"), raw_dir


def shard_manifests(converted_dir: Location) -> list[Location]:
    """The shard manifests of a sharded conversion, checked complete (all n of n present)."""
    parts = [
        p for p in storage.list_files(converted_dir, ".parquet")
        if PurePosixPath(p).name.startswith("converted-part-")
    ]  # fmt: skip
    counts = {int(PurePosixPath(p).stem.rsplit("-", 1)[1]) for p in parts}
    if parts and (len(counts) != 1 or len(parts) != next(iter(counts))):
        raise DatasetError(
            f"{converted_dir}: found {len(parts)} shard manifests for {sorted(counts)} shards; "
            "run the missing shards first"
        )
    return parts


def previous_rows(path: Location) -> dict[str, dict]:
    """Rows of an earlier manifest at ``path`` by source, for skipping unchanged files."""
    if not storage.exists(path):
        return {}
    try:
        fs, inner = storage.resolve(path)
        return {r["source"]: r for r in pq.read_table(inner, filesystem=fs).to_pylist()}
    except (pa.ArrowInvalid, OSError):
        log.warning("%s: unreadable earlier manifest, converting everything again", path)
        return {}


def gather_shards(shard_dirs: list[Path], converted_dir: Path) -> None:
    """Put shards converted into folders of their own (one per Kubeflow task) into one folder.

    Images are hard-linked where possible; the shard manifests come along for ``merge_manifests``.
    """
    for folder in shard_dirs:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                reuse(path, converted_dir / path.relative_to(folder))


def merge_manifests(converted_dir: Location) -> dict:
    """Combine the shard manifests of ``converted_dir`` into ``converted.parquet``."""
    parts = shard_manifests(converted_dir)
    if not parts:
        raise DatasetError(f"{converted_dir}: no shard manifests (converted-part-*.parquet)")
    table, raw_dir = read_manifest_parts(parts)
    manifest = storage.join(converted_dir, MANIFEST)
    write_manifest(manifest, table.to_pylist(), raw_dir)
    return {"shards": len(parts), "files": table.num_rows, "manifest": str(manifest)}


def single_threaded_children() -> contextlib.AbstractContextManager:
    """Processes started inside the block run their OpenMP / BLAS loops on one thread."""
    from unittest import mock  # the standard library's scoped change of os.environ

    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return mock.patch.dict(os.environ, dict.fromkeys(names, "1"))
