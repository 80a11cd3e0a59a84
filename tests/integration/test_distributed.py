"""Data-parallel training under torchrun: 2 CPU processes with gloo on tiny data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import mlflow
import pytest
import yaml

from lowlight import stages
from lowlight.card import ModelCard
from lowlight.config import Params, override
from lowlight.dataset import to_tensor
from lowlight.patches import iter_patches
from tests.integration.conftest import free_port

pytestmark = pytest.mark.slow
PROBE = Path(__file__).with_name("ddp_probe.py")
TINY_MODEL = {"depth": 2, "width": 4, "disc_width": 4, "disc_hidden": 16}


@pytest.fixture(scope="module")
def patches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """45 train patches in 6 row groups (8 x 5 + 5): uneven shards for two processes."""
    root = tmp_path_factory.mktemp("ddp")
    p = Params()
    stages.synth.run(override(p.synth, "synth", scenes=5, size="32x48", frames=1), root / "raw", 0)
    stages.convert.run(p.convert, root / "raw/Sony", root / "conv")
    stages.pair.run(p.pair, root / "conv", root / "pairs.parquet")
    cfg = override(p.patch, "patch", size=16, stride=8, row_group=8)
    stages.patch.run(cfg, root / "pairs.parquet", root / "patches", seed=0)
    return root / "patches"


def torchrun(nproc: int, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               f"--master_port={free_port()}", *map(str, args)]  # fmt: skip
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def digest(bright) -> str:
    return hashlib.sha256(to_tensor(bright).flatten().sort().values.numpy().tobytes()).hexdigest()


@pytest.mark.parametrize("workers", [0, 2])
def test_every_patch_once_per_epoch_over_both_processes(patches, tmp_path, workers):
    torchrun(2, PROBE, patches, tmp_path, 8, workers, cwd=tmp_path)
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    everything = Counter(digest(b) for _, b in iter_patches(patches / "train"))
    assert sum(everything.values()) == 45
    seen = Counter(d for r in ranks for d in r["seen"])
    assert seen == everything  # each patch exactly once, across processes and workers
    assert all(r["world"] == 2 for r in ranks)
    assert len({r["steps"] for r in ranks}) == 1  # every process runs the same steps
    assert ranks[0]["steps"] == max(r["batches"] for r in ranks)
    assert sum(len(r["seen"]) for r in ranks) == 45


def test_lowlight_train_under_torchrun_then_resume_on_one_process(patches, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = {"model": TINY_MODEL, "mlflow": {"tracking_uri": uri},
              "train": {"epochs": 1, "batch_size": 4, "workers": 0, "device": "cpu",
                        "checkpoint_every": 100, "log_every": 2}}  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = torchrun(2, "-m", "lowlight.cli", "train", patches, "models", cwd=tmp_path)
    assert result.stdout.count("mlflow_run") == 1  # rank 0 alone reports
    card = ModelCard.load(tmp_path / "models")
    # global batch 4 = 2 processes x 2: as many steps as one process with batch 4 would take
    assert card.steps == -(-45 // 4) == 12
    runs = mlflow.MlflowClient(uri).search_runs(
        [mlflow.MlflowClient(uri).get_experiment_by_name("lowlight").experiment_id]
    )
    assert len(runs) == 1 and runs[0].data.params["train.batch_size"] == "4"
    assert runs[0].data.metrics["val_psnr"] > 0
    assert (tmp_path / "checkpoints/models/last.pt").exists()

    # the checkpoint of two processes goes on with one (another epoch, same MLflow run)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    resumed = subprocess.run(
        [sys.executable, "-m", "lowlight.cli", "train", patches, "models", "--resume",
         "--epochs", "2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    card = ModelCard.load(tmp_path / "models")
    assert card.epochs == 2 and card.steps == 24
    assert card.mlflow_run_id == runs[0].info.run_id
