"""Compile a pipeline to IR YAML, run it on this machine, or submit it to a cluster: ``train``
(pipeline.py, the default) or ``enhance`` (enhance.py)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import yaml
from pydantic import ValidationError

from lowlight import cluster
from lowlight.config import Params, describe, read_yaml, validate
from lowlight.errors import ConfigError, LowlightError, scrub
from lowlight.pipelines import enhance, pipeline

TOKEN_ENV = "KF_PIPELINES_TOKEN"
PIPELINES = {"train": pipeline, "enhance": enhance}


class PipelineError(LowlightError):
    """The pipeline could not be compiled, run or submitted."""


def module(name: str):
    """The pipeline module called ``name`` (``--pipeline``)."""
    if name not in PIPELINES:
        raise ConfigError(f"--pipeline {name!r}: expected one of {', '.join(PIPELINES)}")
    return PIPELINES[name]


def arguments(params: Params, overrides: list[str], name: str = "train") -> dict:
    """Pipeline arguments: ``params`` plus ``KEY=VALUE`` overrides (``train.epochs=50``,
    ``source=s3://bucket/raw``); values are YAML, and every one is validated (the pipeline's
    ``Run``, params.yaml's models) before anything is compiled, submitted or run."""
    spec = module(name)
    full = params.model_dump(mode="json", by_alias=True)
    # sections with their null keys, so that those take a value too (train.max_minutes=30)
    args = {**spec.defaults(params), **{s: full[s] for s in spec.SECTIONS}}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        value = read_yaml(text, f"--param {key}") if text else ""
        section, _, name = key.partition(".")
        if section not in args:
            raise ConfigError(f"--param {key}: unknown parameter; known: {', '.join(args)}")
        if name:
            if not isinstance(args[section], dict) or name not in args[section]:
                raise ConfigError(f"--param {key}: '{section}' has no key '{name}'")
            args[section] = {**args[section], name: value}
        else:
            args[section] = value
    # train's Run is params.yaml plus its knobs; enhance's holds only its own sections
    base = full if issubclass(spec.Run, Params) else {}
    try:
        run = spec.Run.model_validate({**base, **args})
    except ValidationError as exc:
        raise ConfigError(describe(exc, "--param")) from None
    if spec is enhance:
        enhance.check(run, params)
    values = run.model_dump(mode="json", include=set(args) - set(spec.SECTIONS))
    return {**values, **{s: pipeline.without_nulls(run, s) for s in spec.SECTIONS}}


def compile_pipeline(
    params: Params,
    out: Path,
    image: str = cluster.IMAGE,
    distributed: bool = False,
    name: str = "train",
) -> dict:
    """Write pipeline ``name``'s IR YAML to ``out`` with every step in ``image``
    (``distributed``: train as a PyTorchJob, see ``pipeline.build``)."""
    from kfp import compiler

    if module(name) is enhance and distributed:
        raise ConfigError("--distributed: only the train pipeline trains; leave it out")
    built = pipeline.build(params, image, distributed) if name == "train" else enhance.build(params)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(built, str(raw))
        docs = list(yaml.safe_load_all(raw.read_text()))
    executors = docs[0]["deploymentSpec"]["executors"]
    for executor in executors.values():
        executor["container"]["image"] = image
    text = yaml.safe_dump_all(docs, sort_keys=False)
    tmp_out = out.with_name(f".{out.name}.tmp")
    tmp_out.write_text(text)
    os.replace(tmp_out, out)
    train = {"train": "PyTorchJob" if distributed else "one pod"} if name == "train" else {}
    return {
        "pipeline": docs[0]["pipelineInfo"]["name"],
        "components": len(docs[0]["components"]),
        "image": image,
        **train,
        "parameters": len(docs[0]["root"]["inputDefinitions"]["parameters"]),
        "out": str(out),
    }


def run_local(params: Params, work: Path, overrides: list[str] = (), name: str = "train") -> dict:
    """Run pipeline ``name`` with ``kfp.local.SubprocessRunner`` (each step a local process,
    artifacts under ``work``): train on a tiny SID-like dataset synthesized there, or enhance
    the ``source`` and ``output`` that ``overrides`` name."""
    from lowlight import registry, stages, tracking

    work = Path(work).resolve()
    if module(name) is enhance:
        return run_local_enhance(params, work, overrides)
    synthetic = work / "synthetic"
    # every --param is checked before anything is written or run
    args = arguments(params, [f"source={synthetic / 'Sony'}", "gpus=0", "shards=2", *overrides])
    stages.synth.run(params.synth, synthetic, params.seed)
    _run_locally(pipeline.build(params), args, work)
    uri = tracking.tracking_uri(validate({"mlflow": args["mlflow"]}, "--param").mlflow)
    name = args["register"]["model_name"]
    c = registry.client(uri)
    with registry.registry_errors(uri):
        aliases = registry.aliases_by_version(c, name) if _registered(c, name) else {}
    return {
        "pipeline_root": str(work / "pipeline_root"),
        "registered_versions": len(aliases),
        "aliases": json.dumps(aliases),
        "tracking_uri": scrub(uri),
    }


def run_local_enhance(params: Params, work: Path, overrides: list[str]) -> dict:
    """The enhance pipeline here; its summary read back from the manifest it wrote."""
    import pyarrow.parquet as pq

    from lowlight import conversion, storage
    from lowlight.config import MlflowConfig
    from lowlight.stages import enhance_batch

    args = arguments(params, list(overrides), "enhance")
    # what the list step would retry for minutes (a model or folder that is not there) is
    # said at once
    conversion.list_raw_files(args["source"])
    pinned = enhance_batch.pin_models(args["model"], args["models"],
                                      MlflowConfig.model_validate(args["mlflow"]))  # fmt: skip
    _run_locally(enhance.build(params), args, work)
    manifest = storage.join(args["output"], enhance_batch.MANIFEST)
    fs, path = storage.resolve(manifest)
    rows = pq.read_table(path, filesystem=fs).to_pylist()
    failed = [f"{row['error']}" for row in rows if row["status"] == enhance_batch.FAILED]
    return {
        "pipeline_root": str(work / "pipeline_root"),
        "model": enhance_batch.describe_models(pinned),
        "files": len(rows),
        "enhanced": len(rows) - len(failed),
        "failed": len(failed),
        "manifest": str(manifest),
        "failed_files": failed,
    }


def _run_locally(component, args: dict, work: Path) -> None:
    """Run a built pipeline with ``args``, every step a local process, artifacts in ``work``."""
    from kfp import local

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(work / "pipeline_root"),
        raise_on_error=True,
    )
    try:
        with warnings.catch_warnings():
            # resources, retries' pod settings and secrets are the cluster's business
            warnings.filterwarnings("ignore", message=".*no effect in the current local runner")
            component(**args)
    except RuntimeError as exc:
        raise PipelineError(f"local pipeline run failed: {exc}") from None


