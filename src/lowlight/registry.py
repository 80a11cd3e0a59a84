"""The MLflow model registry: register with lineage, the promotion gate, promote and roll back.

Aliases are the registry's state: ``challenger`` is the newest registered version, ``champion``
the one users load (``models:/lowlight@champion``). Every promotion records who, when and the
previous holder in the version's tags, so ``rollback`` can give the alias back.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from lowlight.config import RegisterConfig
from lowlight.errors import LowlightError, scrub

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
TAG = "lowlight."  # prefix of every tag this module writes


class RegistryError(LowlightError):
    """The registry cannot be reached or refuses the operation."""


class NotRegistered(RegistryError):
    """The registry answers, and no version of the model holds the alias asked for."""


@contextmanager
def registry_errors(uri: str) -> Iterator[None]:
    """MLflow and connection failures -> one RegistryError naming the server."""
    try:
        yield
    except MlflowException as exc:
        message = scrub(str(exc).splitlines()[0][:300])
        raise RegistryError(f"registry at {scrub(uri)}: {message}") from None
    except (OSError, ConnectionError) as exc:
        raise RegistryError(f"registry at {scrub(uri)} unreachable: {scrub(str(exc))}") from None


def client(uri: str) -> mlflow.MlflowClient:
    # Fail fast when a server is down instead of MLflow's minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    return mlflow.MlflowClient(uri)


def find_version(c: mlflow.MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The version registered from training run ``run_id``, if there is one."""
    for version in c.search_model_versions(f"name='{name}'"):
        if version.tags.get(f"{TAG}training_run_id") == run_id:
            return version
    return None


