"""Kubeflow components, one per step: thin wrappers that call ``lowlight.stages``.

Each is a lightweight Python component run in the project's one image (infra/Dockerfile) with
``install_kfp_package=False``: nothing is pip-installed at run time (air-gapped clusters), and
``kfp.local.SubprocessRunner`` runs the very same functions on a laptop. Their bodies hold only
imports and calls: KFP ships a component's source, not its module.
"""

from lowlight.components.convert import convert
from lowlight.components.enhance_collect import enhance_collect
from lowlight.components.enhance_list import enhance_list
from lowlight.components.enhance_shard import enhance_shard
from lowlight.components.evaluate import evaluate
from lowlight.components.ingest import ingest
from lowlight.components.pair import pair
from lowlight.components.patch import patch
from lowlight.components.register import register
from lowlight.components.train import train
from lowlight.components.train_job import train_job

__all__ = ["ingest", "convert", "pair", "patch", "train", "train_job", "evaluate", "register",
           "enhance_list", "enhance_shard", "enhance_collect"]  # fmt: skip
