from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from lowlight.pipelines.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def convert(
    raw: Input[Dataset], convert_params: dict, shard: int, shards: int, converted: Output[Dataset]
):
    """Convert shard ``shard`` of ``shards`` of the RAW files (``lowlight convert --shard i/n``)."""
    from lowlight import stages
    from lowlight.config import ConvertConfig

    cfg = ConvertConfig.model_validate(convert_params)
    # Collected loop items may arrive as floats: shard numbers are integers.
    summary = stages.convert(cfg, raw.path, converted.path, shard=(int(shard), int(shards)))
    converted.metadata.update({k: v for k, v in summary.items() if k != "failed_files"})
