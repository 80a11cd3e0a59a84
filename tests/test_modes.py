"""Input modes are objects chosen by name: each owns what differs, no other module branches on
a mode's name or carries a packed flag."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import numpy as np
import pytest

from lowlight import modes
from lowlight.config import ConvertConfig, ModelConfig
from lowlight.errors import ConfigError, DatasetError

ROOT = Path(__file__).resolve().parent.parent
CODE = [ROOT / "src/lowlight", ROOT / "components", ROOT / "pipelines"]


def offences(path: Path) -> list[str]:
    """A mode's name as a string literal (a branch or a default on it), or a name ``packed``."""
    found, where = [], path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):  # f-strings
                continue
            if isinstance(value, str) and value in modes.MODES:
                found.append(f"{where}:{tok.start[0]}: {tok.string}")
        elif tok.type == tokenize.NAME and tok.string == "packed":
            found.append(f"{where}:{tok.start[0]}: name 'packed'")
    return found


def test_no_mode_name_branch_or_packed_flag_outside_the_modes_module():
    files = [p for folder in CODE for p in sorted(folder.rglob("*.py")) if p.name != "modes.py"]
    assert len(files) > 30
    assert [o for p in files for o in offences(p)] == []


def test_the_check_sees_a_branch_and_a_flag(tmp_path):
    bad = tmp_path / "branchy.py"
    bad.write_text('def f(cfg, packed=False):\n    return cfg.input == "bayer"\n')
    assert len(offences(bad)) == 2


def test_modes_by_name():
    assert set(modes.MODES) == {"rgb", "bayer", "xtrans"} and modes.DEFAULT == "rgb"
    assert modes.get("bayer").scale == 2 and modes.get("bayer").channels == 4
    assert modes.get("xtrans").scale == 3 and modes.get("xtrans").channels == 9
    with pytest.raises(ConfigError, match="unknown input mode"):
        modes.get("foveon")
    with pytest.raises(ValueError, match="unknown input mode"):
        ModelConfig(input="foveon")
    residual = modes.get("bayer").generator_args(ModelConfig(input="bayer", residual=True))
    assert residual["skip"][1] == [0.0, 0.5, 0.5, 0.0]  # under a naive demosaic
    assert "skip_upsample" not in residual  # nearest: older cards' network, unchanged
    smooth = ModelConfig(input="xtrans", residual=True, skip_upsample="bilinear")
    assert modes.get("xtrans").generator_args(smooth)["skip_upsample"] == "bilinear"
    for no_skip in ({"input": "rgb", "residual": True}, {"input": "xtrans", "residual": False}):
        with pytest.raises(ValueError, match="skip_upsample bilinear needs residual: true and a"):
            ModelConfig(**no_skip, skip_upsample="bilinear")


@pytest.mark.parametrize("name", sorted(modes.MODES))
def test_a_mode_owns_its_shapes_signature_and_generator(name, tmp_path):
    mode = modes.get(name)
    spec = mode.patch_spec(48, 24, "uint8")  # on every mode's pattern period (X-Trans: 6)
    assert spec.input == name and spec.bright_shape == (48, 48, 3)
    assert spec.dark_shape == (48 // mode.scale, 48 // mode.scale, mode.channels)
    example = mode.example_file(np.random.default_rng(0), tmp_path)  # the pyfunc's example
    path = tmp_path / ("example.dng" if mode.renders else "example.png")
    path.write_bytes(example)
    photo = mode.load_photo(path, 1.0, ConvertConfig())
    assert photo.unit.dtype == np.float32 and photo.unit.shape[2] == mode.channels
    args = mode.generator_args(ModelConfig(input=name, depth=2, width=4))
    assert args["in_channels"] == mode.channels and args["scale"] == mode.scale


def test_only_amplified_frames_get_the_bayer_input_file():
    bayer, rgb = modes.get("bayer"), modes.get("rgb")
    assert (
        bayer.input_file("Sony/short/00001_00_0.1s", 100.0)
        == "Sony/short/00001_00_0.1s.bayer-signed.png"
    )
    assert bayer.input_file("Sony/long/00001_00_10s", 1.0) is None
    assert rgb.input_file("a", 100.0) is None and rgb.settings() == {}
    with pytest.raises(ConfigError, match="amplify"):
        bayer.check_convert(ConvertConfig(amplify=False))


def test_a_bayer_model_refuses_photos_and_pairs_without_mosaics(tmp_path):
    photo = tmp_path / "x.jpg"
    with pytest.raises(DatasetError, match="enhances RAW files only"):
        modes.get("bayer").load_photo(photo, 1.0, ConvertConfig())
    with pytest.raises(DatasetError, match="no packed Bayer input"):
        modes.get("bayer").check_pairs([{"dark_packed": None}], "pairs.parquet")
    modes.get("rgb").check_pairs([{"dark": "a.jpg"}], "pairs.parquet")


def test_an_rgb_model_decodes_a_raw_with_converts_tone_curve(sony):
    path = sony / "Sony/long/10001_00_10s.dng"
    rgb = modes.get("rgb")
    bt709, dtype, flip, render, _ = rgb.load_photo(path, 1.0, ConvertConfig(curve="bt709"))
    srgb, *_ = rgb.load_photo(path, 1.0, ConvertConfig(curve="srgb"))
    assert dtype == np.uint16 and flip == 0 and render is None
    assert np.abs(bt709 - srgb).mean() > 0.005  # the curve reached LibRaw
