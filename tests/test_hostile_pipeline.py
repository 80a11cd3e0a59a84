"""Issue 27, item 5b: the Kubeflow pipeline's run parameters, as a careless or hostile user gives
them. Every ``--param`` is validated before anything is compiled, synthesized or run; the
convert fan-out never exceeds one shard per RAW file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kfp.dsl import Dataset

from lowlight import components
from lowlight.config import Params
from lowlight.errors import ConfigError
from lowlight.pipelines import runner


@pytest.mark.parametrize(
    ("param", "says"),
    [
        ("shards=0", "'shards': Input should be greater than or equal to 1"),
        ("shards=-3", "'shards': Input should be greater than or equal to 1"),
        ("shards=two", "'shards': Input should be a valid integer"),
        ("seed=abc", "'seed': Input should be a valid integer"),
        ("seed=1.5", "'seed': Input should be a valid integer"),
        ("gpus=-1", "'gpus': Input should be greater than or equal to 0"),
        ("nodes=0", "'nodes': Input should be greater than or equal to 1"),
        ("node_selector=[a, b]", "'node_selector': Input should be a valid dictionary"),
        ("tolerations=x", "'tolerations': Input should be a valid list"),
        ("source=", "'source': String should have at least 1 character"),
        ("train.max_minutes=abc", "'train.max_minutes': Input should be a valid number"),
        ("train.max_minutes=0", "'train.max_minutes': Input should be greater than 0"),
        ("convert.ratio=bright", "'convert.ratio."),
        ("patch.max_per_image=0", "'patch.max_per_image': Input should be greater than or equal"),
        ("train={epochs: 3", "--param train: not valid YAML"),
    ],
)
def test_every_param_is_validated_like_params_yaml(param: str, says: str):
    with pytest.raises(ConfigError) as caught:
        runner.arguments(Params(), [param])
    message = str(caught.value)
    assert message.startswith("--param") and says in message, message
    assert "\n" not in message


def test_keys_whose_default_is_null_take_a_value_of_their_type():
    args = runner.arguments(
        Params(),
        ["train.max_minutes=5", "convert.ratio=auto", "patch.max_per_image=3", "infer.overlap=8"],
    )
    assert args["train"]["max_minutes"] == 5.0
    assert args["convert"]["ratio"] == "auto"
    assert args["patch"]["max_per_image"] == 3
    assert args["infer"]["overlap"] == 8
    args = runner.arguments(Params(), ["convert.ratio=2.5", "train.max_minutes=null"])
    assert args["convert"]["ratio"] == 2.5
    assert "max_minutes" not in args["train"]  # null: the key's default, as params.yaml's
    assert args == runner.arguments(Params(), ["convert.ratio=2.5"])


def test_values_come_back_as_their_declared_types():
    args = runner.arguments(
        Params(), ["dvc_rev=1234567", "seed=7", "shards=3", "node_selector={pool: gpu}"]
    )
    assert args["dvc_rev"] == "1234567"  # a numeric-looking git revision stays a string
    assert args["seed"] == 7 and args["shards"] == 3
    assert args["node_selector"] == {"pool": "gpu"}


def test_run_local_refuses_a_bad_param_before_doing_anything(cli, tmp_path: Path):
    work = tmp_path / "work"
    for param, says in [
        ("shards=0", "'shards': Input should be greater than or equal to 1"),
        ("seed=abc", "'seed': Input should be a valid integer"),
    ]:
        result = cli("pipeline", "run-local", "--work", work, "--param", param)
        assert result.exit_code == 1
        assert says in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not work.exists()  # nothing synthesized, nothing run


def test_submit_refuses_a_bad_param_before_contacting_the_host(cli, tmp_path: Path):
    from tests.integration.conftest import free_port

    host = f"http://127.0.0.1:{free_port()}"
    result = cli("pipeline", "submit", "--host", host, "--param", "seed=abc")
    assert result.exit_code == 1
    assert "'seed': Input should be a valid integer" in result.output
    assert "cannot reach" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_fan_out_is_capped_at_one_shard_per_raw_file(sony: Path, tmp_path: Path):
    """The components themselves, as the pipeline chains them: ingest -> convert x N -> pair."""
    raw = Dataset(uri=str(tmp_path / "raw"))
    items = components.ingest.python_func(
        source=str(sony / "Sony"), dvc_repo="", dvc_rev="", shards=50, raw=raw
    )
    files = raw.metadata["raw_files"]
    assert files < 50 and len(items) == files
    shards = []
    for i, item in enumerate(items):
        out = Dataset(uri=str(tmp_path / f"shard{i}"))
        components.convert.python_func(
            raw=raw, convert_params={}, model_params={}, shard=item, converted=out
        )
        shards.append(out)
    converted = Dataset(uri=str(tmp_path / "converted"))
    pairs = Dataset(uri=str(tmp_path / "pairs.parquet"))
    components.pair.python_func(
        raw=raw, shards=shards, pair_params={}, converted=converted, pairs=pairs
    )
    assert converted.metadata["shards"] == files and converted.metadata["files"] == files
    assert pairs.metadata["pairs"] > 0


@pytest.mark.slow
def test_run_local_with_more_shards_than_raw_files(cli, tmp_path: Path, monkeypatch):
    """The issue's case: 6 RAW files, shards=7 -> 6 convert tasks, and the run goes through."""
    from tests.integration.test_kfp_local import TINY, only

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = tmp_path / "params.yaml"
    tiny = {**TINY, "synth": {**TINY["synth"], "frames": 1}}  # 3 scenes: 3 short + 3 long
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params.write_text(yaml.safe_dump({**tiny, "mlflow": {"tracking_uri": uri}}))
    work = tmp_path / "work"
    result = cli("pipeline", "run-local", "--work", work, "--params", params,
                 "--param", "shards=7", "--param", "train.max_minutes=5")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((work / "synthetic/Sony").rglob("*.dng"))) == 6
    run = only(work / "pipeline_root", "lowlight-*")
    assert len(list(run.glob("for-loop-*/convert/converted"))) == 6  # one per file, not 7
    manifests = sorted(p.name for p in (run / "pair/converted").glob("converted-part-*"))
    assert manifests == [f"converted-part-{i:05d}-of-00006.parquet" for i in range(6)]
    assert (run / "evaluate/reports/metrics.json").is_file()
