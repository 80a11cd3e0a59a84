"""The registry's faults (issue 16) against real `mlflow server` processes on a sqlite store:
a promotion that races another, a server killed with SIGKILL mid-promotion, rollback down a
real history, credentials that never reach a message, a log or a compiled pipeline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lowlight import registry

from .conftest import free_port, wait_for


class Server:
    """An `mlflow server` on a sqlite file that a test may kill -9 and start again."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.folder / "server.log"
        command = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
            "--artifacts-destination", str(self.folder / "artifacts"),
        ]  # fmt: skip
        with open(log, "a") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip
        wait_for(f"{self.url}/health", self.process, 120, log)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    s = Server(tmp_path)
    s.start()
    try:
        yield s
    finally:
        s.kill()


def versions(c, name: str, count: int) -> None:
    c.create_registered_model(name)
    for _ in range(count):
        c.create_model_version(name, source="s3://models/lowlight/generator")


class Hooked:
    """A client whose first call of ``method`` runs ``hook`` before it (or after it: an
    interleaving of two processes, made deterministic)."""

    def __init__(self, inner, method: str, hook, after: bool = False):
        self.inner, self.method, self.hook, self.after = inner, method, hook, after

    def __getattr__(self, attr):
        real = getattr(self.inner, attr)
        if attr != self.method or self.hook is None:
            return real

        def wrapped(*args, **kwargs):
            hook, self.hook = self.hook, None
            if not self.after:
                hook()
            result = real(*args, **kwargs)
            if self.after:
                hook()
            return result

        return wrapped


def test_a_promotion_that_races_another_fails_clearly_and_history_is_real(server):
    c = registry.client(server.url)
    name = "race"
    versions(c, name, 3)
    registry.promote(c, name, "1")
    with pytest.raises(registry.RegistryError, match="already holds 'champion'"):
        registry.promote(c, name, "1")  # never its own previous holder

    # promote 2 reads the holder (1); promote 3 completes meanwhile; 2 must not silently win
    racing = Hooked(c, "get_model_version_by_alias", lambda: registry.promote(c, name, "3"),
                    after=True)  # fmt: skip
    with pytest.raises(registry.RegistryError, match="concurrent promotion"):
        registry.promote(racing, name, "2")
    assert str(c.get_model_version_by_alias(name, "champion").version) == "3"
    assert c.get_model_version(name, "3").tags["lowlight.champion.previous"] == "1"
    assert "lowlight.champion.promoted_by" not in c.get_model_version(name, "2").tags

    registry.promote(c, name, "2")  # history 1, 3, 2
    assert registry.rollback(c, name)["version"] == "3"
    assert registry.rollback(c, name)["version"] == "1"  # down the history, no toggling
    with pytest.raises(registry.RegistryError, match="no previous holder"):
        registry.rollback(c, name)
    assert str(c.get_model_version_by_alias(name, "champion").version) == "1"


def test_a_server_killed_before_the_alias_moves_leaves_no_promotion_record(server):
    c = registry.client(server.url)
    name = "killed"
    versions(c, name, 2)
    registry.promote(c, name, "1")
    dying = Hooked(c, "set_registered_model_alias", server.kill)
    with pytest.raises(registry.RegistryError), registry.registry_errors(server.url):
        registry.promote(dying, name, "2")
    server.start()
    c = registry.client(server.url)
    assert str(c.get_model_version_by_alias(name, "champion").version) == "1"
    tags = c.get_model_version(name, "2").tags
    assert not [k for k in tags if k.startswith("lowlight.champion.")], tags
    assert registry.history(c, name, "champion", c.get_model_version_by_alias(name, "champion")) \
        == ["1"]  # fmt: skip


def test_credentials_never_reach_a_message_a_log_or_a_pipeline(cli, tmp_path, monkeypatch):
    secret = "s3cr3t-pw"
    dead = f"http://alice:{secret}@127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    for command in (("models", "list"), ("models", "promote", "1")):
        result = cli(*command, "--params", empty)
        assert result.exit_code == 1 and "error:" in result.output
        assert secret not in result.output and "alice:" not in result.output, result.output
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    params = tmp_path / "params.yaml"
    params.write_text(f"mlflow:\n  tracking_uri: {dead}\n")
    result = cli("models", "list", "--params", params)
    assert result.exit_code == 1 and "MLFLOW_TRACKING_PASSWORD" in result.output
    assert secret not in result.output
    result = cli("pipeline", "compile", tmp_path / "p.yaml", "--params", params)
    assert result.exit_code == 1 and secret not in result.output
    assert not (tmp_path / "p.yaml").exists()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)  # the environment is the place for them
    result = cli("pipeline", "compile", tmp_path / "p.yaml", "--params", empty)
    assert result.exit_code == 0, result.output
    assert secret not in (tmp_path / "p.yaml").read_text()
