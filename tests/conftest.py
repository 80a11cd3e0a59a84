"""Shared fixtures: tiny synthetic SID data made by the synth stage, never downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lowlight import stages
from lowlight.cli import app
from lowlight.config import Params, override

TINY = {"scenes": 3, "size": "32x48", "frames": 2}


@pytest.fixture(scope="session")
def sony_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only tiny SID-layout dataset (3 scenes, one per split); copy it before changing."""
    root = tmp_path_factory.mktemp("synthetic")
    stages.synth(override(Params().synth, "synth", **TINY), root, seed=0)
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
