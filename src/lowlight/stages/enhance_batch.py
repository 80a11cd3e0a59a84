"""enhance_batch (the Kubeflow ``enhance`` pipeline): a folder of RAW files and JPEG/PNG photos
(``s3://`` or a path) through registered model versions, shard by shard, into
``<stem>_enhanced.png`` files and one Parquet manifest saying, for every file, ok or failed,
why, and which version enhanced it.

As ``lowlight enhance`` does, each file goes to the registered model of its kind (Bayer RAW,
X-Trans RAW by its own colour pattern, or JPEG/PNG: ``register``'s names, their champions), or
every file to one model when one is named. ``plan`` lists the files and pins the models (an
alias such as ``champion`` becomes the version it names now, so every shard uses that version
even if the alias moves mid-run); ``shard`` enhances one ``i/n`` share with the code
``lowlight enhance`` runs; ``collect`` merges the shards' rows. A bad file (or one of a kind
with no registered model) is a failed row and the batch goes on; what fails a step is the
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
    source: str,
    output: str,
    model: str,
    models: dict[str, str],
    mlflow_cfg: MlflowConfig,
    shards: int,
    plan_out: Path,
) -> dict:
    """List the files under ``source`` and pin the models (``pin_models``) into ``plan_out``
    (JSON: every shard takes its share of this one list and loads these versions); the shards,
    at most one ``i/n`` per file."""
    storage.check_apart(output, (source,))
    files = conversion.list_raw_files(source)
    pinned = pin_models(model, models, mlflow_cfg)
    with storage.atomic_path(plan_out) as tmp:
        tmp.write_text(json.dumps({"source": source, "models": pinned, "files": files}))
    count = max(1, min(int(shards), len(files)))
    return {"files": len(files), "model": describe_models(pinned),
            "shards": [f"{i}/{count}" for i in range(count)]}  # fmt: skip


def pin_models(model: str, models: dict[str, str], mlflow_cfg: MlflowConfig) -> dict[str, str]:
    """The pinned versions: ``{"": version}`` when ``model`` names one for every file (it must
    exist), else input mode -> version for each kind in ``models`` whose model is in the
    registry (a kind with none fails its files, not the run; none at all is an error)."""
    from lowlight import registry

    if model:
        return {"": pin(model, mlflow_cfg)}
    pinned, missing = {}, []
    for mode, uri in models.items():
        try:
            pinned[mode] = pin(uri, mlflow_cfg)
        except registry.NotRegistered as exc:  # no model of this kind yet: its files fail
            log.warning("%s", exc)
            missing.append(str(exc))
    if not pinned:
        raise ConfigError("no registered model for any kind of file: " + "; ".join(missing))
    return pinned


def describe_models(pinned: dict[str, str]) -> str:
    """``models:/NAME/VERSION``, or each kind's: ``RAW: models:/lowlight/3; JPEG/PNG: ...``,
    in KINDS' order whatever order the plan's JSON came back in."""
    from lowlight.modes import KINDS

    return pinned.get("") or "; ".join(
        f"{kind}: {pinned[m]}" for m, kind in KINDS.items() if m in pinned
    )


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
                raise registry.NotRegistered(
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
    """Enhance share ``which`` (``i/n``) of the planned files into ``output``, each with the
    planned version for its kind, and write their rows (``SCHEMA``) to ``rows_out``. A model is
    loaded as ``lowlight enhance --model`` loads it (once, when a file first needs it), decoding
    RAW files with the convert settings registered with it."""
    index, count = conversion.parse_shard(which)
    listing = json.loads(Path(plan_json).read_text())
    files = listing["files"][index::count]
    models = PinnedModels(listing["models"], parse_ratio(ratio), infer, mlflow_cfg)
    names = conversion.output_stems(listing["files"])  # over all files: one naming for all shards
    rows = []
    for name in files:
        source = str(storage.join(listing["source"], name))
        dest = str(storage.join(output, f"{names[name]}_enhanced.png"))
        rows.append(enhance_one(source, dest, models, infer))
    with storage.atomic_path(rows_out) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, SCHEMA), tmp)
    ok = sum(r["status"] == OK for r in rows)
    used = sorted({r["model"] for r in rows if r["model"]})
    return {"shard": which, "files": len(rows), OK: ok, FAILED: len(rows) - ok,
            "model": ", ".join(used)}  # fmt: skip


class PinnedModels:
    """The plan's versions, each loaded once, when a file of its kind first needs it."""

    def __init__(self, pinned: dict[str, str], ratio: float | str, infer: InferConfig,
                 mlflow_cfg: MlflowConfig) -> None:  # fmt: skip
        self.pinned, self.ratio, self.infer, self.mlflow_cfg = pinned, ratio, infer, mlflow_cfg
        self.loaded: dict[str, tuple] = {}

    def mode_of(self, path: Path) -> str:
        """The plan's key for a file: "" (one model for all) or its kind's input mode."""
        from lowlight import modes

        return "" if "" in self.pinned else modes.for_file(path)

    def get(self, mode: str) -> tuple:
        """(uri, registered model, gain) for ``mode``; a registry failure stops the shard."""
        from lowlight import inference, tracking
        from lowlight.stages.enhance import check_tile

        if mode not in self.loaded:
            uri = self.pinned[mode]
            with tracking.using(tracking.tracking_uri(self.mlflow_cfg)):
                registered = inference.registered_model(uri)
            gain = check_gain(self.ratio, registered.convert.max_ratio, "ratio")
            check_tile(self.infer, registered.card)
            self.loaded[mode] = uri, registered, gain
        return self.loaded[mode]


