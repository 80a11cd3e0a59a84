"""Data-parallel training under ``torchrun``: the process group, ranks, and the collectives.

``lowlight train`` started by ``torchrun --nproc_per_node=N`` (or a PyTorchJob) finds
``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in its environment and joins the group: NCCL on GPUs,
gloo on CPUs. A plain ``lowlight train`` is a group of one and never touches torch.distributed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, outputs and MLflow records."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def join(device: str) -> Group:
    """The group this process belongs to, initialising it when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group()
    if not dist.is_initialized():
        cuda = device != "cpu" and torch.cuda.is_available()
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and device != "cpu":
        torch.cuda.set_device(local_rank)
    return Group(dist.get_rank(), dist.get_world_size(), local_rank)


def leave(group: Group) -> None:
    if group.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def joined(device: str) -> Iterator[Group]:
    """``join`` for the block, then ``leave`` (also when it fails)."""
    group = join(device)
    try:
        yield group
    finally:
        leave(group)


def all_max(group: Group, value: int) -> int:
    """The largest ``value`` over all processes (every process gets it)."""
    if not group.active:
        return value
    tensor = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def broadcast_text(group: Group, text: str) -> str:
    """Rank 0's ``text`` on every process (e.g. the MLflow run id)."""
    if not group.active:
        return text
    box = [text]
    dist.broadcast_object_list(box, src=0)
    return box[0]
