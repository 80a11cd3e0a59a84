from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def enhance_shard(
    plan: Input[Dataset],
    shard: str,
    output: str,
    ratio: str,
    infer_params: dict,
    mlflow_params: dict,
    rows: Output[Dataset],
):
    """Enhance one ``i/n`` share of the planned files into ``output``; their rows as Parquet."""
    from lowlight import stages
    from lowlight.config import InferConfig, MlflowConfig

    summary = stages.enhance_batch.shard(
        plan.path,
        shard,
        output,
        ratio,
        InferConfig.model_validate(infer_params),
        MlflowConfig.model_validate(mlflow_params),
        rows.path,
    )
    rows.metadata.update(summary)
