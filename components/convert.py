from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def convert(
    raw: Input[Dataset],
    convert_params: dict,
    model_params: dict,
    shard: str,
    converted: Output[Dataset],
):
    """Convert shard ``i/n`` of the RAW files (``lowlight convert --shard i/n``)."""
    from lowlight import stages
    from lowlight.config import ConvertConfig, ModelConfig
    from lowlight.conversion import parse_shard

    cfg = ConvertConfig.model_validate(convert_params)
    mode = ModelConfig.model_validate(model_params).input
    summary = stages.convert.run(cfg, raw.path, converted.path, parse_shard(shard), mode)
    converted.metadata.update({k: v for k, v in summary.items() if k != "failed_files"})