def enhance_one(source: str, dest: str, models: PinnedModels, infer: InferConfig) -> dict:
    """One file's row. Its download, kind and decoding are the file's: a failure is its
    ``failed`` row (a kind with no registered model too). Loading a model and writing the
    result are the infrastructure's: a failure stops the shard."""
    from lowlight import imageio, inference, modes

    start, uri = time.perf_counter(), ""
    try:
        with storage.local_file(source) as path:
            try:
                mode = models.mode_of(path)
            except Exception as exc:  # a file's failure (its kind unreadable) is its row
                return failed_row(source, error_text(exc, path, source), start)
            if mode not in models.pinned:
                used = describe_models(models.pinned)
                return failed_row(source, f"no registered model for {modes.KINDS[mode]} files "
                                  f"(this run's: {used})", start)  # fmt: skip
            uri, registered, gain = models.get(mode)  # the registry failing fails the step
            try:
                image, applied = inference.enhance_photo(
                    path, registered.tile_fn, registered.card, gain, registered.convert, infer
                )
            except Exception as exc:  # any failure of one file is its row; the shard goes on
                return failed_row(source, error_text(exc, path, source), start, uri)
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
            "seconds": seconds, "model": uri}  # fmt: skip


def error_text(exc: Exception, path: Path, source: str) -> str:
    """A file's error as the user reads it: ours as said, another with its type; the local
    copy's path replaced by the file's own location."""
    text = str(exc) if isinstance(exc, LowlightError) else f"{type(exc).__name__}: {exc}"
    return text.replace(str(path), source)


def failed_row(source: str, error: str, start: float, model: str = "") -> dict:
    """A file's failed row: its error on one line, naming the file, credentials scrubbed;
    ``model``: the version that tried it ("" if none did)."""
    line = " ".join(error.split())
    line = scrub(line if source in line else f"{source}: {line}")[:500]
    log.warning("%s", line)
    return {"source": source, "output": "", "status": FAILED, "error": line, "gain": 0.0,
            "seconds": round(time.perf_counter() - start, 3), "model": model}  # fmt: skip


def collect(plan_json: Path, parts: list[Path], output: str, summary_out: Path) -> dict:
    """Merge the shards' rows into ``<output>/manifest.parquet`` (it appears whole) and write a
    Markdown summary: counts, the model versions and the failed files with their errors."""
    model = describe_models(json.loads(Path(plan_json).read_text())["models"])
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
