"""Compile the pipeline to IR YAML, run it on this machine, or submit it to a cluster."""

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
from lowlight.pipelines import pipeline

TOKEN_ENV = "KF_PIPELINES_TOKEN"


class PipelineError(LowlightError):
    """The pipeline could not be compiled, run or submitted."""


def arguments(params: Params, overrides: list[str]) -> dict:
    """Pipeline arguments: ``params`` plus ``KEY=VALUE`` overrides (``train.epochs=50``,
    ``source=s3://bucket/raw``); values are YAML, and every one is validated (``pipeline.Run``,
    params.yaml's models) before anything is compiled, submitted or run."""
    full = params.model_dump(mode="json", by_alias=True)
    # sections with their null keys, so that those take a value too (train.max_minutes=30)
    args = {**pipeline.defaults(params), **{s: full[s] for s in pipeline.SECTIONS}}
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
    try:
        run = pipeline.Run.model_validate({**full, **args})
    except ValidationError as exc:
        raise ConfigError(describe(exc, "--param")) from None
    values = run.model_dump(mode="json", include={*pipeline.KNOBS, "seed"})
    return {**values, **{s: pipeline.without_nulls(run, s) for s in pipeline.SECTIONS}}


def compile_pipeline(
    params: Params, out: Path, image: str = cluster.IMAGE, distributed: bool = False
) -> dict:
    """Write the pipeline's IR YAML to ``out`` with every step in ``image`` (``distributed``:
    train as a PyTorchJob, see ``pipeline.build``)."""
    from kfp import compiler

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline.build(params, image, distributed), str(raw))
        docs = list(yaml.safe_load_all(raw.read_text()))
    executors = docs[0]["deploymentSpec"]["executors"]
    for executor in executors.values():
        executor["container"]["image"] = image
    text = yaml.safe_dump_all(docs, sort_keys=False)
    tmp_out = out.with_name(f".{out.name}.tmp")
    tmp_out.write_text(text)
    os.replace(tmp_out, out)
    return {
        "pipeline": docs[0]["pipelineInfo"]["name"],
        "components": len(docs[0]["components"]),
        "image": image,
        "train": "PyTorchJob" if distributed else "one pod",
        "parameters": len(docs[0]["root"]["inputDefinitions"]["parameters"]),
        "out": str(out),
    }


def run_local(params: Params, work: Path, overrides: list[str] = ()) -> dict:
    """Synthesize a tiny SID-like dataset and run the whole pipeline on it with
    ``kfp.local.SubprocessRunner`` (each step a local process, artifacts under ``work``)."""
    from kfp import local

    from lowlight import registry, stages, tracking

    work = Path(work).resolve()
    synthetic = work / "synthetic"
    # every --param is checked before anything is written or run
    args = arguments(params, [f"source={synthetic / 'Sony'}", "gpus=0", "shards=2", *overrides])
    stages.synth.run(params.synth, synthetic, params.seed)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(work / "pipeline_root"),
        raise_on_error=True,
    )
    try:
        with warnings.catch_warnings():
            # resources, retries' pod settings and secrets are the cluster's business
            warnings.filterwarnings("ignore", message=".*no effect in the current local runner")
            pipeline.build(params)(**args)
    except RuntimeError as exc:
        raise PipelineError(f"local pipeline run failed: {exc}") from None
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
