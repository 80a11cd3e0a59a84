"""Training: steps, checkpoints, kill-and-resume, MLflow tracking on the sqlite default."""

import csv
import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest
import torch

from lowlight import stages
from lowlight.card import ModelCard
from lowlight.config import MlflowConfig, ModelConfig, TrainConfig
from lowlight.dataset import PatchStream
from lowlight.train import Trainer, train_step

from .conftest import TINY_MODEL, TINY_TRAIN, tiny_params_file


def test_training_steps_lower_l1_on_a_fixed_batch(tiny_patches):
    trainer = Trainer.create(ModelConfig(**TINY_MODEL), TrainConfig(lr=2e-3), seed=0)
    stream = PatchStream(tiny_patches / "train", seed=0, augment=False)
    samples = [sample for _, sample in zip(range(8), stream, strict=False)]
    batch = [torch.stack(t) for t in zip(*samples, strict=True)]
    first = train_step(trainer, *batch)["l1"]
    for _ in range(15):
        last = train_step(trainer, *batch)["l1"]
    assert last < 0.8 * first


@pytest.mark.parametrize("adversarial", ["bce", "lsgan"])
def test_both_adversarial_losses_train(tiny_patches, adversarial):
    cfg = TrainConfig(adversarial=adversarial)
    trainer = Trainer.create(ModelConfig(**TINY_MODEL), cfg, seed=0)
    dark, bright = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    losses = train_step(trainer, dark, bright)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def run_train(tmp_path, models, *extra, wait=True, epochs=1):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    params = tiny_params_file(tmp_path, epochs=epochs, batch_size=1, checkpoint_every=10)
    patches = tmp_path.parent / "patches"
    command = [sys.executable, "-m", "lowlight.cli", "train", patches, models,
               "--reports", tmp_path / "reports", "--params", params, *extra]  # fmt: skip
    process = subprocess.Popen([str(c) for c in command], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    if wait:
        output = process.communicate(timeout=600)[0].decode()
        assert process.returncode == 0, output
    return process


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_weights(tiny_patches, tmp_path_factory):
    import shutil

    work = tmp_path_factory.mktemp("resume") / "run"
    work.mkdir()
    shutil.copytree(tiny_patches, work.parent / "patches")
    run_train(work, work / "straight", epochs=6)

    process = run_train(work, work / "killed", wait=False, epochs=6)
    checkpoint = work / "checkpoints/killed/last.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    progress = torch.load(checkpoint, weights_only=True)["progress"]
    assert 0 < progress["step"] < 6 * 45
    run_train(work, work / "killed", "--resume", epochs=6)

    for name in ("generator.pt", "discriminator.pt"):
        a = torch.load(work / "straight" / name, weights_only=True)
        b = torch.load(work / "killed" / name, weights_only=True)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    final = [
        torch.load(work / "checkpoints" / d / "last.pt", weights_only=True)
        for d in ("straight", "killed")
    ]
    histories = [
        [{k: v for k, v in row.items() if k != "seconds"} for row in f["progress"]["history"]]
        for f in final
    ]
    assert histories[0] == histories[1]


def test_resume_without_checkpoint_is_one_clear_error(cli, tiny_patches, tmp_path):
    result = cli("train", tiny_patches, tmp_path / "models", "--resume")
    assert result.exit_code == 1 and "no checkpoint to resume" in result.output


def test_train_outputs_and_mlflow_run(tiny_patches, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    summary = stages.train.run(
        ModelConfig(**TINY_MODEL),
        TrainConfig(**{**TINY_TRAIN, "epochs": 2}),
        MlflowConfig(),  # the sqlite default, relative to the working directory
        tiny_patches,
        tmp_path / "models",
        tmp_path / "reports",
        seed=0,
    )
    assert (tmp_path / "mlruns/mlflow.db").exists()
    for path in ("models/generator.pt", "models/discriminator.pt", "checkpoints/models/last.pt"):
        assert torch.load(tmp_path / path, weights_only=True)
    card = ModelCard.load(tmp_path / "models")
    assert card.architecture == "UNetGenerator" and card.arguments["depth"] == 2
    with open(tmp_path / "reports/train_history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[-1]["val_psnr"]) > 0
    assert (tmp_path / "reports/train_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "reports/samples/epoch_002.png").exists()

    client = mlflow.MlflowClient("sqlite:///mlruns/mlflow.db")
    run = client.get_run(summary["mlflow_run"])
    assert run.info.status == "FINISHED"
    assert run.data.params["model.depth"] == "2" and run.data.params["train.lambda_l1"] == "100.0"
    assert run.data.params["seed"] == "0"
    assert {"d_loss", "g_loss", "l1", "val_psnr", "val_ssim"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "l1")) >= 3
    assert run.data.tags["data.pairs_sha256"] and "git_commit" in run.data.tags
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"train_history.csv", "train_curves.png", "generator.json", "samples"} <= artifacts
    assert not any("secret" in k.lower() or "password" in k.lower() for k in run.data.params)


def test_warmup_epochs_are_l1_only_then_the_adversarial_weight():
    from lowlight.train import adversarial_weight

    cfg = TrainConfig(warmup_epochs=2, lambda_adv=0.5)
    assert [adversarial_weight(cfg, epoch) for epoch in range(4)] == [0.0, 0.0, 0.5, 0.5]
    assert adversarial_weight(TrainConfig(), 0) == 1.0  # the default keeps today's GAN


def test_zero_adversarial_weight_leaves_the_discriminator_alone():
    trainer = Trainer.create(ModelConfig(**TINY_MODEL), TrainConfig(), seed=0)
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    g_before = [p.detach().clone() for p in trainer.generator.parameters()]
    dark, bright = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    losses = train_step(trainer, dark, bright, lambda_adv=0.0)
    assert losses["adv"] == 0.0 and losses["d_loss"] == 0.0
    assert losses["g_loss"] == pytest.approx(trainer.lambda_l1 * losses["l1"])
    after = list(trainer.discriminator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert not all(
        torch.equal(a, b) for a, b in zip(g_before, trainer.generator.parameters(), strict=True)
    )
    train_step(trainer, dark, bright, lambda_adv=1.0)
    after = list(trainer.discriminator.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_cosine_schedule_decays_from_lr_to_zero():
    from lowlight.train import lr_factor, set_lr

    assert [lr_factor("cosine", d) for d in (0.0, 0.5, 1.0, 1.2)] == pytest.approx(
        [1.0, 0.5, 0.0, 0.0]
    )
    assert lr_factor("constant", 0.99) == 1.0
    cfg = TrainConfig(lr=1e-3, lr_d=4e-4)
    trainer = Trainer.create(ModelConfig(**TINY_MODEL), cfg, seed=0)
    set_lr(trainer, cfg, 0.5)
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(2e-4)


def test_time_budget_moves_the_schedule_and_ends_training(tiny_patches, tmp_path):
    from lowlight.train import Progress, fit, fraction_done

    budget = TrainConfig(max_minutes=2.0)
    assert fraction_done(Progress(step=10, seconds=60.0), 100, budget) == pytest.approx(0.5)
    assert fraction_done(Progress(step=80, seconds=60.0), 100, budget) == pytest.approx(0.8)
    assert fraction_done(Progress(step=10, seconds=60.0), 100, TrainConfig()) == pytest.approx(0.1)

    # a budget of a few milliseconds: the first check (log_every steps) ends the whole run
    cfg = TrainConfig(**{**TINY_TRAIN, "epochs": 3, "log_every": 1}, max_minutes=1e-7)
    _, progress = fit(ModelConfig(**TINY_MODEL), cfg, tiny_patches, tmp_path, seed=0)
    assert progress.step == 1 and progress.epoch == 1 and len(progress.history) == 1
    assert progress.seconds > 6e-6


def test_fit_trains_no_discriminator_during_warmup(tiny_patches, tmp_path):
    from lowlight.train import fit

    cfg = TrainConfig(**{**TINY_TRAIN, "epochs": 2}, warmup_epochs=1, lr_schedule="cosine")
    _, progress = fit(ModelConfig(**TINY_MODEL), cfg, tiny_patches, tmp_path, seed=0)
    first, second = progress.history
    assert first["d_loss"] == 0.0 and second["d_loss"] > 0.0
