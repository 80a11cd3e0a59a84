"""enhance_batch (the Kubeflow ``enhance`` pipeline): a folder of RAW files (``s3://`` or a
path) through one registered model version, shard by shard, into ``<stem>_enhanced.png`` files
and one Parquet manifest saying, for every file, ok or failed and why.

``plan`` lists the files and pins the model (an alias such as ``champion`` becomes the version
it names now, so every shard uses that version even if the alias moves mid-run); ``shard``
enhances one ``i/n`` share with the code ``lowlight enhance`` runs; ``collect`` merges the
shards' rows. A bad file is a failed row and the batch goes on; what fails a step is the
infrastructure (the source, the output or the registry unreachable), which the step's retries
are for.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lowlight import conversion, storage
from lowlight.config import InferConfig, MlflowConfig, check_gain, number
from lowlight.errors import ConfigError, DatasetError, LowlightError, OutputError, scrub

log = logging.getLogger(__name__)

MANIFEST = "manifest.parquet"
OK, FAILED = "ok", "failed"
SCHEMA = pa.schema(
    [
        ("source", pa.string()),  # the RAW file's location
        ("output", pa.string()),  # its enhanced PNG's location ("" when it failed)
        ("status", pa.string()),  # ok | failed
        ("error", pa.string()),  # one line ("" when ok)
        ("gain", pa.float64()),  # the amplification applied
        ("seconds", pa.float64()),  # download, enhance and upload
        ("model", pa.string()),  # the version that enhanced it: models:/NAME/VERSION
    ]
)


def plan(
    source: str, output: str, model: str, mlflow_cfg: MlflowConfig, shards: int, plan_out: Path
) -> dict:
    """List the RAW files under ``source`` and pin ``model`` to ``models:/NAME/VERSION``, into
    ``plan_out`` (JSON: every shard takes its share of this one list and loads this version);
    the shards, at most one ``i/n`` per file."""
    storage.check_apart(output, (source,))
    files = conversion.list_raw_files(source)
    pinned = pin(model, mlflow_cfg)
    with storage.atomic_path(plan_out) as tmp:
        tmp.write_text(json.dumps({"source": source, "model": pinned, "files": files}))
    count = max(1, min(int(shards), len(files)))
    return {"files": len(files), "model": pinned, "shards": [f"{i}/{count}" for i in range(count)]}


def pin(model: str, mlflow_cfg: MlflowConfig) -> str:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` as ``models:/NAME/VERSION``, checked
    to exist in the registry."""
    from lowlight import registry, tracking

    name, alias, version = parse_model_uri(model)
    uri = tracking.tracking_uri(mlflow_cfg)
    c = registry.client(uri)
    with registry.registry_errors(uri):
        if alias:
            holder = registry.alias_holder(c, name, alias)
            if holder is None:
                raise registry.RegistryError(
                    f"{model}: no version of '{name}' is {alias} in the registry at {scrub(uri)} "
                    "(`lowlight models list` shows them)"
                )
            version = str(holder.version)
        else:
            c.get_model_version(name, version)  # a missing version is MLflow's clear error
    return f"models:/{name}/{version}"


def parse_model_uri(model: str) -> tuple[str, str, str]:
    """(name, alias, version) of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""
    rest = model.removeprefix("models:/")
    name, at, alias = rest.partition("@")
    if at and rest != model and name and alias and "/" not in name:
        return name, alias, ""
    name, _, version = rest.rpartition("/")
    if not at and rest != model and name and "/" not in name and version.isdigit():
        return name, "", version
    raise ConfigError(f"model {model!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")


def parse_ratio(ratio: str) -> float | str:
    """The pipeline's ``ratio`` text: "auto" or a number (checked against the cap later)."""
    if ratio == "auto":
        return ratio
    try:
        return float(ratio)
    except ValueError:
        raise ConfigError(f"ratio must be a number or 'auto', got {ratio!r}") from None


