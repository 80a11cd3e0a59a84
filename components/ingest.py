from kfp import dsl
from kfp.dsl import Dataset, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(source: str, dvc_repo: str, dvc_rev: str, shards: int, raw: Output[Dataset]) -> list:
    """Bring the RAW folder in (s3://, local path, or a DVC repo at a git rev); list the shards
    as ``i/n`` with n at most one per RAW file, so that every convert task knows the real n."""
    from lowlight import stages

    summary = stages.ingest.run(source, raw.path, repo=dvc_repo or None, rev=dvc_rev or None)
    raw.metadata.update(summary)
    count = max(1, min(int(shards), summary["raw_files"]))
    return [f"{i}/{count}" for i in range(count)]
