from kfp import dsl
from kfp.dsl import Dataset, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def enhance_list(
    source: str,
    output: str,
    model: str,
    models: dict,
    shards: int,
    mlflow_params: dict,
    plan: Output[Dataset],
) -> list:
    """List the files under ``source`` and pin ``model`` (every file), or else each kind's model
    in ``models``, to the version it names now, into ``plan`` (every shard enhances its share of
    those files with those versions); the shards as ``i/n``. (The versions travel in ``plan``,
    not as parameters: kfp.local hands a loop's tasks the loop item for every parameter of the
    task that made the items.)"""
    from lowlight import stages
    from lowlight.config import MlflowConfig

    mlflow_cfg = MlflowConfig.model_validate(mlflow_params)
    result = stages.enhance_batch.plan(source, output, model, models, mlflow_cfg, shards, plan.path)
    plan.metadata.update({"files": result["files"], "model": result["model"]})
    return result["shards"]