def shard(
    plan_json: Path,
    which: str,
    output: str,
    ratio: str,
    infer: InferConfig,
    mlflow_cfg: MlflowConfig,
    rows_out: Path,
) -> dict:
    """Enhance share ``which`` (``i/n``) of the planned files into ``output`` with the planned
    model version and write their rows (``SCHEMA``) to ``rows_out``. The model is loaded as
    ``lowlight enhance --model`` loads it, decoding RAW files with the convert settings
    registered with it."""
    from lowlight import inference, tracking
    from lowlight.stages.enhance import check_tile

    index, count = conversion.parse_shard(which)
    listing = json.loads(Path(plan_json).read_text())
    files, model = listing["files"][index::count], listing["model"]
    with tracking.using(tracking.tracking_uri(mlflow_cfg)):
        registered = inference.registered_model(model)
    gain = check_gain(parse_ratio(ratio), registered.convert.max_ratio, "ratio")
    check_tile(infer, registered.card)
    names = conversion.output_stems(listing["files"])  # over all files: one naming for all shards
    rows = []
    for name in files:
        source = str(storage.join(listing["source"], name))
        dest = str(storage.join(output, f"{names[name]}_enhanced.png"))
        rows.append({**enhance_one(source, dest, registered, gain, infer), "model": model})
    with storage.atomic_path(rows_out) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, SCHEMA), tmp)
    ok = sum(r["status"] == OK for r in rows)
    return {"shard": which, "files": len(rows), OK: ok, FAILED: len(rows) - ok, "model": model}


def enhance_one(source: str, dest: str, registered, gain: float | str, infer: InferConfig) -> dict:
    """One file's row. Its download and decoding are the file's: a failure is its ``failed``
    row. Writing the result is the infrastructure's: a failure stops the shard."""
    from lowlight import imageio, inference

    start = time.perf_counter()
    try:
        with storage.local_file(source) as path:
            try:
                image, applied = inference.enhance_photo(
                    path, registered.tile_fn, registered.card, gain, registered.convert, infer
                )
            except Exception as exc:  # any failure of one file is its row; the shard goes on
                own = isinstance(exc, LowlightError)
                text = str(exc) if own else f"{type(exc).__name__}: {exc}"
                return failed_row(source, text.replace(str(path), source), start)
    except FileNotFoundError:
        return failed_row(source, f"{source}: not found (removed after the listing?)", start)
    except OSError as exc:  # the store, not the file: the step fails and its retries try again
        raise DatasetError(f"{source}: cannot be read: {scrub(str(exc))}") from None
    data = imageio.encode(image, inference.png_format(image))
    try:
        with storage.atomic_path(dest) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"{dest}: cannot write the enhanced image: {scrub(str(exc))}") from None
    seconds = round(time.perf_counter() - start, 3)
    return {"source": source, "output": dest, "status": OK, "error": "", "gain": float(applied),
            "seconds": seconds}  # fmt: skip


def failed_row(source: str, error: str, start: float) -> dict:
    """A file's failed row: its error on one line, naming the file, credentials scrubbed."""
    line = " ".join(error.split())
    line = scrub(line if source in line else f"{source}: {line}")[:500]
    log.warning("%s", line)
    return {"source": source, "output": "", "status": FAILED, "error": line, "gain": 0.0,
            "seconds": round(time.perf_counter() - start, 3)}  # fmt: skip


def collect(plan_json: Path, parts: list[Path], output: str, summary_out: Path) -> dict:
    """Merge the shards' rows into ``<output>/manifest.parquet`` (it appears whole) and write a
    Markdown summary: counts, the model version and the failed files with their errors."""
    model = json.loads(Path(plan_json).read_text())["model"]
    table = pa.concat_tables([pq.read_table(p, schema=SCHEMA) for p in parts])
    table = table.sort_by("source")
    manifest = str(storage.join(output, MANIFEST))
    try:
        with storage.atomic_path(manifest) as tmp:
            pq.write_table(table, tmp)
    except OSError as exc:
        raise OutputError(f"{manifest}: cannot write the manifest: {scrub(str(exc))}") from None
    rows = table.to_pylist()
    failed = [r for r in rows if r["status"] == FAILED]
    lines = [
        "# Enhanced",
        "",
        "| | |",
        "|---|---|",
        f"| model | {model} |",
        f"| files | {len(rows)} |",
        f"| ok | {len(rows) - len(failed)} |",
        f"| failed | {len(failed)} |",
        f"| shards | {len(parts)} |",
        f"| seconds | {number(round(sum(r['seconds'] for r in rows), 1))} |",
        f"| manifest | {manifest} |",
    ]
    if failed:
        lines += ["", "## Failed", "", "| file | error |", "|---|---|"]
        lines += [f"| {r['source']} | {r['error'].replace('|', '/')} |" for r in failed[:100]]
        if len(failed) > 100:
            lines.append(f"| ... | {len(failed)} in all: see the manifest |")
    with storage.atomic_path(summary_out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return {"files": len(rows), OK: len(rows) - len(failed), FAILED: len(failed), "model": model,
            "manifest": manifest}  # fmt: skip
