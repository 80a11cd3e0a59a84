"""Hostile params files and flags (issue 27): alias bombs, repeated keys, folders, huge values.

Each is one short error line naming the file, found before anything large is built."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lowlight.config import Params, load_params
from lowlight.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LOWLIGHT = Path(sys.executable).with_name("lowlight")


def alias_bomb(levels: int) -> str:
    """A "billion laughs": each level a list of 9 aliases to the one before, the last given as
    ``seed`` (9**levels strings where a number belongs)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnopqrstuvwxyz"
    for before, name in zip(names[: levels - 1], names[1:levels], strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{before}"] * 9) + "]")
    return "\n".join(lines) + f"\nseed: *{names[levels - 1]}\n"


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output[:2000]
    return lines[0]


def guarded(*args: str | Path, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    """``args`` in a process held to 2 GiB of address space and 30 s: a regression fails the
    test instead of taking the machine's memory."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    start = time.monotonic()
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=30, preexec_fn=limit)  # fmt: skip
    return done, time.monotonic() - start


def test_alias_bomb_is_refused_before_it_is_built(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(9))
    assert len(bomb.read_bytes()) < 400
    code = (
        "import time\nfrom lowlight.config import load_params\nfrom lowlight.errors import "
        "ConfigError\nstart = time.monotonic()\ntry:\n    load_params('bomb.yaml')\n"
        "except ConfigError as exc:\n    print(f'{time.monotonic() - start:.3f} {exc}')\n"
    )
    done, _ = guarded(sys.executable, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    seconds, message = one_line(done.stdout).split(" ", 1)
    assert float(seconds) < 0.5
    assert message.startswith("bomb.yaml: ") and "alias" in message and len(message) < 300


def test_alias_bomb_on_the_command_line_is_one_short_line(tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb(9))
    done, seconds = guarded(LOWLIGHT, "synth", "out", "--params", "bomb.yaml", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    line = one_line(done.stdout + done.stderr)
    assert line.startswith("error: bomb.yaml: ") and "alias" in line and len(line) < 300
    assert seconds < 10  # the process's start included: the refusal itself is instant
    assert not (tmp_path / "out").exists()


def test_aliases_within_the_budget_still_work(tmp_path):
    """Anchors, aliases and merge keys are YAML a user may write on purpose."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "infer: &infer {tile: 320, overlap: 32}\n"
        "evaluate:\n  baselines: &b [amplify]\n  exclude_scenes: &s ['1', '2']\n"
        "train:\n  <<: {epochs: 3, batch_size: 4}\n  epochs: 5\n"
    )
    params = load_params(path)
    assert params.infer.tile == 320 and params.evaluate.baselines == ["amplify"]
    assert (params.train.epochs, params.train.batch_size) == (5, 4)


def test_an_alias_to_itself_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("evaluate:\n  exclude_scenes: &a [*a]\n")
    with pytest.raises(ConfigError, match=r"line 2: .*'evaluate.exclude_scenes.0' .*itself"):
        load_params(path)


def test_deep_nesting_is_one_line(cli, tmp_path):
    (tmp_path / "deep.yaml").write_text("seed: " + "[" * 5000 + "]" * 5000 + "\n")
    result = cli("synth", "out", "--params", "deep.yaml")
    assert result.exit_code == 1
    assert one_line(result.output).startswith("error: deep.yaml: ")


def test_long_values_are_cut_in_error_lines(cli, tmp_path):
    """A smaller bomb, within the alias budget, and plain long values and keys: the line shows a
    short prefix of each and "..."."""
    small = alias_bomb(3)  # 729 strings where a number belongs: 6 kB of repr
    long_value = f"convert:\n  format: {'x' * 100_000}\n"
    long_key = f"synth:\n  ? {'k' * 100_000}\n  : 1\n"  # explicit: an implicit key is short
    for name, text in {"small.yaml": small, "value.yaml": long_value, "key.yaml": long_key}.items():
        (tmp_path / name).write_text(text)
        start = time.monotonic()
        result = cli("synth", "out", "--params", name)
        assert time.monotonic() - start < 3  # credentials are scrubbed from what is shown only
        assert result.exit_code == 1
        line = one_line(result.output)
        assert line.startswith(f"error: {name}: ") and "..." in line and len(line) < 600, line


def test_a_cut_value_never_shows_part_of_a_password(cli, tmp_path):
    """Credentials are scrubbed before a long value is cut, so a cut cannot hide them."""
    uri = "http://" + "u" * 70 + ":Zq9hunter2@host/" + "x" * 200
    (tmp_path / "p.yaml").write_text(f"mlflow:\n  tracking_uri: '{uri}'\n")
    result = cli("synth", "out", "--params", "p.yaml")
    assert result.exit_code == 1
    line = one_line(result.output)
    assert "credentials do not belong" in line and "Zq9" not in line and "..." in line


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("seed: 0\nconvert:\n  quality: 90\nseed: 1\n", "seed", (1, 4)),
        ("convert:\n  format: jpeg\n  quality: 90\n  format: png16\n", "convert.format", (2, 4)),
        ("evaluate:\n  baselines: [{a: 1, a: 2}]\n", "evaluate.baselines.0.a", (2, 2)),
    ],
)
def test_a_repeated_key_is_refused(cli, tmp_path, text, key, lines):
    """YAML keeps the last of two equal keys without a word: one of them was a mistake."""
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_params(tmp_path / "params.yaml")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'params.yaml'}: ")
    assert f"'{key}'" in message and f"lines {lines[0]} and {lines[1]}" in message
    result = cli("synth", "out")  # ./params.yaml, read by every stage
    assert result.exit_code == 1 and f"'{key}'" in one_line(result.output)


def test_params_naming_a_folder_or_a_binary_file_is_one_line(cli, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "binary.yaml").write_bytes(b"seed: \xff\xfe\x00\x81\n")
    for name in ("folder", "binary.yaml"):
        result = cli("synth", "out", "--params", name)
        assert result.exit_code == 1
        assert one_line(result.output).startswith(f"error: {name}: ")


def test_a_ratio_above_the_cap_is_shown_as_given(cli):
    result = cli("convert", "in", "out", "--ratio", "300.0001")
    assert result.exit_code == 1
    assert "300.0001 is above convert.max_ratio 300 " in one_line(result.output)
    result = cli("enhance", "photo.dng", "--ratio", "300.0001")
    assert result.exit_code == 1
    assert "--ratio 300.0001 is above convert.max_ratio 300 " in one_line(result.output)


def test_builtin_defaults_differ_from_params_yaml_only_where_the_readme_says():
    """The repository's params.yaml is the demo's (a bayer model fine-tuning the shipped one);
    without a params.yaml the library's defaults apply. The docs' Configuration page names
    every key in which they differ, and no other."""
    section = (ROOT / "docs" / "configuration.md").read_text()
    paragraph = next(p for p in section.split("\n\n") if "Without a `params.yaml`" in p)
    defaults = Params().model_dump(mode="json", by_alias=True)
    keys = re.findall(r"`([a-z_]+)\.([a-z_]+)`", paragraph)
    named = {f"{s}.{k}" for s, k in keys if s in defaults}
    demo = load_params(ROOT / "params.yaml").model_dump(mode="json", by_alias=True)
    differ = {f"{s}.{k}" for s, v in defaults.items() if isinstance(v, dict)
              for k in v if v[k] != demo[s][k]}  # fmt: skip
    differ |= {s for s, v in defaults.items() if not isinstance(v, dict) and v != demo[s]}
    assert differ == named, f"differ but unnamed: {differ - named}; named: {named - differ}"
