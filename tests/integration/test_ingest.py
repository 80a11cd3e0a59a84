"""ingest: the RAW folder from a local path, an s3:// URI (moto_server) or a DVC repository
at a git revision (its DVC remote)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from lowlight import stages, storage
from lowlight.errors import DatasetError
from tests.integration.test_dvc_pipeline import dvc, sh
from tests.integration.test_s3_patches import upload_tree


def digests(folder: Path) -> dict[str, str]:
    """Each file's sha256 but ingest's output marker (``storage.MARKER``)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != storage.MARKER
    }


def test_ingest_local_folder(sony: Path, tmp_path: Path):
    summary = stages.ingest.run(str(sony / "Sony"), tmp_path / "ingested")
    assert digests(tmp_path / "ingested") == digests(sony / "Sony")
    assert summary["raw_files"] == summary["files"] == 9
    with pytest.raises(DatasetError, match="missing: not found"):
        stages.ingest.run(str(tmp_path / "missing"), tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_ingest_from_s3(sony: Path, tmp_path: Path, s3_bucket: str, s3_server: str):
    upload_tree(sony / "Sony", s3_bucket, "raw/Sony", s3_server)
    summary = stages.ingest.run(f"s3://{s3_bucket}/raw/Sony", tmp_path / "ingested")
    assert digests(tmp_path / "ingested") == digests(sony / "Sony")
    assert summary["raw_files"] == 9
    with pytest.raises(DatasetError, match="not found"):
        stages.ingest.run(f"s3://{s3_bucket}/nothing-here", tmp_path / "none")


@pytest.mark.slow
def test_ingest_from_a_dvc_remote_at_a_git_revision(sony: Path, tmp_path: Path):
    repo, store = tmp_path / "repo", tmp_path / "store"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo)
    sh("git", "config", "user.email", "ci@example.com", cwd=repo)
    sh("git", "config", "user.name", "ci", cwd=repo)
    dvc("init", "-q", cwd=repo)
    dvc("remote", "add", "-d", "store", str(store), cwd=repo)
    shutil.copytree(sony / "Sony", repo / "data/Sony")
    dvc("add", "-q", "data/Sony", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-qm", "v1", cwd=repo)
    dvc("push", "-q", cwd=repo)
    first = sh("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()
    v1 = digests(repo / "data/Sony")
    # a second version of the data; then the local cache goes: v1 must come from the remote
    (repo / "data/Sony/short/00001_00_0.1s.dng").unlink()
    dvc("add", "-q", "data/Sony", cwd=repo)
    sh("git", "commit", "-qam", "v2", cwd=repo)
    shutil.rmtree(repo / ".dvc/cache")

    summary = stages.ingest.run("data/Sony", tmp_path / "ingested", repo=str(repo), rev=first)
    assert digests(tmp_path / "ingested") == v1
    assert summary["source"] == f"{repo}@{first}:data/Sony"
    with pytest.raises(DatasetError, match="data/nothing"):
        stages.ingest.run("data/nothing", tmp_path / "none", repo=str(repo), rev=first)
