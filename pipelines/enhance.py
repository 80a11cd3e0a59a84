"""The Kubeflow ``enhance`` pipeline: a folder of RAW files and JPEG/PNG photos, each through the
registered model of its kind (default: the champions of ``register``'s names, as ``lowlight
enhance`` chooses) or all through one, fanned out over shards, into ``<stem>_enhanced.png``
files and one Parquet manifest of ok and failed files, all in ``output``::

    list --(one enhance task per shard, dsl.ParallelFor)--> enhance x N --(dsl.Collected)-->
    collect (output/manifest.parquet and a Markdown summary)

``list`` pins each model to the version its alias names at the start, so every shard loads that
version even if the alias moves mid-run. Resources, retries, the config map and the secrets are
the training pipeline's (``pipeline.configure``); credentials are never parameters.
"""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent
from pydantic import ConfigDict, Field

from lowlight import cluster, storage
from lowlight import components as steps
from lowlight.config import InferConfig, MlflowConfig, Params, Section, check_gain
from lowlight.errors import ConfigError
from lowlight.pipelines.pipeline import RETRY, configure, without_nulls

NAME = "lowlight-enhance"
SECTIONS = ("infer", "mlflow")
REQUIRED = ("source", "output")


class Run(Section):
    """A run's parameters: the batch's own knobs plus params.yaml's ``infer`` and ``mlflow``
    sections, validated as one before anything runs (``check`` for what spans fields). Not
    params.yaml as a whole, whose ``model`` is the network's architecture."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    source: str = Field(
        "", description="folder of RAW files and JPEG/PNG photos: s3://BUCKET/PREFIX or a path"
    )
    output: str = Field("", description="folder for the enhanced PNGs and manifest.parquet")
    model: str = Field(
        "",
        description="models:/NAME@ALIAS or models:/NAME/VERSION for every "
        "file; empty: each file's kind to its model in `models`",
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="input mode (bayer, xtrans, rgb) -> models:/ URI: the model of each kind of "
        "file; a kind whose model is not registered fails its files, not the run",
    )
    ratio: str = Field("auto", description="RAW amplification: a number, or 'auto'")
    shards: int = Field(4, ge=1, description="enhance tasks, at most one per RAW file")
    infer: InferConfig = InferConfig()
    mlflow: MlflowConfig = MlflowConfig()


KNOBS = tuple(name for name in Run.model_fields if name not in SECTIONS)


def defaults(params: Params) -> dict:
    """The pipeline's parameters and their values from ``params`` (JSON types); each kind's
    model is the champion of its ``register`` name, as ``lowlight enhance`` takes it."""
    champions = {mode: f"models:/{name}@champion"
                 for mode, name in params.register_.by_input().items()}  # fmt: skip
    knobs = Run(models=champions).model_dump(mode="json", include=set(KNOBS))
    return {**knobs, **{section: without_nulls(params, section) for section in SECTIONS}}


def check(run: Run, params: Params) -> None:
    """What one field's model cannot say: the folders given and apart, the models registry
    URIs of known input modes, the ratio within ``convert.max_ratio``."""
    from lowlight.modes import KINDS
    from lowlight.stages import enhance_batch

    missing = [key for key in REQUIRED if not getattr(run, key)]
    if missing:
        needed = " and ".join(f"--param {key}=s3://BUCKET/FOLDER" for key in missing)
        raise ConfigError(f"the enhance pipeline needs {needed} (the RAW files and where the "
                          "results go)")  # fmt: skip
    storage.check_apart(run.output, (run.source,))
    if run.model:
        enhance_batch.parse_model_uri(run.model)
    elif not run.models:
        raise ConfigError("the enhance pipeline needs --param model=models:/NAME@ALIAS, or a "
                          "model per kind in models")  # fmt: skip
    for mode, uri in run.models.items():
        if mode not in KINDS:
            raise ConfigError(f"--param models.{mode}: not an input mode ({', '.join(KINDS)})")
        try:
            enhance_batch.parse_model_uri(uri)
        except ConfigError as exc:
            raise ConfigError(f"--param models.{mode}={uri}: {exc}") from None
    check_gain(enhance_batch.parse_ratio(run.ratio), params.convert.max_ratio, "--param ratio")


def build(params: Params) -> GraphComponent:
    """The pipeline with ``params`` as its parameters' defaults (``source`` and ``output`` have
    none: a run must name them)."""
    d = defaults(params)
    s3, both = (cluster.S3_SECRET,), (cluster.S3_SECRET, cluster.MLFLOW_SECRET)

    @dsl.pipeline(name=NAME, description="A folder of photos -> enhanced PNGs and a manifest")
    def lowlight_enhance(
        source: str,
        output: str,
        model: str = d["model"],
        models: dict = d["models"],
        ratio: str = d["ratio"],
        shards: int = d["shards"],
        infer: dict = d["infer"],
        mlflow: dict = d["mlflow"],
    ):
        # Every step reads or writes outside the pipeline root (the source, the output, the
        # registry's current alias): the cache must never skip one.
        list_task = steps.enhance_list(
            source=source,
            output=output,
            model=model,
            models=models,
            shards=shards,
            mlflow_params=mlflow,
        )
        configure(list_task, "list", both).set_retry(**RETRY).set_caching_options(False)
        plan = list_task.outputs["plan"]  # the files and the pinned model versions

        with dsl.ParallelFor(items=list_task.outputs["Output"], name="shards") as shard:
            shard_task = steps.enhance_shard(
                plan=plan,
                shard=shard,
                output=output,
                ratio=ratio,
                infer_params=infer,
                mlflow_params=mlflow,
            )
            configure(shard_task, "enhance", both).set_retry(**RETRY).set_caching_options(False)

        collect_task = steps.enhance_collect(
            plan=plan, rows=dsl.Collected(shard_task.outputs["rows"]), output=output
        )
        configure(collect_task, "collect", s3).set_retry(**RETRY).set_caching_options(False)

    return lowlight_enhance
