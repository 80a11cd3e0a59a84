"""Two-step GAN training (discriminator, then generator) with atomic checkpoints and resume.

``fit`` is the loop: for each epoch ``train_epoch`` (for each batch ``train_step``: a
discriminator step, then a generator step), then ``end_epoch`` (validation, the best generator,
the logs, a checkpoint), until the epochs or ``train.max_minutes`` run out. Determinism on CPU:
the data order is a function of (seed, epoch), the DataLoader gets its own generator, and the
global torch RNG (dropout) is seeded once and saved in every checkpoint.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from lowlight import metrics, modes, storage
from lowlight.config import ModelConfig, TrainConfig
from lowlight.dataset import PatchStream, PatchTable
from lowlight.devices import pick_device
from lowlight.distributed import Group, all_max
from lowlight.errors import LowlightError
from lowlight.imageio import write_image
from lowlight.losses import ADVERSARIAL, Adversarial
from lowlight.models import ConvDiscriminator, UNetGenerator
from lowlight.models.render import render as render_camera

log = logging.getLogger(__name__)

CHECKPOINT = "last.pt"
BEST = "best_generator.pt"
HISTORY_FIELDS = ["epoch", "step", "d_loss", "g_loss", "l1", "val_psnr", "val_ssim", "seconds"]
LOSSES = ("d_loss", "g_loss", "l1")  # a step's losses summed for the epoch's history row


class TrainError(LowlightError):
    """Training cannot start or resume as asked."""


def build_models(cfg: ModelConfig, seed: int) -> tuple[UNetGenerator, ConvDiscriminator]:
    """Both networks, initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = UNetGenerator(**modes.get(cfg.input).generator_args(cfg))
        dark_channels = generator.config["in_channels"]
        discriminator = ConvDiscriminator(
            dark_channels + 3, cfg.disc_width, cfg.disc_hidden, cfg.dropout
        )
    return generator, discriminator


def init_generator(generator: UNetGenerator, init: str, input_mode: str) -> None:
    """Start from trained weights (``train.init``): the model shipped for ``input_mode``, or a
    models folder's
    (a fine-tune, e.g. the adversarial one from an L1 model); same architecture."""
    from lowlight import card

    folder = card.shipped(input_mode) if init == "shipped" else Path(init)
    if not (folder / card.WEIGHTS).exists():
        raise TrainError(f"train.init {init}: no {card.WEIGHTS} in {folder}")
    trained, trained_card = card.load_generator(folder)
    if trained.config != generator.config:
        raise TrainError(
            f"train.init {init}: that model is {trained_card.input} {trained.config}, "
            f"the model params give {generator.config}; set model.* to match or train.init none"
        )
    generator.load_state_dict(trained.state_dict())
    log.info("generator initialised from %s", folder)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, DDP) else module


