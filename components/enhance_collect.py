from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def enhance_collect(
    plan: Input[Dataset], rows: Input[list[Dataset]], output: str, summary: Output[Markdown]
) -> str:
    """Merge the shards' rows into ``<output>/manifest.parquet``; its location."""
    from lowlight import stages

    parts = [r.path for r in rows]
    result = stages.enhance_batch.collect(plan.path, parts, output, summary.path)
    summary.metadata.update(result)
    return result["manifest"]
