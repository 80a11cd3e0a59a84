from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def pair(
    raw: Input[Dataset],
    shards: Input[list[Dataset]],
    pair_params: dict,
    converted: Output[Dataset],
    pairs: Output[Dataset],
):
    """Gather the converted shards into one folder, then pair short with long exposures."""
    from lowlight import stages
    from lowlight.config import PairConfig

    converted.metadata.update(stages.convert.merge(converted.path, [s.path for s in shards]))
    cfg = PairConfig.model_validate(pair_params)
    pairs.metadata.update(stages.pair.run(cfg, converted.path, pairs.path, lists_dir=raw.path))