@dataclass
class Trainer:
    """The models, their optimisers and the loss: everything one step needs."""

    generator: UNetGenerator
    discriminator: ConvDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    adversarial: Adversarial
    lambda_l1: float
    device: torch.device
    amp: bool
    lambda_adv: float = 1.0
    curve: str = ""  # the generator's camera RGB is rendered with this tone curve ("" = none)

    @classmethod
    def create(
        cls,
        model_cfg: ModelConfig,
        cfg: TrainConfig,
        seed: int,
        group: Group | None = None,
        curve: str = "",
    ) -> Trainer:
        """The trainer; in a torchrun group both networks are wrapped in DDP (every process
        starts from the same seeded weights, gradients are averaged at each backward)."""
        group = group or Group()
        device = pick_device(cfg.device)
        if group.active and device.type == "cuda":
            device = torch.device("cuda", group.local_rank)
        generator, discriminator = build_models(model_cfg, seed)
        generator.to(device)
        discriminator.to(device)
        if group.active:
            ids = [device.index] if device.type == "cuda" else None
            generator, discriminator = DDP(generator, ids), DDP(discriminator, ids)
        amp = cfg.amp and device.type == "cuda"
        return cls(
            generator,
            discriminator,
            torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=cfg.betas),
            torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d or cfg.lr, betas=cfg.betas),
            torch.amp.GradScaler(device.type, enabled=amp),
            ADVERSARIAL[cfg.adversarial],
            cfg.lambda_l1,
            device,
            amp,
            cfg.lambda_adv,
            curve,
        )

    @property
    def plain_generator(self) -> UNetGenerator:
        """The generator itself (not its DDP wrapper): what is saved, validated and exported."""
        return unwrap(self.generator)

    def autocast(self) -> torch.autocast:
        """Half precision on CUDA with ``train.amp``, else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)

    def state_dict(self) -> dict:
        return {
            "generator": unwrap(self.generator).state_dict(),
            "discriminator": unwrap(self.discriminator).state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        unwrap(self.generator).load_state_dict(state["generator"])
        unwrap(self.discriminator).load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler.load_state_dict(state["scaler"])


def generate(
    generator: torch.nn.Module, dark: torch.Tensor, render: torch.Tensor | None, curve: str
) -> torch.Tensor:
    """The generator's output as an image: rendered with the pairs' metadata when the input
    mode restores camera RGB (``curve`` set), else as it is."""
    fake = generator(dark)
    return render_camera(fake, render.to(fake.device), curve) if curve else fake


def train_step(
    t: Trainer,
    dark: torch.Tensor,
    bright: torch.Tensor,
    lambda_adv: float | None = None,
    loss_scale: float = 1.0,
    render: torch.Tensor | None = None,
) -> dict[str, float]:
    """One discriminator step on real vs generated pairs, then one generator step.

    ``lambda_adv`` (default ``t.lambda_adv``) weighs the adversarial loss; at 0 the step is
    L1 only: the discriminator is neither run nor trained (its loss is reported as 0).
    ``loss_scale`` 0: a process of a torchrun group with no batch left joins the step (DDP
    needs every process at every backward) without adding gradient.
    """
    weight = t.lambda_adv if lambda_adv is None else lambda_adv
    t.generator.train()
    t.discriminator.train()
    dark, bright = dark.to(t.device, non_blocking=True), bright.to(t.device, non_blocking=True)
    with t.autocast():
        fake = generate(t.generator, dark, render, t.curve)
    d_loss = torch.zeros((), device=t.device)
    if weight > 0:
        d_loss = discriminator_step(t, dark, bright, fake, loss_scale)
    g_loss, l1, adv = generator_step(t, dark, bright, fake, weight, loss_scale)
    t.scaler.update()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "l1": l1.item(), "adv": adv.item()}


def discriminator_step(
    t: Trainer, dark: torch.Tensor, bright: torch.Tensor, fake: torch.Tensor, loss_scale: float
) -> torch.Tensor:
    """Train the discriminator to tell (dark, bright) from (dark, generated); its loss."""
    with t.autocast():
        # real and generated in one call: DDP allows one forward per backward
        logits = t.discriminator(torch.cat([dark, dark]), torch.cat([bright, fake.detach()]))
        d_loss = t.adversarial.discriminator(*logits.chunk(2))
    t.opt_d.zero_grad(set_to_none=True)
    t.scaler.scale(d_loss * loss_scale).backward()
    t.scaler.step(t.opt_d)
    return d_loss


def generator_step(
    t: Trainer,
    dark: torch.Tensor,
    bright: torch.Tensor,
    fake: torch.Tensor,
    weight: float,
    loss_scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train the generator on L1 to bright plus ``weight`` x fooling the discriminator (not
    run at weight 0); its total, L1 and adversarial losses."""
    with t.autocast():
        l1 = torch.nn.functional.l1_loss(fake, bright)
        adv = (t.adversarial.generator(t.discriminator(dark, fake)) if weight > 0
               else torch.zeros((), device=t.device))  # fmt: skip
        g_loss = t.lambda_l1 * l1 + weight * adv
    t.opt_g.zero_grad(set_to_none=True)
    t.scaler.scale(g_loss * loss_scale).backward()
    t.scaler.step(t.opt_g)
    return g_loss, l1, adv


