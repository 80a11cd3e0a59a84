"""Run under torchrun by test_distributed.py: the training data path of one process, recorded.

Writes ``OUT/rank-R.json``: this process's batch count for the epoch, the steps every process
agrees on, and a digest of every patch it was given.
"""

import hashlib
import json
import sys
from pathlib import Path

from lowlight import distributed
from lowlight.config import TrainConfig
from lowlight.dataset import PatchStream
from lowlight.train import epoch_loader

patches, out, batch_size, workers = (
    sys.argv[1],
    Path(sys.argv[2]),
    int(sys.argv[3]),
    int(sys.argv[4]),
)
group = distributed.join("cpu")
cfg = TrainConfig(batch_size=batch_size, workers=workers, shuffle_buffer=16)
local = batch_size // group.world
stream = PatchStream(
    f"{patches}/train", 0, cfg.shuffle_buffer, rank=group.rank, world_size=group.world
)
stream.set_epoch(1)
batches = stream.batches(local, workers)
steps = distributed.all_max(group, batches)
seen = []
for _, bright in epoch_loader(stream, cfg, 0, 1, local):
    for b in bright:
        # augmentation flips/turns a patch: digest what survives it, the sorted pixel values
        seen.append(hashlib.sha256(b.flatten().sort().values.numpy().tobytes()).hexdigest())
record = {
    "rank": group.rank,
    "world": group.world,
    "batches": batches,
    "steps": steps,
    "seen": seen,
}
(out / f"rank-{group.rank}.json").write_text(json.dumps(record))
distributed.leave(group)
