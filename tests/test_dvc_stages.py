"""dvc.yaml is the table of contents: each stage runs its own wiring module and lists the code
it uses, and dvc.lock records the code as it is (a code change needs a refreshed lock)."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("synth", "convert", "pair", "patch", "train", "evaluate", "register")
WIRING = "src/lowlight/stages/"
# modules every stage touches that hold no stage logic (params are DVC params, errors are types)
NOT_DEPS = {"config", "errors"}


def code_deps(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if str(d).startswith("src/")]


@pytest.fixture(scope="module")
def pipeline() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def lock() -> dict:
    return yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]


def test_stages_in_pipeline_order(pipeline):
    assert tuple(pipeline) == STAGES


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_lists_its_own_wiring_module_and_no_other(pipeline, name):
    wiring = [d for d in code_deps(pipeline[name]) if d.startswith(WIRING)]
    assert wiring == [f"{WIRING}{name}.py"]


def test_synth_and_evaluate_share_no_wiring(pipeline):
    synth, evaluate = (set(code_deps(pipeline[s])) for s in ("synth", "evaluate"))
    assert not {d for d in synth & evaluate if d.startswith(WIRING)}


@pytest.mark.parametrize("name", STAGES)
def test_a_stage_lists_every_library_module_its_wiring_imports(pipeline, name):
    tree = ast.parse((ROOT / WIRING / f"{name}.py").read_text())
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "lowlight":
            used |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lowlight."):
            used.add(node.module.split(".")[1])
    used -= NOT_DEPS | {"__version__"}
    listed = {
        Path(d).stem if d.endswith(".py") else Path(d).name for d in code_deps(pipeline[name])
    }
    listed |= {"models"} if any("/models/" in d for d in code_deps(pipeline[name])) else set()
    assert used <= listed, (
        f"{name}: imports {sorted(used - listed)} but dvc.yaml does not list them"
    )


@pytest.mark.parametrize("name", STAGES)
def test_dvc_lock_records_the_code_as_it_is(pipeline, lock, name):
    """Fails when code changed without `dvc repro` (or `dvc commit`) refreshing dvc.lock."""
    recorded = {d["path"]: d for d in lock[name]["deps"] if d["path"].startswith("src/")}
    assert sorted(recorded) == sorted(code_deps(pipeline[name])), (
        f"{name}: dvc.lock lists other code than dvc.yaml; run `make demo` (or `dvc commit`)"
    )
    stale = []
    for path, entry in recorded.items():
        file = ROOT / path
        assert file.is_file(), f"{path}: code deps are files (a folder's hash counts caches)"
        if hashlib.md5(file.read_bytes()).hexdigest() != entry["md5"]:
            stale.append(path)
    assert not stale, f"{name}: dvc.lock is stale for {stale}; run `make demo` and commit dvc.lock"