@torch.no_grad()
def validate(
    generator: UNetGenerator,
    table: PatchTable | Subset,
    batch_size: int,
    device: torch.device,
    mode: modes.InputMode,
    curve: str = "",
) -> tuple[float, float, list[tuple[np.ndarray, ...]]]:
    """Mean PSNR and SSIM of G(dark) against bright, and (dark, G(dark), bright) per patch."""
    generator.eval()
    psnrs, ssims, triples = [], [], []
    for dark, bright, *render in DataLoader(table, batch_size=batch_size):
        fake = generate(generator, dark.to(device), render[0] if render else None, curve)
        fake = fake.clamp_(0, 1).float().cpu()
        for d, f, b in zip(dark, fake, bright, strict=True):
            d, f, b = (x.permute(1, 2, 0).numpy() for x in (d, f, b))
            psnrs.append(metrics.psnr(f, b))
            ssims.append(metrics.ssim(f, b))
            triples.append((mode.preview(d), f, b))
    return float(np.mean(psnrs)), float(np.mean(ssims)), triples


def sample_grid(triples: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """Rows of dark | generated | bright, uint8 RGB."""
    rows = [np.concatenate(t, axis=1) for t in triples]
    return (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255 + 0.5).astype(np.uint8)


@dataclass
class Progress:
    """What a checkpoint records besides the model and optimiser states."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_psnr: float = float("-inf")
    run_id: str = ""
    history: list[dict] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)  # [step, d, g, l1] every log_every
    epoch_sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # d, g, l1
    world_size: int = 1  # processes that trained it (a resume may use another number)
    seconds: float = 0.0  # spent in training steps (train.max_minutes counts these)


def config_hash(model_cfg: ModelConfig, cfg: TrainConfig, seed: int, data: str) -> str:
    """What must not change between a checkpoint and its resume (epochs and device may)."""
    train = cfg.model_dump(
        exclude={"epochs", "max_minutes", "device", "checkpoint_every", "log_every"}
    )
    text = json.dumps([model_cfg.model_dump(), train, seed, data], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(path: Path, trainer: Trainer, progress: Progress, key: str) -> None:
    state = {
        **trainer.state_dict(),
        "progress": asdict(progress),
        "config_hash": key,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    save_torch(state, path)


def save_torch(obj: object, dest: Path) -> None:
    """``torch.save``, atomically and byte for byte reproducible: torch names the records inside
    its zip after the file, so saving to a random temp name made two identical runs differ."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with storage.atomic_path(dest) as tmp:
        tmp.write_bytes(buffer.getvalue())


def read_checkpoint(path: Path, key: str, device: torch.device | str = "cpu") -> dict:
    """A checkpoint's state, checked: present, readable, and made with the same params and
    data as ``key`` (TrainError in one line otherwise)."""
    from lowlight.card import ModelLoadError, load_weights

    if not path.exists():
        raise TrainError(f"{path}: no checkpoint to resume from; train without --resume")
    try:
        state = load_weights(path, device, "unreadable checkpoint")
        made_with = state["config_hash"]
    except ModelLoadError as exc:  # not torch's file, or refused: it could run code
        raise TrainError(f"{exc}; train without --resume to start over") from None
    except Exception as exc:  # truncated (a kill during a copy), or not a checkpoint at all
        reason = f"{type(exc).__name__}: {str(exc)[:160]}"
        raise TrainError(f"{path}: unreadable checkpoint ({reason}); "
                         "train without --resume to start over") from None  # fmt: skip
    if made_with != key:
        raise TrainError(
            f"{path}: checkpoint was made with other model/train params or data; "
            "train without --resume to start over"
        )
    return state


def resumable_run(work_dir: Path, model_cfg: ModelConfig, cfg: TrainConfig, seed: int,
                  pairs_sha256: str) -> str:  # fmt: skip
    """The MLflow run of ``work_dir``'s checkpoint, checked resumable with these params before
    anything is logged (a refused resume leaves that finished run as it was)."""
    key = config_hash(model_cfg, cfg, seed, pairs_sha256)
    return read_checkpoint(work_dir / CHECKPOINT, key)["progress"]["run_id"]


def load_checkpoint(path: Path, trainer: Trainer, key: str) -> Progress:
    state = read_checkpoint(path, key, trainer.device)
    trainer.load_state_dict(state)
    torch.set_rng_state(state["rng_cpu"].cpu())
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["rng_cuda"]])
    return Progress(**state["progress"])


def write_history(path: Path, history: list[dict]) -> None:
    with storage.atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows({k: row.get(k) for k in HISTORY_FIELDS} for row in history)


