from pathlib import Path

import pytest

from lowlight.config import Params, load_params, override, parse_size
from lowlight.errors import ConfigError


def test_defaults_without_a_params_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_params() == Params()


def test_repository_params_file_is_valid():
    from pathlib import Path

    params = load_params(Path(__file__).parents[1] / "params.yaml")
    assert params.pair.select == "darkest"
    assert params.synth.size == (256, 384)


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("convert:\n  fromat: jpeg\n")
    with pytest.raises(ConfigError, match=r"params.yaml: unknown key 'convert.fromat'"):
        load_params(path)


def test_mistyped_value_names_the_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("convert:\n  format: tiff\nsynth:\n  scenes: two\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert "'convert.format'" in str(err.value) and "'synth.scenes'" in str(err.value)
    assert str(path) in str(err.value)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_flags_override_only_what_was_given():
    base = Params().convert
    changed = override(base, "convert", format="png16", workers=None)
    assert changed.format == "png16" and changed.workers == base.workers
    assert override(base, "convert", ratio="auto").ratio == "auto"
    with pytest.raises(ConfigError, match="'workers'"):
        override(base, "convert", workers=0)


def test_size():
    assert parse_size("240x360") == (240, 360)
    assert parse_size([64, 96]) == (64, 96)
    for bad in ("240", "241x360", "8x8", "axb"):
        with pytest.raises(ValueError):
            parse_size(bad)


DEMO_CHOICES = {
    "convert.format", "patch.size", "patch.stride", "patch.format", "model.input", "model.depth",
    "model.width", "model.residual", "train.lr", "train.lambda_adv", "train.init",
}  # fmt: skip


def test_params_file_lists_every_knob_with_its_default():
    """params.yaml is the table of every setting: each section's keys, at the built-in values."""
    from pathlib import Path

    import yaml

    from lowlight.config import Params

    written = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    defaults = Params().model_dump(mode="json", by_alias=True)
    for section, values in defaults.items():
        if isinstance(values, dict):
            assert set(written[section]) == set(values), section
    # the demo fine-tunes the shipped model: its data, model and training differ from the
    # library's defaults in these keys only
    demo = load_params(Path(__file__).parents[1] / "params.yaml").model_dump(
        mode="json", by_alias=True
    )
    changed = {f"{s}.{k}" for s, v in demo.items() if isinstance(v, dict)
               for k in v if v[k] != defaults[s][k]}  # fmt: skip
    assert changed <= DEMO_CHOICES, changed - DEMO_CHOICES


def test_the_gpu_recipe_is_the_cpu_recipe_scaled_up():
    """pretrain/gpu.yaml trains the same network on the same kind of data, only more of it:
    its weights can replace the CPU-trained ones (the CPU speed goal stays met)."""
    root = Path(__file__).resolve().parent.parent / "pretrain"
    cpu, gpu = load_params(root / "params.yaml"), load_params(root / "gpu.yaml")
    assert gpu.model == cpu.model and gpu.patch == cpu.patch and gpu.convert == cpu.convert
    same = {"size", "procedural", "profile", "read_noise", "photos"}
    assert gpu.synth.model_dump(include=same) == cpu.synth.model_dump(include=same)
    assert gpu.synth.scenes > cpu.synth.scenes
    assert gpu.train.device == "cuda" and gpu.train.max_minutes <= 5
    assert (gpu.train.lr, gpu.train.lambda_adv, gpu.train.lr_schedule) == (
        cpu.train.lr, cpu.train.lambda_adv, cpu.train.lr_schedule)  # fmt: skip