def alias_holder(c: mlflow.MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return c.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


@dataclass(frozen=True)
class Gate:
    passed: bool
    reason: str


def check_gate(
    psnr: float,
    baseline_psnr: float | None,
    baseline: str,
    champion_psnr: float | None,
    min_delta: float,
    baseline_margin: float,
) -> Gate:
    """Champion only if it beats the current champion by ``min_delta`` dB and the baseline."""
    if baseline_psnr is None:
        return Gate(False, f"no {baseline} result in the metrics to compare against")
    if psnr < baseline_psnr + baseline_margin:
        return Gate(
            False,
            f"test PSNR {psnr:.2f} dB does not beat {baseline} ({baseline_psnr:.2f} dB) "
            f"by {baseline_margin:g} dB",
        )
    if champion_psnr is not None and psnr < champion_psnr + min_delta:
        return Gate(
            False,
            f"test PSNR {psnr:.2f} dB does not beat the champion's {champion_psnr:.2f} dB "
            f"by {min_delta:g} dB",
        )
    return Gate(True, f"test PSNR {psnr:.2f} dB beats {baseline} and the current champion")


ALREADY_CHAMPION = "already the champion"


def gate(c: mlflow.MlflowClient, cfg: RegisterConfig, metrics: dict, version: str = "") -> Gate:
    """The gate for a model with these test ``metrics`` (``version``: if already registered)."""
    champion = alias_holder(c, cfg.model_name, CHAMPION)
    if champion is not None and str(champion.version) == version:
        return Gate(True, ALREADY_CHAMPION)
    champion_psnr = float(champion.tags[f"{TAG}test_psnr"]) if champion else None
    baseline = metrics.get(cfg.baseline, {}).get("overall", {}).get("psnr")
    return check_gate(
        metrics["model"]["overall"]["psnr"], baseline, cfg.baseline, champion_psnr,
        cfg.min_delta, cfg.baseline_margin,
    )  # fmt: skip


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def history(
    c: mlflow.MlflowClient, name: str, alias: str, holder: ModelVersion | None
) -> list[str]:
    """The versions that held ``alias``, oldest first, ending with the current ``holder``.

    Kept in the registered model's tag ``lowlight.<alias>.history``. A registry from before that
    tag (or whose last record a failure cut short) starts from what the holder's tags recall.
    """
    if holder is None:
        return []
    past = _recorded(c, name, alias)
    current = str(holder.version)
    if not past:
        before = holder.tags.get(f"{TAG}{alias}.previous", "")
        past = [before] if before and before != current else []
    return past if past and past[-1] == current else [*past, current]


def _recorded(c: mlflow.MlflowClient, name: str, alias: str) -> list[str]:
    """The history tag as written (empty when absent or unreadable)."""
    raw = c.get_registered_model(name).tags.get(f"{TAG}{alias}.history", "")
    try:
        return [str(v) for v in json.loads(raw)] if raw else []
    except (ValueError, TypeError):
        return []


def promote(c: mlflow.MlflowClient, name: str, version: str, alias: str = CHAMPION) -> dict:
    """Move ``alias`` to ``version``, recording who, when and the previous holder."""
    with promotion_lock(c, name, alias):
        version = str(c.get_model_version(name, version).version)  # fails clearly when unknown
        holder = alias_holder(c, name, alias)
        if holder is not None and str(holder.version) == version:
            raise RegistryError(f"'{name}' version {version} already holds '{alias}'")
        past = history(c, name, alias, holder)
        return _move(c, name, version, alias, holder, past, [*past, version])


def rollback(c: mlflow.MlflowClient, name: str, alias: str = CHAMPION) -> dict:
    """Give ``alias`` back to the version that held it before the current holder; again and
    again, down the recorded history (not back and forth between the last two)."""
    with promotion_lock(c, name, alias):
        current = alias_holder(c, name, alias)
        if current is None:
            raise RegistryError(f"model '{name}' has no '{alias}' to roll back")
        past = history(c, name, alias, current)
        if len(past) < 2:
            raise RegistryError(f"'{name}' version {current.version} holds '{alias}' with no "
                                "previous holder recorded")  # fmt: skip
        result = _move(c, name, past[-2], alias, current, past, past[:-1])
        c.set_model_version_tag(name, current.version, f"{TAG}{alias}.rolled_back_at", now())
        return {**result, "rolled_back_from": str(current.version)}


LOCK_WAIT, LOCK_STALE = 70.0, 60.0  # seconds; a promotion takes about one
_held = threading.local()


@contextmanager
def promotion_lock(c: mlflow.MlflowClient, name: str, alias: str) -> Iterator[None]:
    """Hold ``<name>.<alias>-lock`` for one promotion or rollback: MLflow has no compare-and-set
    for aliases, but creating a registered model that exists fails atomically, so lowlight's
    promotions of one alias run one after the other (each sees the last one's holder and
    history) instead of racing. A lock older than ``LOCK_STALE`` (its process was killed) is
    broken; one thread may nest promotions (a test simulating another process)."""
    lock = f"{name}.{alias}-lock"
    held = getattr(_held, "locks", set())
    if lock in held:
        yield
        return
    deadline, owner, waited = time.monotonic() + LOCK_WAIT, uuid.uuid4().hex, False
    while True:
        try:
            stamp = {f"{TAG}lock.since": str(time.time()), f"{TAG}lock.owner": owner}
            c.create_registered_model(lock, stamp, f"lowlight is moving '{alias}' of '{name}'")
            break
        except MlflowException as exc:  # "does not exist": released while the server looked
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                raise
        with suppress(MlflowException, ValueError):
            found = c.get_registered_model(lock)
            if found.tags.get(f"{TAG}lock.owner") == owner:  # our create, retried by MLflow
                break
            if time.time() - _since(found) > LOCK_STALE:
                c.delete_registered_model(lock)
                continue
        if time.monotonic() > deadline:
            raise RegistryError(f"another promotion of '{alias}' of '{name}' holds the "
                                f"registered model '{lock}'; retry in a minute")  # fmt: skip
        if not waited:
            log.info("waiting for another promotion of '%s' of '%s' (%s)", alias, name, lock)
        waited = True
        time.sleep(0.1)
    _held.locks = held | {lock}
    try:
        yield
    finally:
        _held.locks = held
        with suppress(MlflowException, OSError):  # ours only, never the next holder's
            if c.get_registered_model(lock).tags.get(f"{TAG}lock.owner") == owner:
                c.delete_registered_model(lock)


def _since(lock: RegisteredModel) -> float:
    """When ``lock`` was taken. The server reads a model and its tags in two queries, so a lock
    released and taken again between them shows no tags: its creation time stands in (never
    "long ago", which would break the new holder's lock)."""
    stamp = lock.tags.get(f"{TAG}lock.since")
    return float(stamp) if stamp else (lock.creation_timestamp or 0) / 1000 or time.time()


def _move(
    c: mlflow.MlflowClient,
    name: str,
    version: str,
    alias: str,
    holder: ModelVersion | None,
    old_history: list[str],
    new_history: list[str],
) -> dict:
    """Move ``alias`` from ``holder`` to ``version``; then record the move.

    MLflow has no compare-and-set for aliases: the holder is checked again right before the
    move and after it, so a concurrent promotion makes one of them fail with a clear error
    instead of both "succeeding". The audit tags are written only once the alias has moved: a
    server that dies before leaves no record of a promotion that never happened; a promotion
    overtaken while it wrote them takes its record back (``_unrecord``), or a later rollback
    would hand the alias to a version whose promotion failed.
    """
    replaced = str(holder.version) if holder else ""
    now_holder = alias_holder(c, name, alias)
    if (str(now_holder.version) if now_holder else "") != replaced:
        raise RegistryError(f"'{alias}' of '{name}' moved to version "
                            f"{now_holder.version if now_holder else '(none)'} meanwhile (a "
                            "concurrent promotion); nothing changed, look and retry")  # fmt: skip
    c.set_registered_model_alias(name, alias, version)
    _check_won(c, name, alias, version)
    before = c.get_model_version(name, version).tags
    tags = {
        f"{TAG}{alias}.promoted_by": os.environ.get("USER") or getpass.getuser(),
        f"{TAG}{alias}.promoted_at": now(),
        f"{TAG}{alias}.previous": new_history[-2] if len(new_history) > 1 else "",
    }
    try:
        c.set_registered_model_tag(name, f"{TAG}{alias}.history", json.dumps(new_history[-100:]))
        for key, value in tags.items():
            c.set_model_version_tag(name, version, key, value)
    except (MlflowException, OSError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise RegistryError(f"'{alias}' of '{name}' is now version {version}, but its audit "
                            f"record was not written ({reason})") from None  # fmt: skip
    try:
        _check_won(c, name, alias, version)
    except RegistryError:
        _unrecord(c, name, version, alias, {k: before.get(k) for k in tags},
                  old_history, new_history[-100:])  # fmt: skip
        raise
    return {"name": name, "alias": alias, "version": version, "previous": replaced}


def _unrecord(
    c: mlflow.MlflowClient,
    name: str,
    version: str,
    alias: str,
    old_tags: dict[str, str | None],
    old_history: list[str],
    written: list[str],
) -> None:
    """Take back the record of a move another promotion overtook: the version's tags as they
    were, and the history as it was unless the winner has written its own since (``history``
    then ends it with the real holder)."""
    for key, value in old_tags.items():
        if value is None:
            c.delete_model_version_tag(name, version, key)
        else:
            c.set_model_version_tag(name, version, key, value)
    if _recorded(c, name, alias) == written:
        c.set_registered_model_tag(name, f"{TAG}{alias}.history", json.dumps(old_history[-100:]))


def _check_won(c: mlflow.MlflowClient, name: str, alias: str, version: str) -> None:
    holder = alias_holder(c, name, alias)
    if holder is None or str(holder.version) != version:
        raise RegistryError(f"a concurrent promotion gave '{alias}' of '{name}' to version "
                            f"{holder.version if holder else '(none)'} right after this one; "
                            "look (`lowlight models list`) and retry")  # fmt: skip


def aliases_by_version(c: mlflow.MlflowClient, name: str) -> dict[str, list[str]]:
    """{version: [aliases]} from the registered model (version searches omit aliases)."""
    holders: dict[str, list[str]] = {}
    for alias, version in (c.get_registered_model(name).aliases or {}).items():
        holders.setdefault(str(version), []).append(alias)
    return holders


def describe(version: ModelVersion, aliases: list[str]) -> dict:
    """A version's aliases, key metrics and lineage, for ``lowlight models``."""
    tags = version.tags
    return {
        "version": str(version.version),
        "aliases": ", ".join(sorted(aliases)),
        "test_psnr": tags.get(f"{TAG}test_psnr", ""),
        "test_ssim": tags.get(f"{TAG}test_ssim", ""),
        "git_commit": tags.get(f"{TAG}git_commit", "")[:12],
        "training_run": tags.get(f"{TAG}training_run_id", ""),
        "created": dt.datetime.fromtimestamp(version.creation_timestamp / 1000, dt.UTC).isoformat(
            timespec="seconds"
        ),
    }


def checkout_commands(version: ModelVersion) -> list[str]:
    """Shell commands that restore the code and data this version was trained on."""
    commit = version.tags.get(f"{TAG}git_commit", "").removesuffix("-dirty")
    if not commit:
        return []
    return [f"git checkout {commit} && dvc checkout"]


def lineage_tags(
    run: mlflow.entities.Run, metrics: dict, baseline: str, dvc_hashes: dict
) -> dict[str, str]:
    """Tags that tie a version to its code, data, training run, params and test metrics."""
    model = metrics["model"]["overall"]
    params = {k: v for k, v in run.data.params.items() if k.startswith(("model.", "train."))}
    tags = {
        f"{TAG}training_run_id": run.info.run_id,
        f"{TAG}git_commit": run.data.tags.get("git_commit", ""),
        f"{TAG}test_psnr": f"{model['psnr']:.4f}",
        f"{TAG}test_ssim": f"{model['ssim']:.4f}",
        f"{TAG}params": json.dumps(params, sort_keys=True)[:4900],
        f"{TAG}data.pairs_sha256": run.data.tags.get("data.pairs_sha256", ""),
    }
    if baseline in metrics:
        key = f"{TAG}test_psnr.{baseline.replace('+', '_')}"  # '+' is not allowed in tag keys
        tags[key] = f"{metrics[baseline]['overall']['psnr']:.4f}"
    for bucket, values in metrics["model"].items():
        if bucket.startswith("ratio_"):
            tags[f"{TAG}test_psnr.{bucket}"] = f"{values['psnr']:.4f}"
    tags.update({f"{TAG}{k}": v for k, v in dvc_hashes.items()})
    return tags