def publish_reports(reports_dir: Path, work_dir: Path, progress: Progress) -> list[Path]:
    """The training's reports: the last samples, the history CSV and the curves; the files to
    attach to the MLflow run."""
    import shutil

    with storage.staged_dir(reports_dir / "samples", known=("*.png",), stage="train") as staging:
        for sample in sorted((work_dir / "samples").glob("*.png")):
            shutil.copy2(sample, staging / sample.name)
    history, curves = reports_dir / "train_history.csv", reports_dir / "train_curves.png"
    write_history(history, progress.history)
    plot_curves(curves, progress)
    return [history, curves]


def plot_curves(path: Path, progress: Progress) -> None:
    """Per-step losses and per-epoch validation PSNR, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 4))
    if progress.losses:
        steps, d_loss, g_loss, l1 = zip(*progress.losses, strict=True)
        ax_loss.plot(steps, d_loss, label="discriminator")
        ax_loss.plot(steps, l1, label="L1 (generator)")
        ax_loss.set_xlabel("step")
        ax_loss.set_yscale("log")
        ax_loss.legend()
    ax_loss.set_title("losses")
    epochs = [h["epoch"] for h in progress.history if h.get("val_psnr") is not None]
    ax_psnr.plot(epochs, [h["val_psnr"] for h in progress.history if h["epoch"] in epochs], "o-")
    ax_psnr.set_xlabel("epoch")
    ax_psnr.set_title("validation PSNR (dB)")
    fig.tight_layout()
    with storage.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def epoch_loader(
    stream: PatchStream, cfg: TrainConfig, seed: int, epoch: int, batch_size: int | None = None
) -> DataLoader:
    """This epoch's batches (``batch_size``: this process's share of ``cfg.batch_size``); its
    own generator keeps worker seeding off the global RNG."""
    stream.set_epoch(epoch)
    return DataLoader(
        stream,
        batch_size=batch_size or cfg.batch_size,
        num_workers=cfg.workers,
        generator=torch.Generator().manual_seed(seed * 100_003 + epoch),
        pin_memory=torch.cuda.is_available(),
    )


def adversarial_weight(cfg: TrainConfig, epoch: int) -> float:
    """The adversarial loss weight in ``epoch`` (0-based): 0 during the L1-only warm-up."""
    return 0.0 if epoch < cfg.warmup_epochs else cfg.lambda_adv


def lr_factor(schedule: str, done: float) -> float:
    """Learning-rate multiplier with a fraction ``done`` of training behind: 1, or a cosine
    from 1 down to 0."""
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(max(done, 0.0), 1.0)))


def fraction_done(progress: Progress, total_steps: int, cfg: TrainConfig) -> float:
    """How much of the training is behind: of the steps, or of the time budget if further."""
    done = progress.step / total_steps if total_steps > 0 else 1.0
    if cfg.max_minutes:
        done = max(done, progress.seconds / (60 * cfg.max_minutes))
    return done


def out_of_time(group: Group, progress: Progress, cfg: TrainConfig) -> bool:
    """The time budget is spent (on any process: all stop at the same step)."""
    if not cfg.max_minutes:
        return False
    return bool(all_max(group, int(progress.seconds >= 60 * cfg.max_minutes)))


def set_lr(t: Trainer, cfg: TrainConfig, factor: float) -> None:
    """Scale both optimisers' configured learning rates by ``factor``."""
    for optimiser, base in ((t.opt_g, cfg.lr), (t.opt_d, cfg.lr_d or cfg.lr)):
        for group in optimiser.param_groups:
            group["lr"] = base * factor


@dataclass
class Training:
    """One ``fit`` call: the trainer, its progress, and what the parts of its loop read."""

    trainer: Trainer
    progress: Progress
    cfg: TrainConfig
    group: Group
    work_dir: Path  # the checkpoint, the best generator so far, the sample grids
    key: str  # config_hash: what a checkpoint's resume must match
    total_steps: int  # the learning-rate schedule's length
    val: Subset | None  # the validation patches (None: the patches have no val split)
    mode: modes.InputMode  # shows the dark input in the sample grids

    @property
    def checkpoint(self) -> Path:
        return self.work_dir / CHECKPOINT


