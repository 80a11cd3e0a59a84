"""enhance: a photographer's RAW and JPEG/PNG files through the trained model."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from lowlight import inference, modes
from lowlight.card import ModelCard, ModelLoadError
from lowlight.config import ConvertConfig, InferConfig, MlflowConfig, RegisterConfig, check_gain
from lowlight.errors import ConfigError, DatasetError, scrub
from lowlight.tiling import TileFn

log = logging.getLogger(__name__)

OWN_SUFFIX = "_enhanced.png"  # what enhance writes: never read back as an input


def run(
    convert_cfg: ConvertConfig,
    infer: InferConfig,
    mlflow_cfg: MlflowConfig,
    model_location: str | None,
    inputs: list[str],
    out: Path,
    ratio: float | str = "auto",
    model_names: dict[str, str] | None = None,
    fallback: bool = False,
) -> dict:
    """Enhance files, folders and globs: RAWs (amplified by ``ratio``) and images.

    Writes ``<stem>_enhanced.png``, 16-bit for RAW and 16-bit inputs; a bad file is reported
    and the others go on. No ``model_location``: each file goes to the model that fits its kind
    (``modes.for_file``: Bayer RAW, X-Trans RAW by the file's own colour pattern, or JPEG/PNG;
    a kind with no model fails its files, not the run), the registry's champion of that kind's
    name in ``model_names`` (input mode -> registered model) when there is one, else the model
    lowlight ships for it; the summary says which took what. A registry that was asked for (a
    ``models:/`` location, or a tracking URI set by the environment or params) and cannot be
    reached stops the run, unless ``fallback`` allows the shipped model.
    """
    check_gain(ratio, convert_cfg.max_ratio, "--ratio")
    files = own_outputs_skipped(inference.expand_inputs(inputs), Path(out))
    if not files:
        raise DatasetError(f"no input files in {' '.join(inputs)}")
    names = dict(zip(files, inference.output_names(files), strict=True))
    groups: dict[str, list[Path]] = {}
    if model_location:  # one model for every file: one it cannot take fails with the reason
        groups[""] = files
    else:
        for path in files:
            groups.setdefault(modes.for_file(path), []).append(path)
    model_names = model_names or RegisterConfig().by_input()
    done, failed, used = [], [], {}
    for mode, group in groups.items():
        kind = modes.KINDS.get(mode, "")
        try:
            model, card, source = load(mlflow_cfg, model_location, model_names.get(mode, ""),
                                       infer, fallback, mode or modes.RAW_MODE)  # fmt: skip
        except ModelLoadError as exc:
            if not mode:  # the model asked for by --model: nothing to enhance with
                raise
            # no model for this kind of file (lowlight ships no X-Trans model yet): its files
            # fail with the reason, the others go on
            log.warning("%s files (%d): %s", kind, len(group), exc)
            failed += [f"{path}: no model for {kind} files: {exc}" for path in group]
            used[kind] = "none"
            continue
        used[kind] = source
        if kind:
            log.info("%s files (%d): %s", kind, len(group), source)
        check_tile(infer, card)
        ok, bad = inference.enhance_files(group, model, card, Path(out), ratio, convert_cfg,
                                          infer, [names[p] for p in group])  # fmt: skip
        done, failed = done + ok, failed + bad
    if not done:
        raise DatasetError(f"no file could be enhanced; first error: {failed[0]}")
    model_used = used.get("") or "; ".join(f"{kind}: {source}" for kind, source in used.items())
    return {"model": model_used, "files": len(files), "enhanced": len(done),
            "failed": len(failed), "failed_files": failed, "out": str(out)}  # fmt: skip


def own_outputs_skipped(files: list[Path], out: Path) -> list[Path]:
    """``files`` without enhance's own results in ``out`` (an ``--out`` inside an input folder
    would otherwise enhance them again on each run: x_enhanced_enhanced.png)."""
    root = out.resolve()
    own = [p for p in files if p.name.endswith(OWN_SUFFIX) and root in p.resolve().parents]
    if own:
        names = ", ".join(p.name for p in own[:5]) + (" ..." if len(own) > 5 else "")
        log.warning("skipped %d of enhance's own outputs in %s: %s", len(own), out, names)
    return [p for p in files if p not in own]


def registry_asked(mlflow_cfg: MlflowConfig, model_location: str | None) -> bool:
    """Did the user ask for the registry: ``--model models:/...``, or a tracking URI of their
    own (the environment, or params other than the built-in local store)?"""
    if model_location:
        return model_location.startswith("models:/")
    return bool(os.environ.get("MLFLOW_TRACKING_URI")) or (
        mlflow_cfg.tracking_uri != MlflowConfig().tracking_uri
    )


def load(
    mlflow_cfg: MlflowConfig,
    model_location: str | None,
    model_name: str,
    infer: InferConfig,
    fallback: bool,
    input_mode: str = modes.RAW_MODE,
) -> tuple[TileFn, ModelCard, str]:
    """The model, its card and what was used; the registry is probed first (seconds, not
    MLflow's minutes of retries) so that a server that is down is said, never hidden."""
    from mlflow.exceptions import MlflowException

    from lowlight import registry, tracking

    uri = tracking.tracking_uri(mlflow_cfg)
    if not model_location or model_location.startswith("models:/"):
        try:
            with one_try():
                registry.client(uri).search_registered_models(max_results=1)
        except (MlflowException, OSError) as exc:
            wanted = model_location or f"models:/{model_name}@champion"
            reason = unreachable_reason(scrub(str(exc)))
            if registry_asked(mlflow_cfg, model_location) and not fallback:
                raise registry.RegistryError(
                    f"the model registry at {scrub(uri)} cannot be reached ({reason}), so {wanted} "
                    "cannot be loaded; start it, or pass --fallback shipped to use the model "
                    "shipped with lowlight"
                ) from None
            log.warning("the model registry at %s cannot be reached (%s): using the model "
                        "shipped with lowlight, not %s", scrub(uri), reason, wanted)  # fmt: skip
            return inference.load_shipped(input_mode, infer.device, infer.precision)
    with tracking.using(uri):
        return inference.load_default(model_location, model_name, infer.device, infer.precision,
                                      input_mode)  # fmt: skip


RETRIES, TIMEOUT = "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"


def one_try() -> contextlib.AbstractContextManager:
    """MLflow requests in the block are tried once, for 10 s at most: a probe, not a load."""
    from unittest import mock

    return mock.patch.dict(os.environ, {RETRIES: "0", TIMEOUT: "10"})


def unreachable_reason(message: str) -> str:
    """The OS's words (``Connection refused``) from MLflow's long request error, else its
    start."""
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", message)
    return errno.group(1).strip() if errno else message.splitlines()[0][:160]


def check_tile(infer: InferConfig, model_card: ModelCard) -> None:
    """The tile against the overlap it will run with (the model's default when not given),
    before any file: otherwise every file fails on its own, for the same reason."""
    from lowlight import tiling

    try:
        tiling.tile_grid(1, 1, infer.tile, infer.overlap, model_card.multiple)
    except ValueError as exc:
        raise ConfigError(f"--tile {infer.tile}: {exc} (this model's default overlap is "
                          f"{tiling.default_overlap(model_card.multiple)})") from None  # fmt: skip
