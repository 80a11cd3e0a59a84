from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from lowlight.pipelines.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def patch(
    pairs: Input[Dataset],
    converted: Input[Dataset],
    patch_params: dict,
    model_params: dict,
    seed: int,
    patches: Output[Dataset],
):
    """Cut the train/val pairs into overlapping patches (Parquet parts)."""
    from lowlight import stages
    from lowlight.config import ModelConfig, PatchConfig

    cfg = PatchConfig.model_validate(patch_params)
    packed = ModelConfig.model_validate(model_params).input == "bayer"
    summary = stages.patch(cfg, pairs.path, patches.path, int(seed), converted.path, packed)
    patches.metadata.update(summary)
