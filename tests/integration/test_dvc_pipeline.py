"""The whole pipeline as DVC runs it, on tiny synthetic data, in a throwaway git repository."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["synth", "convert", "pair", "patch", "train", "evaluate", "register"]
TINY = {
    "synth": {"scenes": 5, "size": "32x48", "frames": 1},
    "patch": {"size": 16, "stride": 8, "row_group": 16},
    "model": {"depth": 2, "width": 4, "disc_width": 4, "disc_hidden": 16},
    # a tiny model of its own, not the shipped one the demo fine-tunes
    "train": {"epochs": 1, "batch_size": 4, "workers": 0, "init": "none"},
    "infer": {"tile": 32, "overlap": 8},
    "register": {"baseline_margin": -100.0},
}

pytestmark = pytest.mark.slow


def sh(*args, cwd, check=True, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                            env=env or pipeline_env())  # fmt: skip
    if check and result.returncode:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def pipeline_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


def dvc(*args, cwd, check=True, env=None):
    return sh(Path(sys.executable).parent / "dvc", *args, cwd=cwd, check=check, env=env)


def make_repo(path: Path, **params) -> Path:
    """A git + DVC repository with the project's pipeline, code and tiny params."""
    path.mkdir(parents=True)
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(ROOT / name, path / name)
    shutil.copytree(ROOT / "src", path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in {**TINY, **params}.items():
        data[section] = {**data.get(section, {}), **values}
    (path / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    sh("git", "init", "-q", cwd=path)
    sh("git", "config", "user.email", "ci@example.invalid", cwd=path)
    sh("git", "config", "user.name", "ci", cwd=path)
    dvc("init", "-q", cwd=path)
    dvc("config", "core.analytics", "false", cwd=path)
    sh("git", "add", "-A", cwd=path)
    sh("git", "commit", "-qm", "pipeline", cwd=path)
    return path


def test_full_pipeline_rerun_scope_and_remote_round_trip(tmp_path, s3_bucket, s3_server):
    repo = make_repo(tmp_path / "repo")
    dvc("repro", cwd=repo)
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert {"amplify", "amplify+bm3d", "model"} <= set(metrics)
    registration = json.loads((repo / "reports/registration.json").read_text())
    assert registration["gate_passed"] and "champion" in registration["aliases"]
    assert (repo / "reports/report.md").exists() and list((repo / "reports/grids").iterdir())

    # the stage graph runs in pipeline order
    dot = dvc("dag", "--dot", cwd=repo).stdout
    for upstream, downstream in zip(STAGES, STAGES[1:], strict=False):
        assert f'"{upstream}" -> "{downstream}"' in dot, (upstream, downstream, dot)

    # a second repro is a no-op, in seconds
    start = time.monotonic()
    assert "up to date" in dvc("repro", cwd=repo).stdout
    assert time.monotonic() - start < 60

    # a stage that fails leaves the previous outputs and dvc.lock as they were
    before = {p: (repo / p).read_bytes() for p in ("models/generator.pt", "dvc.lock",
                                                    "reports/train_history.csv")}  # fmt: skip
    data = yaml.safe_load((repo / "params.yaml").read_text())
    data["train"]["device"] = "cuda"  # no GPU here: train fails with one clear line
    (repo / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    failed = dvc("repro", cwd=repo, check=False)
    assert failed.returncode != 0 and "torch sees no CUDA device" in failed.stdout + failed.stderr
    assert {p: (repo / p).read_bytes() for p in before} == before
    assert sorted(p.name for p in (repo / "models").iterdir()) == [
        ".lowlight-output.json",
        "discriminator.pt",
        "generator.json",
        "generator.pt",
    ]
    sh("git", "checkout", "params.yaml", cwd=repo)
    assert "up to date" in dvc("status", cwd=repo).stdout

    # changing train.epochs touches train, evaluate and register only
    data = yaml.safe_load((repo / "params.yaml").read_text())
    data["train"]["epochs"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert set(json.loads(dvc("status", "--json", cwd=repo).stdout)) == {"train"}
    output = dvc("repro", cwd=repo).stdout
    ran = [s for s in STAGES if f"Running stage '{s}'" in output]
    assert ran == ["train", "evaluate", "register"], output
    sh("git", "checkout", "params.yaml", cwd=repo)
    dvc("repro", cwd=repo)  # back to the committed params (the run cache restores outputs)

    # push to a real S3 (moto) remote, clone, pull: same bytes, clean status
    dvc("remote", "add", "-d", "store", f"s3://{s3_bucket}/dvc", cwd=repo)
    dvc("remote", "modify", "store", "endpointurl", s3_server, cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-qm", "results", cwd=repo)
    dvc("push", cwd=repo)
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", repo, clone, cwd=tmp_path)
    dvc("pull", cwd=clone)
    assert "up to date" in dvc("status", cwd=clone).stdout
    for name in ("data/pairs.parquet", "models/generator.pt", "data/converted/converted.parquet"):
        assert (clone / name).read_bytes() == (repo / name).read_bytes(), name
    parts = sorted((repo / "data/patches/train").iterdir())
    assert parts and all(
        (clone / "data/patches/train" / p.name).read_bytes() == p.read_bytes() for p in parts
    )


def test_a_prepared_raw_folder_replaces_synth(tmp_path):
    """Point data.raw_dir at a SID-layout folder (as after downloading SID): no code change.

    A corrupt RAW among its files is reported by convert and does not fail the pipeline.
    """
    download = tmp_path / "SID"
    sh(Path(sys.executable).parent / "lowlight", "synth", download, "--scenes", 4,
       "--size", "32x48", "--frames", 1, "--seed", 7, cwd=tmp_path)  # fmt: skip
    (download / "Sony/short/00001_09_0.1s.ARW").write_bytes(b"a corrupt download")
    repo = make_repo(tmp_path / "repo", data={"raw_dir": str(download / "Sony")})
    result = dvc("repro", "register", cwd=repo)
    assert "Running stage 'synth'" not in result.stdout
    assert not (repo / "data/synthetic").exists()
    manifest = repo / "data/converted/converted.parquet"
    import pyarrow.parquet as pq

    assert pq.read_table(manifest).schema.metadata[b"raw_dir"] == str(download / "Sony").encode()
    rows = {r["source"]: r for r in pq.read_table(manifest).to_pylist()}
    assert rows["short/00001_09_0.1s.ARW"]["status"] == "failed"  # reported, pipeline went on
    assert (repo / "reports/registration.json").exists()