def fit(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    patches_dir: storage.Location,
    work_dir: Path,
    seed: int,
    resume: bool = False,
    group: Group | None = None,
) -> tuple[Trainer, Progress]:
    """Train for ``cfg.epochs`` epochs (continuing a checkpoint with ``resume``).

    Everything in progress lives in ``work_dir``: the checkpoint, the best generator so far and
    the per-epoch sample grids. The stage publishes them as outputs only when training ends,
    so a run that fails leaves the previous outputs as they were.

    In a torchrun ``group`` of N processes each reads its own row groups (every patch once per
    epoch over all of them) in batches of ``cfg.batch_size / N``, so a step still trains on
    ``cfg.batch_size`` patches; every process runs the same number of steps, one that runs out
    of batches joins the last ones without gradient. Rank 0 alone validates, checkpoints and
    logs.
    """
    group = group or Group()
    stream, batch_size = open_stream(patches_dir, cfg, seed, group)
    val = val_patches(patches_dir, cfg)
    trainer = Trainer.create(model_cfg, cfg, seed, group, stream.spec.render)
    key = config_hash(model_cfg, cfg, seed, stream.spec.pairs_sha256)
    torch.manual_seed(seed)  # dropout; restored from the checkpoint on resume
    if resume:
        progress = resume_progress(work_dir / CHECKPOINT, trainer, key, group.world)
    else:
        progress = start_progress(trainer, cfg.init, model_cfg.input, group.world)
    steps_per_epoch = -(-len(stream) // cfg.batch_size)  # approximate with several workers
    run = Training(trainer, progress, cfg, group, work_dir, key, steps_per_epoch * cfg.epochs,
                   val, modes.get(model_cfg.input))  # fmt: skip
    work_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(progress.epoch, cfg.epochs):
        start = time.perf_counter()
        skip = progress.step_in_epoch
        steps, batches = epoch_batches(stream, cfg, seed, epoch, batch_size, group, skip)
        timed_out = train_epoch(run, epoch, steps, batches, start)
        end_epoch(run, epoch, start)
        if time_is_up(run, epoch, timed_out):
            break
    return trainer, progress


# Before the first epoch: the data, and the progress to start from ----------------------------


def open_stream(
    patches_dir: storage.Location, cfg: TrainConfig, seed: int, group: Group
) -> tuple[PatchStream, int]:
    """This process's share of the training patches and its batch size; TrainError when the
    batch or the row groups do not split over the processes and loader workers."""
    if cfg.batch_size % group.world:
        raise TrainError(f"train.batch_size {cfg.batch_size} does not split over "
                         f"{group.world} processes")  # fmt: skip
    stream = PatchStream(storage.join(patches_dir, "train"), seed, cfg.shuffle_buffer,
                         rank=group.rank, world_size=group.world)  # fmt: skip
    if len(stream.groups) < group.world * max(cfg.workers, 1):
        raise TrainError(f"{patches_dir}: {len(stream.groups)} row groups cannot feed "
                         f"{group.world} processes x {max(cfg.workers, 1)} loader workers; "
                         "cut patches with a smaller patch.row_group")  # fmt: skip
    return stream, cfg.batch_size // group.world


def val_patches(patches_dir: storage.Location, cfg: TrainConfig) -> Subset | None:
    """The first ``train.val_patches`` validation patches; None when there is no val split."""
    val_dir = storage.join(patches_dir, "val")
    val = PatchTable(val_dir) if storage.list_files(val_dir, ".parquet") else None
    return Subset(val, range(min(len(val), cfg.val_patches))) if val else None


def start_progress(trainer: Trainer, init: str, input_mode: str, world: int) -> Progress:
    """A fresh start; the generator from ``train.init``'s weights unless that is "none"."""
    if init != "none":
        init_generator(trainer.plain_generator, init, input_mode)
    return Progress(run_id=active_run_id(), world_size=world)


def resume_progress(checkpoint: Path, trainer: Trainer, key: str, world: int) -> Progress:
    """A checkpoint's progress, its model, optimiser and RNG states loaded into ``trainer``.
    An epoch half done by another number of processes starts over: they deal the row groups
    differently."""
    progress = load_checkpoint(checkpoint, trainer, key)
    log.info("resuming at epoch %d, step %d", progress.epoch, progress.step)
    if progress.world_size != world and progress.step_in_epoch:
        log.warning("%d processes now, %d before: epoch %d starts over",
                    world, progress.world_size, progress.epoch + 1)  # fmt: skip
        progress.step -= progress.step_in_epoch
        progress.step_in_epoch, progress.epoch_sums = 0, [0.0] * 3
    progress.world_size, progress.run_id = world, active_run_id()
    return progress


# An epoch: each batch a discriminator step, then a generator step -----------------------------


def epoch_batches(
    stream: PatchStream,
    cfg: TrainConfig,
    seed: int,
    epoch: int,
    batch_size: int,
    group: Group,
    skip: int,
) -> tuple[int, Iterator[tuple[list[torch.Tensor], float]]]:
    """This epoch's number of steps (every process runs the most any has) and its batches after
    the first ``skip`` (trained before a resume), each with its loss scale (``padded``)."""
    stream.set_epoch(epoch)
    steps = all_max(group, stream.batches(batch_size, cfg.workers))
    batches = iter(epoch_loader(stream, cfg, seed, epoch, batch_size))
    for _ in range(skip):
        next(batches, None)
    return steps, padded(batches)


def padded(
    batches: Iterator[list[torch.Tensor]],
) -> Iterator[tuple[list[torch.Tensor], float]]:
    """Each batch with loss scale 1; once this process's shard has run out, its last batch for
    ever with scale 0: it joins the group's remaining steps without adding gradient."""
    batch = None
    for batch in batches:
        yield batch, 1.0
    while True:
        yield batch, 0.0


def train_epoch(
    run: Training,
    epoch: int,
    steps: int,
    batches: Iterator[tuple[list[torch.Tensor], float]],
    start: float,
) -> bool:
    """The epoch's remaining steps; True when ``train.max_minutes`` ran out on the way (checked
    every ``train.log_every`` steps)."""
    progress, cfg = run.progress, run.cfg
    bar = progress_bar(run, epoch, steps)
    weight = adversarial_weight(cfg, epoch)
    seen = 0
    timed_out = out_of_time(run.group, progress, cfg)
    tick = time.perf_counter()
    for _ in bar:
        if timed_out:  # before reading a batch: a resume may start with the budget spent
            break
        batch, scale = next(batches)
        dark, bright, *render = batch
        schedule_lr(run)
        losses = train_step(run.trainer, dark, bright, weight, scale, *render)
        count_step(progress, losses, time.perf_counter() - tick)
        seen += len(dark)
        log_step(run, bar, losses, seen / (time.perf_counter() - start))
        checkpoint_step(run)
        timed_out = progress.step % cfg.log_every == 0 and out_of_time(run.group, progress, cfg)
        tick = time.perf_counter()  # logging and checkpoints are not training time
    return timed_out


def progress_bar(run: Training, epoch: int, steps: int) -> tqdm:
    """Rank 0's bar over the epoch's steps, from where a resumed epoch left off."""
    done = run.progress.step_in_epoch
    return tqdm(range(done, steps), total=steps, initial=done,
                desc=f"train {epoch + 1}/{run.cfg.epochs}", unit="step",
                disable=not run.group.main)  # fmt: skip


def schedule_lr(run: Training) -> None:
    """This step's learning rates: a function of the step (and time spent), not optimiser
    state, so a resumed run follows the same curve."""
    done = fraction_done(run.progress, run.total_steps, run.cfg)
    set_lr(run.trainer, run.cfg, lr_factor(run.cfg.lr_schedule, done))


def count_step(progress: Progress, losses: dict[str, float], seconds: float) -> None:
    """A step done: the counters, the training time (``train.max_minutes``), the epoch's sums."""
    progress.step += 1
    progress.step_in_epoch += 1
    progress.seconds += seconds
    for i, name in enumerate(LOSSES):
        progress.epoch_sums[i] += losses[name]


def log_step(run: Training, bar: tqdm, losses: dict[str, float], patches_s: float) -> None:
    """A step's losses on the bar and, every ``train.log_every`` steps, in the loss curves and
    in MLflow."""
    bar.set_postfix(d=f"{losses['d_loss']:.3f}", l1=f"{losses['l1']:.4f}",
                    patches_s=f"{patches_s:.0f}")  # fmt: skip
    step = run.progress.step
    if step % run.cfg.log_every == 0:
        run.progress.losses.append([step, *(losses[name] for name in LOSSES)])
        if mlflow := active_mlflow():
            mlflow.log_metrics(losses, step=step)


def checkpoint_step(run: Training) -> None:
    """Every ``train.checkpoint_every`` steps rank 0 saves a checkpoint: a kill loses less."""
    if run.progress.step % run.cfg.checkpoint_every == 0 and run.group.main:
        save_checkpoint(run.checkpoint, run.trainer, run.progress, run.key)


# The end of an epoch: validation, the best generator, the logs, a checkpoint ------------------


def end_epoch(run: Training, epoch: int, start: float) -> None:
    """The epoch's history row (validated on rank 0), the best generator so far, the epoch's
    logs, and a checkpoint that resumes at the next epoch."""
    progress = run.progress
    row = epoch_row(progress, epoch)
    if run.val is not None and run.group.main:
        row.update(validate_epoch(run, epoch))
    row["seconds"] = round(time.perf_counter() - start, 2)
    progress.history.append(row)
    keep_best(run, row)
    log_epoch(row, epoch, run.group.main)
    progress.epoch, progress.step_in_epoch, progress.epoch_sums = epoch + 1, 0, [0.0] * 3
    if run.group.main:
        save_checkpoint(run.checkpoint, run.trainer, progress, run.key)


def epoch_row(progress: Progress, epoch: int) -> dict:
    """The epoch's history row so far: its mean losses, its number and the step reached."""
    means = [total / max(progress.step_in_epoch, 1) for total in progress.epoch_sums]
    row = dict(zip(LOSSES, means, strict=True))
    row.update(epoch=epoch + 1, step=progress.step)
    return row


def validate_epoch(run: Training, epoch: int) -> dict[str, float]:
    """The generator's validation PSNR and SSIM after ``epoch``; its sample grid
    (``train.samples`` rows) in ``work_dir`` and MLflow."""
    trainer = run.trainer
    psnr, ssim, triples = validate(trainer.plain_generator, run.val, run.cfg.batch_size,
                                   trainer.device, run.mode, trainer.curve)  # fmt: skip
    if run.cfg.samples:
        sample = run.work_dir / "samples" / f"epoch_{epoch + 1:03d}.png"
        write_image(sample, sample_grid(triples[: run.cfg.samples]), "png")
        if mlflow := active_mlflow():
            mlflow.log_artifact(str(sample), "samples")
    return {"val_psnr": psnr, "val_ssim": ssim}


def keep_best(run: Training, row: dict) -> None:
    """Rank 0 saves the generator when its validation PSNR is the best yet (every epoch when
    there is no val split)."""
    improved = row.get("val_psnr", float("inf")) > run.progress.best_psnr or run.val is None
    if improved and run.group.main:
        run.progress.best_psnr = row.get("val_psnr", float("nan"))
        save_torch(run.trainer.plain_generator.state_dict(), run.work_dir / BEST)


def log_epoch(row: dict, epoch: int, main: bool) -> None:
    """The epoch's seconds and validation metrics in MLflow; its row in the log (rank 0)."""
    if mlflow := active_mlflow():
        epoch_metrics = {k: v for k, v in row.items() if k.startswith("val_")}
        mlflow.log_metrics({"epoch_seconds": row["seconds"], **epoch_metrics}, step=epoch + 1)
    if main:
        log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in row.items()})


def time_is_up(run: Training, epoch: int, timed_out: bool) -> bool:
    """``train.max_minutes`` is spent (``timed_out``: found so during the epoch): say so, and
    the training ends after this epoch."""
    if not (timed_out or out_of_time(run.group, run.progress, run.cfg)):
        return False
    log.info("train.max_minutes %s reached after %d steps (epoch %d)",
             run.cfg.max_minutes, run.progress.step, epoch + 1)  # fmt: skip
    return True


def active_mlflow() -> ModuleType | None:
    """``mlflow`` while a run is active (the stage starts one on rank 0), else None: ``fit``
    also trains untracked."""
    import mlflow  # on first use: importing it takes over a second

    return mlflow if mlflow.active_run() else None


def active_run_id() -> str:
    """The active MLflow run's id, recorded in the checkpoint; "" when untracked."""
    mlflow = active_mlflow()
    return mlflow.active_run().info.run_id if mlflow else ""