def _registered(c, name: str) -> bool:
    return bool(c.search_registered_models(f"name='{name}'"))


def submit(
    package: Path,
    host: str,
    args: dict,
    experiment: str,
    namespace: str | None = None,
    run_name: str | None = None,
    service_account: str = cluster.SERVICE_ACCOUNT,
) -> dict:
    """Start a run of the compiled ``package`` on the Kubeflow Pipelines at ``host``.

    The bearer token (if the cluster needs one) comes from ``KF_PIPELINES_TOKEN``.
    """
    import kfp
    import urllib3
    from kfp_server_api.exceptions import ApiException

    # urllib3 logs every retry of an unreachable host; the one error below says it all.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0b2"
            client = kfp.Client(
                host=host, existing_token=os.environ.get(TOKEN_ENV), namespace=namespace
            )
        run = client.create_run_from_pipeline_package(
            str(package),
            arguments=args,
            run_name=run_name,
            experiment_name=experiment,
            namespace=namespace,
            service_account=service_account or None,
        )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise PipelineError(f"cannot reach Kubeflow Pipelines at {host}: {exc}") from None
    except ApiException as exc:
        raise PipelineError(
            f"Kubeflow Pipelines at {host} refused the run ({exc.status} {exc.reason}); "
            f"a multi-user cluster needs {TOKEN_ENV} and --namespace"
        ) from None
    return {
        "run_id": run.run_id,
        "experiment": experiment,
        "url": f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
    }
