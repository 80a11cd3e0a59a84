"""The pipeline's stages, one wiring module each, shared by the CLI, dvc.yaml (through the CLI)
and the Kubeflow components: synth, convert, pair, patch, train, evaluate, register (plus
ingest and train_job for Kubeflow, enhance for photographers, enhance_batch for Kubeflow's
enhance pipeline).

Each module's ``run`` takes its validated config section plus input and output locations,
calls the domain code, writes the outputs and returns a small summary dict. Modules load on
first use (``stages.convert.run(...)``), so a stage imports its own wiring and no other's.
"""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES = (
    "ingest",
    "synth",
    "convert",
    "pair",
    "patch",
    "train",
    "train_job",
    "evaluate",
    "register",
    "enhance",
    "enhance_batch",
)


def __getattr__(name: str) -> ModuleType:
    if name in NAMES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
