from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from lowlight.cluster import IMAGE


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
    mode = ModelConfig.model_validate(model_params).input
    summary = stages.patch.run(cfg, pairs.path, patches.path, int(seed), converted.path, mode)
    patches.metadata.update(summary)
