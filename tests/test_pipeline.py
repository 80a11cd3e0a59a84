"""The Kubeflow pipelines (train, enhance) compiled to IR: steps, fan-out, GPU request, secrets,
parameters."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

from lowlight import cluster, components
from lowlight.config import InferConfig, Params
from lowlight.errors import ConfigError, LowlightError
from lowlight.pipelines import pipeline, runner
from tests.conftest import one_line_error

STEPS = ["ingest", "convert", "pair", "patch", "train", "evaluate", "register"]


@pytest.fixture(scope="module")
def ir(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("ir") / "pipeline.yaml"
    summary = runner.compile_pipeline(Params(), out, "registry.example/lowlight:9")
    assert summary["image"] == "registry.example/lowlight:9"
    spec, platform = yaml.safe_load_all(out.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_every_step_is_a_component_in_the_one_image(ir):
    spec, _ = ir
    for step in STEPS:
        assert f"comp-{step}" in spec["components"]
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"registry.example/lowlight:9"}
    for executor in executors.values():
        command = " ".join(executor["container"]["command"])
        assert "pip install" not in command  # air-gapped: kfp is baked into the image
        assert "stages." in command


def test_components_are_thin_wrappers_around_stages():
    for step in STEPS:
        source = inspect.getsource(getattr(components, step).python_func)
        body = [line for line in source.splitlines() if line.strip()]
        assert "stages." in source
        assert len(body) < 50, f"{step} is not a thin wrapper"


def test_convert_fans_out_over_shards_and_pair_collects_them(ir):
    spec, _ = ir
    tasks = spec["root"]["dag"]["tasks"]
    loop = next(t for name, t in tasks.items() if name.startswith("for-loop"))
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("ingest-Output")
    loop_tasks = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(loop_tasks) == ["convert"]
    shards_input = tasks["pair"]["inputs"]["artifacts"]["shards"]
    assert "convert" in str(shards_input)  # the collected outputs of every convert task
    assert spec["components"]["comp-pair"]["inputDefinitions"]["artifacts"]["shards"][
        "isArtifactList"
    ]


def test_register_runs_only_when_the_gate_passes(ir):
    spec, _ = ir
    tasks = spec["root"]["dag"]["tasks"]
    condition = next(t for name, t in tasks.items() if name.startswith("condition"))
    assert "evaluate-Output" in condition["triggerPolicy"]["condition"]
    inner = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert list(inner) == ["register"]
    assert "register" not in tasks


def test_train_requests_gpus_from_parameters(ir):
    spec, platform = ir
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    accelerator = resources["accelerator"]
    assert "pipelinechannel--gpus" in accelerator["resourceCount"]
    assert "pipelinechannel--accelerator" in accelerator["resourceType"]
    assert platform["exec-train"]["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"]
    assert platform["exec-train"]["tolerations"][0]["tolerationJson"]["componentInputParameter"]
    assert resources["memoryRequest"] > 0 and resources["cpuRequest"] > 0


def test_credentials_come_from_kubernetes_secrets_only(ir):
    spec, platform = ir
    needs = {"ingest": {cluster.S3_SECRET}, "convert": {cluster.S3_SECRET},
             "train": set(cluster.SECRETS), "evaluate": set(cluster.SECRETS),
             "register": set(cluster.SECRETS)}  # fmt: skip
    for step, secrets in needs.items():
        config = platform[f"exec-{step}"]
        found = {s["secretName"]: s for s in config["secretAsEnv"]}
        assert set(found) == secrets
        for name in secrets:
            mapped = {m["secretKey"]: m["envVar"] for m in found[name]["keyToEnv"]}
            assert mapped == {key: key for key in cluster.SECRETS[name]}
        config_maps = {c["configMapName"] for c in config["configMapAsEnv"]}
        assert config_maps == {cluster.CONFIG_MAP}
    # no credential is a pipeline parameter
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    text = yaml.safe_dump(parameters).lower()
    assert "secret" not in text and "password" not in text and "access_key" not in text


def test_retries_caching_and_resources(ir):
    spec, _ = ir
    tasks = spec["root"]["dag"]["tasks"]
    loop = next(t for name, t in tasks.items() if name.startswith("for-loop"))
    convert = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]["convert"]
    assert tasks["ingest"]["retryPolicy"]["maxRetryCount"] == 2
    assert convert["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["train"]["cachingOptions"]["enableCache"] is True
    assert tasks["evaluate"]["cachingOptions"] == {}  # the gate reads the registry: no cache
    for executor in spec["deploymentSpec"]["executors"].values():
        assert executor["container"]["resources"]["memoryLimit"] > 0


def test_parameters_mirror_params_yaml(ir):
    spec, _ = ir
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    p = Params()
    for section in pipeline.SECTIONS:
        default = parameters[section]["defaultValue"]
        section_cfg = getattr(p, "register_" if section == "register" else section)
        assert type(section_cfg).model_validate(default) == section_cfg
    assert parameters["train"]["defaultValue"]["epochs"] == p.train.epochs
    assert parameters["source"]["defaultValue"] == p.data.raw_dir
    assert {"shards", "gpus", "node_selector", "tolerations", "seed"} <= set(parameters)


def test_arguments_take_overrides_and_reject_mistakes():
    args = runner.arguments(Params(), ["train.epochs=7", "shards=3", "source=s3://b/raw"])
    assert args["train"]["epochs"] == 7 and args["shards"] == 3
    assert args["source"] == "s3://b/raw"
    assert args["convert"] == pipeline.defaults(Params())["convert"]
    with pytest.raises(ConfigError, match="'train' has no key 'epoch'"):
        runner.arguments(Params(), ["train.epoch=7"])
    with pytest.raises(ConfigError, match="train.epochs"):
        runner.arguments(Params(), ["train.epochs=-1"])
    with pytest.raises(ConfigError, match="unknown parameter"):
        runner.arguments(Params(), ["nonsense=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        runner.arguments(Params(), ["train.epochs"])


def test_cli_compile_writes_ir(cli, tmp_path: Path):
    result = cli("pipeline", "compile", tmp_path / "p.yaml", "--params", tmp_path / "none.yaml")
    assert result.exit_code == 1 and "params file not found" in result.output
    result = cli("pipeline", "compile", tmp_path / "p.yaml")
    assert result.exit_code == 0, result.output
    spec = next(yaml.safe_load_all((tmp_path / "p.yaml").read_text()))
    assert spec["pipelineInfo"]["name"] == "lowlight"
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {
        cluster.IMAGE
    }


def test_submit_to_an_unreachable_host_is_one_clear_error(cli, tmp_path: Path):
    from tests.integration.conftest import free_port

    host = f"http://127.0.0.1:{free_port()}"
    result = cli("pipeline", "submit", "--host", host, "--param", "train.epochs=2")
    assert result.exit_code == 1
    assert f"cannot reach Kubeflow Pipelines at {host}" in result.output
    assert "Traceback" not in result.output


def test_components_do_not_import_the_pipeline():
    """The pipeline imports the components; the components only the library (no loop)."""
    import subprocess
    import sys

    code = "import sys, lowlight.components; print('lowlight.pipelines' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


def test_register_logs_the_runs_convert_settings_with_the_model(ir):
    spec, _ = ir
    condition = next(t for n, t in spec["root"]["dag"]["tasks"].items() if n.startswith("condit"))
    inner = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    convert = inner["register"]["inputs"]["parameters"]["convert_params"]
    assert convert["componentInputParameter"] == "pipelinechannel--convert"


ENHANCE_STEPS = ["enhance_list", "enhance_shard", "enhance_collect"]


@pytest.fixture(scope="module")
def enhance_ir(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("ir") / "enhance.yaml"
    summary = runner.compile_pipeline(Params(), out, "registry.example/lowlight:9", name="enhance")
    assert summary["pipeline"] == "lowlight-enhance" and "train" not in summary
    spec, platform = yaml.safe_load_all(out.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_cli_compiles_the_enhance_pipeline_by_name(cli, tmp_path: Path):
    result = cli("pipeline", "compile", tmp_path / "e.yaml", "--pipeline", "enhance")
    assert result.exit_code == 0, result.output
    spec = next(yaml.safe_load_all((tmp_path / "e.yaml").read_text()))
    assert spec["pipelineInfo"]["name"] == "lowlight-enhance"
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    knobs = {"source", "output", "model", "models", "ratio", "shards", "infer", "mlflow"}
    assert set(parameters) == knobs
    assert not parameters["source"].get("isOptional") and not parameters["output"].get("isOptional")
    assert parameters["model"]["defaultValue"] == ""  # each file's kind to its champion
    assert parameters["models"]["defaultValue"]["bayer"] == "models:/lowlight@champion"
    assert parameters["ratio"]["defaultValue"] == "auto"
    assert InferConfig.model_validate(parameters["infer"]["defaultValue"]) == InferConfig()
    result = cli("pipeline", "compile", tmp_path / "x.yaml", "--pipeline", "nope")
    one_line_error(result, "--pipeline 'nope'", "train, enhance")
    result = cli(
        "pipeline", "compile", tmp_path / "x.yaml", "--pipeline", "enhance", "--distributed"
    )
    one_line_error(result, "--distributed")
    assert not (tmp_path / "x.yaml").exists()


def test_enhance_fans_out_over_shards_and_collects_one_manifest(enhance_ir):
    spec, platform = enhance_ir
    tasks = spec["root"]["dag"]["tasks"]
    loop = next(t for name, t in tasks.items() if name.startswith("for-loop"))
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("enhance-list-Output")
    loop_tasks = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(loop_tasks) == ["enhance-shard"]
    assert "for-loop" in str(tasks["enhance-collect"]["inputs"]["artifacts"]["rows"])
    rows = spec["components"]["comp-enhance-collect"]["inputDefinitions"]["artifacts"]["rows"]
    assert rows["isArtifactList"]
    # every step reads or writes outside the pipeline root: never cached; store reads retried
    shard = loop_tasks["enhance-shard"]
    for task in (tasks["enhance-list"], shard, tasks["enhance-collect"]):
        assert task["cachingOptions"] == {} and task["retryPolicy"]["maxRetryCount"] == 2
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"registry.example/lowlight:9"}
    for executor in executors.values():
        assert "stages.enhance_batch." in " ".join(executor["container"]["command"])
        assert executor["container"]["resources"]["memoryLimit"] > 0
    both = {cluster.S3_SECRET, cluster.MLFLOW_SECRET}
    needs = {"enhance-list": both, "enhance-shard": both, "enhance-collect": {cluster.S3_SECRET}}
    for step, secrets in needs.items():
        assert {s["secretName"] for s in platform[f"exec-{step}"]["secretAsEnv"]} == secrets


def test_enhance_components_are_thin_wrappers_around_the_stage():
    for step in ENHANCE_STEPS:
        source = inspect.getsource(getattr(components, step).python_func)
        assert "stages.enhance_batch." in source
        assert len([line for line in source.splitlines() if line.strip()]) < 40, step


def test_enhance_arguments_are_validated_before_anything_runs():
    good = ["source=s3://b/raw", "output=s3://b/enhanced"]
    args = runner.arguments(Params(), [*good, "shards=8", "ratio=100", "infer.tile=64"], "enhance")
    assert args["shards"] == 8 and args["ratio"] == "100" and args["infer"]["tile"] == 64
    assert "overlap" not in args["infer"]
    # as `lowlight enhance` does: each kind of file to its registered model's champion
    assert args["model"] == "" and args["models"] == {
        "bayer": "models:/lowlight@champion",
        "xtrans": "models:/lowlight-xtrans@champion",
        "rgb": "models:/lowlight-srgb@champion",
    }
    named = Params.model_validate({"register": {"model_name": "night"}})
    assert runner.arguments(named, good, "enhance")["models"]["bayer"] == "models:/night@champion"
    one = runner.arguments(Params(), [*good, "model=models:/night/3"], "enhance")
    assert one["model"] == "models:/night/3"  # every file to this one
    kind = runner.arguments(Params(), [*good, "models.rgb=models:/phone@best"], "enhance")
    assert kind["models"]["rgb"] == "models:/phone@best"
    mistakes = {
        "needs --param source=": ["output=s3://b/enhanced"],
        "needs --param output=": ["source=s3://b/raw"],
        "lies inside the input s3://b/raw": ["source=s3://b/raw", "output=s3://b/raw/out"],
        "expected models:/NAME@ALIAS": [*good, "model=lowlight"],
        "models.xtrans=fuji: model 'fuji': expected": [*good, "models.xtrans=fuji"],
        "'models' has no key 'fuji'": [*good, "models.fuji=models:/f@champion"],
        "needs --param model=models:/NAME@ALIAS, or a model per kind": [*good, "models={}"],
        "above convert.max_ratio": [*good, "ratio=1000"],
        "must be a number or 'auto'": [*good, "ratio=bright"],
        "'shards'": [*good, "shards=0"],
        "unknown parameter": [*good, "train.epochs=3"],
    }
    for message, overrides in mistakes.items():
        with pytest.raises(LowlightError, match=re.escape(message)):
            runner.arguments(Params(), overrides, "enhance")


def test_run_local_enhance_without_its_folders_is_one_error(cli, tmp_path: Path):
    result = cli("pipeline", "run-local", "--pipeline", "enhance", "--work", tmp_path / "w")
    one_line_error(result, "--param source=", "--param output=")
    assert not (tmp_path / "w").exists()  # refused before anything ran


def test_an_enhance_shard_fails_a_file_of_a_kind_without_a_model_and_stops_on_the_registry(
    tmp_path: Path,
):
    """A photo whose kind has no pinned model is its failed row, naming the kind; a pinned
    model the registry cannot give stops the shard (the step's retries), never a row."""
    import cv2
    import numpy as np

    from lowlight.config import MlflowConfig
    from lowlight.stages import enhance_batch

    photo = tmp_path / "night.jpg"
    assert cv2.imwrite(str(photo), np.full((16, 16, 3), 20, np.uint8))
    mlflow_cfg = MlflowConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    only_raw = enhance_batch.PinnedModels({"bayer": "models:/lowlight/1"}, "auto", InferConfig(),
                                          mlflow_cfg)  # fmt: skip
    row = enhance_batch.enhance_one(str(photo), str(tmp_path / "out.png"), only_raw, InferConfig())
    assert row["status"] == "failed" and row["model"] == ""
    assert row["error"] == (f"{photo}: no registered model for JPEG/PNG files "
                            "(this run's: RAW: models:/lowlight/1)")  # fmt: skip
    missing = enhance_batch.PinnedModels({"rgb": "models:/lowlight-srgb/1"}, "auto",
                                         InferConfig(), mlflow_cfg)  # fmt: skip
    with pytest.raises(LowlightError, match="models:/lowlight-srgb/1"):
        enhance_batch.enhance_one(str(photo), str(tmp_path / "out.png"), missing, InferConfig())
    assert not (tmp_path / "out.png").exists()


def test_the_models_line_lists_kinds_in_one_order_whatever_order_the_plan_came_back_in():
    # kfp hands a dict parameter back with its keys sorted: the summary must not follow that
    from lowlight.modes import IMAGE_MODE, RAW_MODE
    from lowlight.stages.enhance_batch import describe_models

    pinned = {IMAGE_MODE: "models:/lowlight-srgb/1", RAW_MODE: "models:/lowlight/2"}
    want = "RAW: models:/lowlight/2; JPEG/PNG: models:/lowlight-srgb/1"
    assert describe_models(pinned) == describe_models(dict(reversed(pinned.items()))) == want
    assert describe_models({"": "models:/x/1"}) == "models:/x/1"
