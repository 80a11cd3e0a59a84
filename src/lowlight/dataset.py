"""Torch datasets over the patch Parquet parts: a streaming one for training, a map-style one
for validation. Both read only the row groups they need, never whole files."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from lowlight import imageio, modes, patches, storage

# (dark, bright), and for a mode that renders (lowlight.modes) the pair's 12 rendering floats
Sample = tuple[torch.Tensor, ...]


def to_tensor(image: np.ndarray, encoding: str = "") -> torch.Tensor:
    """HxWxC uint8/uint16 -> CxHxW float32 in [0, 1], or with ``encoding`` imageio.SIGNED16
    (packed Bayer patches) in [-1, 1]: read noise below black stays negative."""
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    if encoding == imageio.SIGNED16:
        return torch.from_numpy(imageio.decode_signed16(chw))
    if encoding:
        raise ValueError(f"unknown pixel encoding {encoding!r}")
    return torch.from_numpy(chw).float().div_(float(np.iinfo(image.dtype).max))


def augment(dark: np.ndarray, bright: np.ndarray, rng: np.random.Generator, *rest) -> tuple:
    """The same random rot90 and horizontal flip for both images, so they stay aligned."""
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    dark, bright = np.rot90(dark, turns), np.rot90(bright, turns)
    if flip:
        dark, bright = dark[:, ::-1], bright[:, ::-1]
    return dark, bright, *rest


def row_group_items(group: patches.RowGroup, spec: patches.PatchSpec) -> list[tuple]:
    """A row group's patches as (dark, bright) or, when the spec renders, (dark, bright, render)."""
    dark, bright, table = patches.read_row_group(group, spec)
    if spec.render:
        return list(zip(dark, bright, patches.read_renders(table), strict=True))
    return list(zip(dark, bright, strict=True))


def to_sample(item: tuple, dark_encoding: str = "") -> Sample:
    """A patch's arrays as tensors; the dark one decoded as its spec's ``dark_encoding`` says."""
    return (
        to_tensor(item[0], dark_encoding),
        to_tensor(item[1]),
        *(torch.from_numpy(np.array(x)) for x in item[2:]),
    )


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class PatchStream(IterableDataset):
    """Training patches, streamed row group by row group.

    Row groups are dealt round-robin to (rank, DataLoader worker) after a permutation seeded by
    (seed, epoch), so across all processes and workers each patch is read once per epoch.
    Patches are shuffled through a bounded buffer and augmented; call ``set_epoch`` each epoch.
    """

    def __init__(
        self,
        folder: storage.Location,
        seed: int,
        shuffle_buffer: int = 2048,
        augment: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.spec, self.groups = patches.scan(folder)
        # Flips and quarter turns only where the mode allows them (not a packed Bayer mosaic).
        augment = augment and modes.get(self.spec.input).augmentable
        self.seed, self.shuffle_buffer, self.augment = seed, shuffle_buffer, augment
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:  # patches in all shards together
        return sum(g.rows for g in self.groups)

    def shard(self) -> tuple[int, list[patches.RowGroup]]:
        """(shard id, the row groups this process and worker read this epoch)."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        return self.shard_of(worker, workers)

    def shard_of(self, worker: int, workers: int) -> tuple[int, list[patches.RowGroup]]:
        rank, world = distributed_rank()
        rank = self.rank if self.rank is not None else rank
        world = self.world_size if self.world_size is not None else world
        shard_id, shards = rank * workers + worker, world * workers
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.groups))
        return shard_id, [self.groups[i] for i in order[shard_id::shards]]

    def batches(self, batch_size: int, workers: int) -> int:
        """Batches this process's DataLoader yields this epoch (each worker batches its own
        shard, the last batch of each short)."""
        workers = max(workers, 1)
        rows = [sum(g.rows for g in self.shard_of(w, workers)[1]) for w in range(workers)]
        return sum(-(-n // batch_size) for n in rows)

    def __iter__(self) -> Iterator[Sample]:
        shard_id, groups = self.shard()
        rng = np.random.default_rng([self.seed, self.epoch, shard_id])
        buffer: list[tuple] = []
        for group in groups:
            for item in row_group_items(group, self.spec):
                if len(buffer) < self.shuffle_buffer:
                    buffer.append(item)
                    continue
                if buffer:  # swap the new patch into a random slot, yield the old one
                    slot = int(rng.integers(len(buffer)))
                    buffer[slot], item = item, buffer[slot]
                yield self._prepare(item, rng)
        rng.shuffle(buffer)
        for item in buffer:
            yield self._prepare(item, rng)

    def _prepare(self, item: tuple, rng: np.random.Generator) -> Sample:
        item = augment(item[0], item[1], rng, *item[2:]) if self.augment else item
        return to_sample(item, self.spec.dark_encoding)


class PatchTable(Dataset):
    """Validation patches by index, in file order, without augmentation.

    Keeps the last few decoded row groups, so a sequential pass reads each row group once.
    """

    def __init__(self, folder: storage.Location, cache_groups: int = 2):
        self.spec, self.groups = patches.scan(folder)
        self.starts = np.cumsum([0] + [g.rows for g in self.groups]).tolist()
        self.cache_groups = cache_groups
        self._cache: OrderedDict[int, list[tuple]] = OrderedDict()

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(index)
        group = bisect.bisect_right(self.starts, index) - 1
        return to_sample(self._group(group)[index - self.starts[group]], self.spec.dark_encoding)

    def _group(self, group: int) -> list[tuple]:
        if group not in self._cache:
            self._cache[group] = row_group_items(self.groups[group], self.spec)
            while len(self._cache) > self.cache_groups:
                self._cache.popitem(last=False)
        self._cache.move_to_end(group)
        return self._cache[group]
