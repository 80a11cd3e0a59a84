from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def convert(
    raw: Input[Dataset],
    convert_params: dict,
    model_params: dict,
    shard: int,
    shards: int,
    converted: Output[Dataset],
):
    """Convert shard ``shard`` of ``shards`` of the RAW files (``lowlight convert --shard i/n``)."""
    from lowlight import stages
    from lowlight.config import ConvertConfig, ModelConfig

    cfg = ConvertConfig.model_validate(convert_params)
    mode = ModelConfig.model_validate(model_params).input
    # Collected loop items may arrive as floats: shard numbers are integers.
    summary = stages.convert.run(cfg, raw.path, converted.path, (int(shard), int(shards)), mode)
    converted.metadata.update({k: v for k, v in summary.items() if k != "failed_files"})
