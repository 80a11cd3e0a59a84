import hashlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lowlight.dataset import PatchStream, PatchTable, augment, to_tensor
from lowlight.modes import MODES
from lowlight.patches import PatchWriter, iter_patches


def make_parts(folder, count=90, row_group=7, size=8, same=False):
    rng = np.random.default_rng(1)
    dark = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    bright = dark.copy() if same else rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    starts = np.zeros((count, 2), np.int32)
    with PatchWriter(
        folder, MODES["rgb"].patch_spec(size, size), row_group, 4 * row_group
    ) as writer:
        writer.add("p", "s", 100.0, starts, dark, bright)
    return folder


def key(tensor: torch.Tensor) -> str:
    return hashlib.sha1(tensor.numpy().tobytes()).hexdigest()


def all_keys(folder):
    return sorted(key(to_tensor(b)) for _, b in iter_patches(folder))


@pytest.mark.parametrize("workers", [0, 2])
def test_every_patch_once_per_epoch_across_workers(tmp_path, workers):
    folder = make_parts(tmp_path)
    stream = PatchStream(folder, seed=0, shuffle_buffer=16, augment=False)
    loader = DataLoader(stream, batch_size=5, num_workers=workers)
    seen = sorted(key(b) for _, bright in loader for b in bright)
    assert seen == all_keys(folder) and len(seen) == 90


def test_ranks_and_workers_partition_the_epoch(tmp_path):
    folder = make_parts(tmp_path)
    seen = []
    for rank in range(2):
        stream = PatchStream(folder, seed=0, augment=False, rank=rank, world_size=2)
        seen += [
            key(b) for _, bright in DataLoader(stream, batch_size=4, num_workers=2) for b in bright
        ]
    assert sorted(seen) == all_keys(folder)


def test_shuffle_is_seeded_and_changes_with_the_epoch(tmp_path):
    folder = make_parts(tmp_path)

    def order(seed, epoch):
        stream = PatchStream(folder, seed=seed, shuffle_buffer=16, augment=False)
        stream.set_epoch(epoch)
        return [key(b) for _, b in stream]

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    assert sorted(order(0, 1)) == sorted(order(0, 0))


def test_augmentation_keeps_dark_and_bright_aligned(tmp_path):
    folder = make_parts(tmp_path, same=True)
    stream = PatchStream(folder, seed=0, shuffle_buffer=0, augment=True)
    originals = set(all_keys(folder))
    changed = 0
    for dark, bright in stream:
        assert torch.equal(dark, bright)
        changed += key(dark) not in originals
    assert changed > 45  # 7 of 8 flip/rotation combinations change a random patch


def test_augment_applies_the_same_transform():
    rng = np.random.default_rng(0)
    image = np.arange(4 * 4 * 3).reshape(4, 4, 3)
    for _ in range(10):
        a, b = augment(image, image + 1, rng)
        assert np.array_equal(a + 1, b)


def test_tensors_are_chw_floats_in_unit_range():
    image = np.full((4, 6, 3), 65535, np.uint16)
    image[0, 0] = 0
    tensor = to_tensor(image)
    assert tensor.shape == (3, 4, 6) and tensor.dtype == torch.float32
    assert tensor.max() == 1.0 and tensor.min() == 0.0


def test_table_reads_by_index_in_file_order(tmp_path):
    folder = make_parts(tmp_path, count=30)
    table = PatchTable(folder)
    assert len(table) == 30
    expected = [to_tensor(b) for _, b in iter_patches(folder)]
    assert all(torch.equal(table[i][1], expected[i]) for i in range(30))
    with pytest.raises(IndexError):
        table[30]
