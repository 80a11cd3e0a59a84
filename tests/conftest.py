"""Shared fixtures: tiny synthetic SID data made by the synth stage, never downloaded."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lowlight import stages
from lowlight.cli import app
from lowlight.config import Params, override

TINY = {"scenes": 3, "size": "32x48", "frames": 2}


@pytest.fixture(autouse=True)
def _own_cwd(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests run in their own folder: the CLI reads ./params.yaml, and the repository's is
    the demo's (a bayer model fine-tuning the shipped one), not the library's defaults.
    (Integration tests pass their params files and record the repository's git commit.)"""
    if "integration" not in request.node.path.parts:
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))


@pytest.fixture(scope="session")
def sony_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only tiny SID-layout dataset (3 scenes, one per split); copy it before changing."""
    root = tmp_path_factory.mktemp("synthetic")
    stages.synth.run(override(Params().synth, "synth", **TINY), root, seed=0)
    return root


@pytest.fixture
def sony(sony_master: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset root (holds Sony/ and the list files)."""
    root = tmp_path / "raw"
    shutil.copytree(sony_master, root)
    return root


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def tiny_patches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16x16 patches (stride 8) of a 5-scene synthetic set: 45 train and 15 val patches."""
    root = tmp_path_factory.mktemp("patches")
    p = Params()
    stages.synth.run(override(p.synth, "synth", scenes=5, size="32x48", frames=1), root / "raw", 0)
    stages.convert.run(p.convert, root / "raw/Sony", root / "conv")
    stages.pair.run(p.pair, root / "conv", root / "pairs.parquet")
    cfg = override(p.patch, "patch", size=16, stride=8, row_group=16)
    stages.patch.run(cfg, root / "pairs.parquet", root / "patches", seed=0)
    return root / "patches"


TINY_MODEL = {"depth": 2, "width": 4, "disc_width": 4, "disc_hidden": 16}
TINY_TRAIN = {"epochs": 1, "batch_size": 4, "workers": 0, "checkpoint_every": 5, "log_every": 2}


def tiny_params_file(folder: Path, **train) -> Path:
    """A params.yaml with a tiny model and training budget for tests."""
    import yaml

    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump({"model": TINY_MODEL, "train": {**TINY_TRAIN, **train}}))
    return path


@pytest.fixture(scope="session")
def tiny_models(tiny_patches: Path) -> Path:
    """A tiny generator trained for one epoch (its MLflow run in a tmp sqlite store)."""
    from lowlight.config import MlflowConfig, ModelConfig, TrainConfig

    root = tiny_patches.parent
    stages.train.run(
        ModelConfig(**TINY_MODEL),
        TrainConfig(**TINY_TRAIN),
        MlflowConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}"),
        tiny_patches,
        root / "models",
        root / "reports",
        seed=0,
    )
    return root / "models"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def one_line_error(result, *words: str) -> str:
    """The CLI failed with exit 1 and one error line holding ``words``, no traceback."""
    text = result.output.strip()
    assert result.exit_code == 1, text
    assert "Traceback" not in text
    line = " ".join(text.split())  # rich wraps long lines at the terminal's width
    assert line.startswith("error:"), text
    for word in words:
        assert word in line, line
    return line


@contextlib.contextmanager
def mounted(target: Path, *args: str) -> Iterator[Path]:
    """A real mount at ``target`` for the block (root only; CI runs as root): a read-only bind
    (``--bind -o ro SOURCE``) or a small tmpfs (``-t tmpfs -o size=512k tmpfs``)."""
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"mount not permitted here: {result.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def readme_block(start: str) -> str:
    """The fenced code block of README.md or a docs page that begins with ``start``, as
    written (tests run it); exactly one across all of them, so an example never forks."""
    root = Path(__file__).parents[1]
    found = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = page.read_text()
        blocks = [b.split("\n", 1)[1] for b in text.split("```")[1::2] if "\n" in b]
        found += [(page.relative_to(root), b) for b in blocks if b.startswith(start)]
    where = ", ".join(str(page) for page, _ in found)
    assert len(found) == 1, f"{len(found)} blocks starting {start!r} in README/docs ({where})"
    return found[0][1]


def registered_shipped(kind: str, name: str, infer, tmp_path: Path, monkeypatch):
    """The model lowlight ships for ``kind`` logged as a pyfunc in a tmp sqlite store, registered
    as ``name`` and made its champion; loaded back from the registry by name and alias."""
    import mlflow

    from lowlight import card, pyfunc, registry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        info = pyfunc.log_generator(card.SHIPPED / kind, infer, tmp_path / "staging")
    version = mlflow.register_model(info.model_uri, name)
    registry.promote(registry.client(uri), name, version.version)
    return mlflow.pyfunc.load_model(f"models:/{name}@champion")
