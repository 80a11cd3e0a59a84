from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from lowlight.pipelines.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def patch(
    pairs: Input[Dataset],
    converted: Input[Dataset],
    patch_params: dict,
    seed: int,
    patches: Output[Dataset],
):
    """Cut the train/val pairs into overlapping patches (Parquet parts)."""
    from lowlight import stages
    from lowlight.config import PatchConfig

    cfg = PatchConfig.model_validate(patch_params)
    summary = stages.patch(cfg, pairs.path, patches.path, int(seed), images=converted.path)
    patches.metadata.update(summary)
