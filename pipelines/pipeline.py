"""The Kubeflow pipeline: ingest -> convert (one task per shard) -> pair -> patch -> train ->
evaluate -> register (only when the model passes the gate).

Its parameters mirror params.yaml: one dict per section (``convert``, ``train``, ...) whose
defaults are the params file's values at compile time, plus the cluster's own knobs (where the
RAW data is, how many convert shards, how many GPUs). Credentials never travel as parameters:
every step that talks to S3 or MLflow reads them from Kubernetes secrets (``cluster.SECRETS``).
"""

from typing import Any

from kfp import dsl, kubernetes
from kfp.dsl import PipelineTask
from kfp.dsl.graph_component import GraphComponent
from pydantic import ConfigDict, Field

from lowlight import cluster
from lowlight import components as steps
from lowlight.config import DataConfig, Params
from lowlight.errors import ConfigError

NAME = "lowlight"
SECTIONS = ("convert", "pair", "patch", "model", "train", "infer", "evaluate", "register", "mlflow")
# Retries for the steps that read the object store, whose failures are mostly transient.
RETRY = {"num_retries": 2, "backoff_duration": "60s", "backoff_factor": 2.0}
# cpu request, memory request, memory limit per step (full-size SID frames are ~12 MP).
RESOURCES = {
    "ingest": ("1", "1G", "4G"),
    "convert": ("2", "4G", "8G"),
    "pair": ("1", "2G", "8G"),
    "patch": ("2", "4G", "8G"),
    "train": ("4", "16G", "32G"),
    "train_job": ("1", "1G", "4G"),  # only creates the PyTorchJob and waits for it
    "evaluate": ("4", "8G", "16G"),
    "register": ("1", "2G", "4G"),
    # the enhance pipeline (pipelines/enhance.py)
    "list": ("1", "1G", "2G"),
    "enhance": ("4", "8G", "16G"),
    "collect": ("1", "1G", "4G"),
}


class Run(Params):
    """params.yaml plus the cluster's own knobs: a run's parameters, validated as one by the
    very models of params.yaml, so a bad ``--param`` is refused before anything runs."""

    # a git revision or a node label may look like a number: it is still a string
    model_config = ConfigDict(coerce_numbers_to_str=True)

    source: str = Field(DataConfig().raw_dir, min_length=1, description="the RAW folder")
    dvc_repo: str = ""
    dvc_rev: str = ""
    shards: int = Field(4, ge=1, description="convert tasks, at most one per RAW file")
    gpus: int = Field(1, ge=0, description="GPUs per train pod; 0 = CPU only")
    nodes: int = Field(2, ge=1, description="pods of the distributed PyTorchJob")
    job_output: str = "s3://lowlight/jobs"
    accelerator: str = cluster.ACCELERATOR
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []


KNOBS = tuple(name for name in Run.model_fields if name not in Params.model_fields)


def defaults(params: Params) -> dict:
    """The pipeline's parameters and their values from ``params`` (JSON types)."""
    knobs = Run(source=params.data.raw_dir).model_dump(mode="json", include=set(KNOBS))
    values = {section: without_nulls(params, section) for section in SECTIONS}
    return {**knobs, "seed": params.seed, **values}


def without_nulls(params: Params, section: str) -> dict:
    """A section as a pipeline parameter: KFP has no null, so null keys are left out, which
    is the same section as long as null is the key's default (checked)."""
    values = params.model_dump(mode="json", by_alias=True)[section]
    kept = {key: value for key, value in values.items() if value is not None}
    current = getattr(params, "register_" if section == "register" else section)
    if type(current).model_validate(kept) != current:
        dropped = sorted(set(values) - set(kept))
        raise ConfigError(f"{section}: null values of {dropped} cannot be pipeline parameters")
    return kept


def configure(task: PipelineTask, step: str, secrets: tuple[str, ...] = ()) -> PipelineTask:
    """Resources, the cluster config map and the named secrets as environment variables."""
    cpu, memory, memory_limit = RESOURCES[step]
    task.set_display_name(step.removesuffix("_job"))
    task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory_limit)
    kubernetes.use_config_map_as_env(
        task, cluster.CONFIG_MAP, {key: key for key in cluster.CONFIG_ENV}
    )
    for name in secrets:
        # optional: IAM roles for service accounts need no keys, a local MLflow no password.
        keys = {key: key for key in cluster.SECRETS[name]}
        kubernetes.use_secret_as_env(task, name, keys, optional=True)
    return task


