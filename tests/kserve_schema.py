"""Strict offline validation of KServe manifests with KServe's own typed models.

KServe's Python SDK holds one class per schema object of its CRDs (generated from their
OpenAPI schema), with ``openapi_types`` (field -> type) and ``attribute_map`` (field -> YAML
key). ``validate`` walks a manifest with them: an unknown key (a misspelt field) or a value of
the wrong type is an error naming its path, and every object is built with its fields, so the
SDK's own required-field checks run too. ``V1*`` types (ObjectMeta, Container, ...) come from
``kubernetes.client.models``.

Why loaded by hand: the SDK (``kserve``, pinned in constraints.txt) is installed apart and
without its dependencies, into ``<venv>/kserve-sdk`` (the Makefile): its dependency set would
downgrade pandas and psutil in the venv, and its package ``__init__`` imports its model server
(grpc, fastapi, ...). A bare ``kserve`` package whose ``__path__`` points at that folder lets
``kserve.models`` and ``kserve.configuration`` load without running that ``__init__``.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from pathlib import Path

import pytest

SDK = Path(sys.prefix) / "kserve-sdk"
PRIMITIVES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "datetime": str,
    "date": str,
}


class SchemaError(ValueError):
    """The manifest does not match KServe's (or Kubernetes') schema."""


def kserve_models() -> types.ModuleType:
    """``kserve.models``; skips the test where the SDK is not installed, fails it in CI."""
    if "kserve" not in sys.modules:
        if not (SDK / "kserve" / "models").is_dir():
            message = f"KServe's SDK is not installed in {SDK}: run `make install`"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        package = types.ModuleType("kserve")
        package.__path__ = [str(SDK / "kserve")]
        sys.modules["kserve"] = package
    return importlib.import_module("kserve.models")


def validate(doc: dict, class_name: str) -> object:
    """``doc`` as an instance of the SDK class ``class_name`` (e.g. V1beta1InferenceService)."""
    return _build(doc, class_name, doc.get("kind", class_name) if isinstance(doc, dict) else "")


def _model_class(name: str) -> type:
    models = kserve_models()
    if hasattr(models, name):
        return getattr(models, name)
    import kubernetes.client.models as k8s

    if hasattr(k8s, name):
        return getattr(k8s, name)
    raise SchemaError(f"no schema class {name} in KServe's SDK or the Kubernetes client")


def _build(value: object, class_name: str, path: str) -> object:
    cls = _model_class(class_name)
    if not isinstance(value, dict):
        raise SchemaError(f"{path}: an object ({class_name}) expected, got {value!r}")
    keys = {key: attr for attr, key in cls.attribute_map.items()}
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise SchemaError(f"{path}: unknown field(s) {unknown} in {class_name}")
    kwargs = {
        keys[k]: _check(v, cls.openapi_types[keys[k]], f"{path}.{k}") for k, v in value.items()
    }
    try:
        return cls(**kwargs)  # the SDK's own checks: required fields, allowed values
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{path}: {exc}") from None


def _check(value: object, type_name: str, path: str) -> object:
    if type_name == "object":
        return value
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        if not isinstance(value, list):
            raise SchemaError(f"{path}: a list expected, got {value!r}")
        return [_check(v, match.group(1), f"{path}[{i}]") for i, v in enumerate(value)]
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise SchemaError(f"{path}: a map of strings expected, got {value!r}")
        return {k: _check(v, match.group(1), f"{path}.{k}") for k, v in value.items()}
    if type_name in PRIMITIVES:
        wrong_bool = isinstance(value, bool) and type_name != "bool"
        if wrong_bool or not isinstance(value, PRIMITIVES[type_name]):
            raise SchemaError(f"{path}: {type_name} expected, got {value!r}")
        return value
    return _build(value, type_name, path)
