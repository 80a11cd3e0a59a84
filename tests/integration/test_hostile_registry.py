"""Issue 27 against a real `mlflow server`: credentials in the tracking URI never reach what
train, evaluate and register print (5), and a promotion that loses a race leaves no record
behind it (7)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lowlight import registry

from ..conftest import TINY_MODEL, TINY_TRAIN
from .conftest import free_port

SECRET = "s3cr3t-Pa55"
LOWLIGHT = str(Path(sys.executable).with_name("lowlight"))


def lowlight(*args: object, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real command in its own process: stdout and stderr together, as a user sees them."""
    return subprocess.run([LOWLIGHT, *map(str, args)], env={**os.environ, **env}, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://alice:{SECRET}@")


def test_train_evaluate_register_never_print_the_password(tiny_patches, tmp_path, mlflow_server):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"model": TINY_MODEL, "train": TINY_TRAIN,
                                      "mlflow": {"experiment": "hostile-credentials"},
                                      "register": {"baseline_margin": -100.0}}))  # fmt: skip
    env = {"MLFLOW_TRACKING_URI": with_credentials(mlflow_server["url"])}
    models, reports = tmp_path / "models", tmp_path / "reports"
    pairs = tiny_patches.parent / "pairs.parquet"
    printed = ""
    for command in (
        ("train", tiny_patches, models, "--reports", reports),
        ("evaluate", models, pairs, "--out", reports),
        ("register", models, reports, "--name", "hostile-credentials"),
    ):
        result = lowlight(*command, "--params", params, env=env)
        assert result.returncode == 0, result.stdout
        printed += result.stdout
    assert SECRET not in printed and "alice:" not in printed, printed
    assert "models:/hostile-credentials@champion" in printed  # the commands did run

    # the server down: the error (MLflow's message repeats the URI) shows no password either
    down = {"MLFLOW_TRACKING_URI": f"http://alice:{SECRET}@127.0.0.1:{free_port()}",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}  # fmt: skip
    result = lowlight("train", tiny_patches, tmp_path / "m2", "--reports", tmp_path / "r2",
                      "--params", params, env=down)  # fmt: skip
    assert result.returncode != 0
    assert "127.0.0.1" in result.stdout  # the error names the server, without the password
    assert SECRET not in result.stdout and "alice:" not in result.stdout, result.stdout


def test_stages_called_without_the_cli_print_no_credentials_either(monkeypatch, capsys):
    """Kubeflow components call the stages directly: the guard comes with the tracking URI."""
    from lowlight import tracking
    from lowlight.config import MlflowConfig

    for name in ("stdout", "stderr", "excepthook"):  # restored after the test
        monkeypatch.setattr(sys, name, getattr(sys, name))
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "")
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{SECRET}@127.0.0.1:1")
    tracking.tracking_uri(MlflowConfig())
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"  # MLflow's run links
    print(f"View run at: http://alice:{SECRET}@127.0.0.1:1/#/experiments/1")
    sys.stderr.write(f"a URL cut over two writes: http://alice:{SECRET}")
    sys.stderr.write("@127.0.0.1:1/api\n")
    try:
        raise RuntimeError(f"API request to http://alice:{SECRET}@127.0.0.1:1 failed")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())  # what Python does with an uncaught exception
    out, err = capsys.readouterr()
    assert SECRET not in out + err and "alice" not in out + err, out + err
    assert "http://***@127.0.0.1:1/#/experiments/1" in out and "Traceback" in err


def promoting(url: str, name: str, version: str, go: Path | None = None) -> subprocess.Popen:
    """A real process that promotes ``version`` (once ``go`` exists: processes in a race)."""
    script = (
        "import sys, time; from pathlib import Path; from lowlight import registry\n"
        "c = registry.client(sys.argv[1])\n"
        "while sys.argv[4] and not Path(sys.argv[4]).exists(): time.sleep(0.005)\n"
        "try: print(registry.promote(c, sys.argv[2], sys.argv[3]))\n"
        "except registry.RegistryError as exc: sys.exit(f'lost: {exc}')\n"
    )
    command = [sys.executable, "-c", script, url, name, version, str(go or "")]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_racing_promotion_processes_take_turns_and_history_holds_each(mlflow_server, tmp_path):
    from .test_registry_faults import versions

    url, name = mlflow_server["url"], "hostile-race"
    c = registry.client(url)
    versions(c, name, 5)
    registry.promote(c, name, "1")
    go = tmp_path / "go"
    racers = {v: promoting(url, name, v, go) for v in ("2", "3", "4", "5")}
    go.touch()
    for process in racers.values():
        assert process.wait(90) == 0, process.stdout.read()  # one after the other, none lost
    holder = c.get_model_version_by_alias(name, "champion")
    past = registry.history(c, name, "champion", holder)
    assert past[0] == "1" and sorted(past[1:]) == ["2", "3", "4", "5"], past
    for version, previous in zip(past[1:], past, strict=False):
        assert c.get_model_version(name, version).tags["lowlight.champion.previous"] == previous
    for expected in reversed(past[:-1]):  # rollback walks down what really happened
        assert registry.rollback(c, name)["version"] == expected
    assert not [m for m in c.search_registered_models() if m.name.endswith("-lock")]


def test_a_lock_read_while_released_and_retaken_is_not_broken_as_stale():
    """The server reads a lock and its tags in two queries: a lock released and retaken in
    between reads back without tags. Taking that for "stamped long ago" broke the new holder's
    lock, and two promotions ran at once (a CI failure)."""
    from mlflow.entities.model_registry import RegisteredModel, RegisteredModelTag

    now, key = time.time(), f"{registry.TAG}lock.since"
    retaken = RegisteredModel("m.champion-lock", creation_timestamp=int(now * 1000))
    assert now - registry._since(retaken) < 1
    killed = RegisteredModel("m.champion-lock", int(now * 1000) - 600_000,
                             tags=[RegisteredModelTag(key, str(now - 600))])  # fmt: skip
    assert now - registry._since(killed) > registry.LOCK_STALE


def test_a_promotion_overtaken_while_recording_takes_its_record_back(mlflow_server):
    from .test_registry_faults import Hooked, versions

    url, name = mlflow_server["url"], "hostile-overtaken"
    c = registry.client(url)
    versions(c, name, 3)
    registry.promote(c, name, "1")

    # 2 has moved the alias and seen it hold; while 2 writes its record, another client (the
    # MLflow UI, another tool: no lowlight lock) gives the alias to 3 in its own process
    def other_client() -> None:
        move = ("import sys, mlflow; mlflow.MlflowClient(sys.argv[1])"
                ".set_registered_model_alias(sys.argv[2], 'champion', '3')")  # fmt: skip
        subprocess.run([sys.executable, "-c", move, url, name], check=True, timeout=60)

    racing = Hooked(c, "set_registered_model_tag", other_client)
    try:
        registry.promote(racing, name, "2")
        raise AssertionError("promoting 2 reported success")
    except registry.RegistryError as exc:
        assert "concurrent promotion" in str(exc)
    assert str(c.get_model_version_by_alias(name, "champion").version) == "3"
    assert not [k for k in c.get_model_version(name, "2").tags if k.startswith("lowlight.")]
    holder = c.get_model_version_by_alias(name, "champion")
    assert registry.history(c, name, "champion", holder) == ["1", "3"]
    assert registry.rollback(c, name)["version"] == "1"  # not 2, whose promotion failed