def build(params: Params, image: str = cluster.IMAGE, distributed: bool = False) -> GraphComponent:
    """The pipeline with ``params`` as its parameters' defaults.

    ``distributed``: train runs as a PyTorchJob of ``nodes`` pods x ``gpus`` GPUs (Kubeflow
    Training Operator) created and awaited by the step, its pods in ``image``; otherwise (the
    default) in the step's own pod. ``nodes`` and ``job_output`` matter only then.
    """
    d = defaults(params)
    s3, both = (cluster.S3_SECRET,), (cluster.S3_SECRET, cluster.MLFLOW_SECRET)

    @dsl.pipeline(name=NAME, description="RAW low-light photos -> a registered enhancement model")
    def lowlight(
        source: str = d["source"],
        dvc_repo: str = d["dvc_repo"],
        dvc_rev: str = d["dvc_rev"],
        shards: int = d["shards"],
        gpus: int = d["gpus"],
        nodes: int = d["nodes"],
        job_output: str = d["job_output"],
        accelerator: str = d["accelerator"],
        node_selector: dict = d["node_selector"],
        tolerations: list = d["tolerations"],
        seed: int = d["seed"],
        convert: dict = d["convert"],
        pair: dict = d["pair"],
        patch: dict = d["patch"],
        model: dict = d["model"],
        train: dict = d["train"],
        infer: dict = d["infer"],
        evaluate: dict = d["evaluate"],
        register: dict = d["register"],
        mlflow: dict = d["mlflow"],
    ):
        ingest_task = steps.ingest(source=source, dvc_repo=dvc_repo, dvc_rev=dvc_rev, shards=shards)
        configure(ingest_task, "ingest", s3).set_retry(**RETRY)
        raw = ingest_task.outputs["raw"]

        with dsl.ParallelFor(items=ingest_task.outputs["Output"], name="shards") as shard:
            convert_task = steps.convert(
                raw=raw, convert_params=convert, model_params=model, shard=shard
            )
            configure(convert_task, "convert", s3).set_retry(**RETRY)

        pair_task = steps.pair(
            raw=raw, shards=dsl.Collected(convert_task.outputs["converted"]), pair_params=pair
        )
        configure(pair_task, "pair")
        converted = pair_task.outputs["converted"]

        patch_task = steps.patch(
            pairs=pair_task.outputs["pairs"],
            converted=converted,
            patch_params=patch,
            model_params=model,
            seed=seed,
        )
        configure(patch_task, "patch")

        # A compile-time choice, not dsl.If/Else: joining two branches' models needs
        # dsl.OneOf, which kfp.local cannot run, and run-local must run this very pipeline.
        if distributed:
            train_task = steps.train_job(
                patches=patch_task.outputs["patches"],
                model_params=model,
                train_params=train,
                mlflow_params=mlflow,
                seed=seed,
                nodes=nodes,
                gpus_per_node=gpus,
                output=job_output,
                image=image,
                cluster_names={
                    "service_account": cluster.SERVICE_ACCOUNT,
                    "config_map": cluster.CONFIG_MAP,
                    "secrets": list(cluster.SECRETS),
                    "gpu_resource": cluster.ACCELERATOR,
                },
            )
            configure(train_task, "train_job", both)
        else:
            train_task = steps.train(
                patches=patch_task.outputs["patches"],
                model_params=model,
                train_params=train,
                mlflow_params=mlflow,
                seed=seed,
            )
            configure(train_task, "train", both)
            # gpus = 0 is a CPU-only run: KFP adds no accelerator limit for a count of 0.
            train_task.set_accelerator_type(accelerator).set_accelerator_limit(gpus)
            kubernetes.add_node_selector_json(train_task, node_selector)
            kubernetes.add_toleration_json(train_task, tolerations)

        evaluate_task = steps.evaluate(
            model=train_task.outputs["model"],
            pairs=pair_task.outputs["pairs"],
            converted=converted,
            evaluate_params=evaluate,
            infer_params=infer,
            register_params=register,
            mlflow_params=mlflow,
        )
        # The gate reads the registry's current champion: never reuse a cached answer.
        configure(evaluate_task, "evaluate", both).set_caching_options(False)

        # The gate is evaluate's return value ("Output"): kfp.local resolves a condition only on
        # that, not on a named output of a NamedTuple.
        with dsl.If(evaluate_task.outputs["Output"] == True, name="gate-passed"):  # noqa: E712
            register_task = steps.register(
                model=train_task.outputs["model"],
                reports=evaluate_task.outputs["reports"],
                register_params=register,
                infer_params=infer,
                convert_params=convert,
                mlflow_params=mlflow,
            )
            configure(register_task, "register", both).set_caching_options(False)

    return lowlight
