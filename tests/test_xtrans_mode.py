"""model.input xtrans (issue 26): SID's Fuji packing through the mode at every phase LibRaw
reports, windows on the 6x6 period, the synthetic X-T2 in SID's Fuji layout, a tiny pipeline
synth -> convert -> pair -> patch -> train -> enhance, model choice by sensor layout, and the
refusals of a file of the other layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import rawpy

from lowlight import card, imageio, modes, noise, sid, stages
from lowlight.config import (
    ConvertConfig,
    InferConfig,
    MlflowConfig,
    ModelConfig,
    Params,
    TrainConfig,
    override,
)
from lowlight.dng import DngMeta, write_dng
from lowlight.errors import ConfigError, RawDecodeError
from lowlight.patches import read_row_group, scan
from lowlight.xtrans import XTRANS_ORDER, unpack_xtrans, xtrans_pattern
from tests.conftest import TINY_MODEL, TINY_TRAIN
from tests.test_bayer import write_camera_dng

FUJI = noise.load_profile("FujiXT2")
XT2 = xtrans_pattern(FUJI.cfa)
XTRANS, BAYER = modes.get("xtrans"), modes.get("bayer")
SIZE = "50x76"  # even, not a multiple of 6: packing drops the last 2 rows and 4 columns
LEVEL = {"R": 3000, "G": 6000, "B": 9000}  # DN above black, one per colour


def xtrans_dng(path: Path, phase: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A 24x30 X-Trans DNG whose pattern starts ``phase`` into the X-T2's: each colour at its own
    level plus noise, one pixel below black. Returns the mosaic."""
    colors = np.roll(XT2.colors, (-phase[0], -phase[1]), axis=(0, 1))
    letters = "".join("RGB"[c] for c in colors.ravel())
    levels = np.array([LEVEL[c] for c in "RGB"])[np.tile(colors, (4, 5))]
    mosaic = (FUJI.black_level + levels + rng.integers(-40, 40, levels.shape)).astype(np.uint16)
    mosaic[1, 1] = FUJI.black_level - 30  # read noise below black
    meta = DngMeta(FUJI.black_level, FUJI.white_level, (0.5, 1.0, 0.7), 0.1, 3200,
                   make="Acme", model="X 1", cfa=letters)  # fmt: skip
    write_dng(path, mosaic, meta)
    return mosaic


def test_packing_through_the_mode_round_trips_at_every_phase_libraw_reports(tmp_path):
    rng = np.random.default_rng(0)
    span = FUJI.white_level - FUJI.black_level
    expected = np.array([LEVEL[c] / span for c in XTRANS_ORDER], np.float32)
    for phase in [(dy, dx) for dy in range(6) for dx in range(6)]:
        path = tmp_path / f"DSCF{phase[0]}{phase[1]}.dng"
        mosaic = xtrans_dng(path, phase, rng)
        photo = XTRANS.load_photo(path, 1.0, ConvertConfig())
        assert photo.unit.shape == (8, 10, 9) and photo.unit.dtype == np.float32
        with rawpy.imread(str(path)) as raw:  # the phase LibRaw reports, not the one written
            pattern = xtrans_pattern(raw.raw_colors_visible, raw.color_desc)
        signal = (mosaic.astype(np.float32) - FUJI.black_level) / span
        np.testing.assert_allclose(unpack_xtrans(photo.unit, pattern), signal, atol=1e-6)
        # the channels mean R, R, G, G, G, G, G, B, B whatever the phase
        np.testing.assert_allclose(np.median(photo.unit, axis=(0, 1)), expected, atol=1e-3)
        assert photo.unit.min() == pytest.approx(-30 / span)  # below black kept (issue 23)
    # convert's packed file keeps the 9 channels, each a 3x3 cell of a grey 16-bit PNG
    imageio.write_packed(tmp_path / "x.xtrans-signed.png", photo.unit)
    stored = cv2.imread(str(tmp_path / "x.xtrans-signed.png"), cv2.IMREAD_UNCHANGED)
    assert stored.shape == (24, 30) and stored.dtype == np.uint16
    back = imageio.decode_signed16(XTRANS.read_input(tmp_path / "x.xtrans-signed.png", ""))
    np.testing.assert_allclose(back, photo.unit, atol=1 / 32767)


def test_the_mode_owns_its_shape_skip_and_size_rule():
    assert (XTRANS.channels, XTRANS.scale, XTRANS.period, XTRANS.augmentable) == (9, 3, 6, False)
    args = XTRANS.generator_args(ModelConfig(input="xtrans", residual=True))
    assert args["skip"] == [[0.5, 0.5] + [0.0] * 7, [0.0] * 2 + [0.2] * 5 + [0.0] * 2,
                            [0.0] * 7 + [0.5, 0.5]]  # fmt: skip
    spec = XTRANS.patch_spec(48, 24)
    assert spec.dark_shape == (16, 16, 9) and spec.bright_shape == (48, 48, 3)
    for size, stride in ((32, 16), (48, 21), (45, 24)):
        with pytest.raises(ConfigError, match="divisible by 6 .*6x6 period"):
            XTRANS.patch_spec(size, stride)


def test_a_file_of_the_other_layout_is_refused_in_one_line(tmp_path):
    xtrans_file = tmp_path / "DSCF0001.dng"
    xtrans_dng(xtrans_file, (0, 0), np.random.default_rng(1))
    bayer_file = tmp_path / "IMG_0001.dng"
    write_camera_dng(bayer_file, "RGGB")
    with pytest.raises(RawDecodeError) as refused:
        BAYER.load_photo(xtrans_file, 1.0, ConvertConfig())
    assert str(refused.value) == (
        f"{xtrans_file}: cannot pack the mosaic: the sensor is X-Trans, not Bayer: "
        "model.input bayer packs Bayer mosaics only; use model.input xtrans"
    )
    with pytest.raises(RawDecodeError) as refused:
        XTRANS.load_photo(bayer_file, 1.0, ConvertConfig())
    assert str(refused.value) == (
        f"{bayer_file}: cannot pack the mosaic: the sensor is Bayer, not X-Trans: "
        "model.input xtrans packs X-Trans mosaics only; use model.input bayer"
    )
    with pytest.raises(Exception, match="xtrans model enhances RAW files only"):
        XTRANS.load_photo(tmp_path / "photo.jpg", 1.0, ConvertConfig())


def test_the_model_is_chosen_by_the_files_own_sensor_layout(tmp_path):
    xtrans_dng(tmp_path / "DSCF0001.dng", (2, 3), np.random.default_rng(2))
    write_camera_dng(tmp_path / "IMG_0001.dng", "GRBG")
    (tmp_path / "broken.RAF").write_bytes(b"not a raw file")
    assert modes.for_file(tmp_path / "DSCF0001.dng") == "xtrans"
    assert modes.for_file(tmp_path / "IMG_0001.dng") == "bayer"
    assert modes.for_file(tmp_path / "broken.RAF") == "bayer"  # fails there, with its reason
    assert modes.for_file(tmp_path / "photo.jpg") == "rgb"
    assert modes.KINDS["xtrans"] == "X-Trans RAW"


def test_synth_fuji_xt2_writes_sids_fuji_layout_that_libraw_reads_as_x_trans(cli, tmp_path):
    result = cli("synth", "raw", "--profile", "FujiXT2", "--scenes", "3", "--size", "24x36",
                 "--frames", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [
        ".lowlight-output.json", "Fuji", "Fuji_test_list.txt", "Fuji_train_list.txt",
        "Fuji_val_list.txt"]  # fmt: skip
    line = (tmp_path / "raw/Fuji_test_list.txt").read_text().split()
    assert line[:2] == ["./Fuji/short/10001_00_0.1s.dng", "./Fuji/long/10001_00_10s.dng"]
    assert line[2].startswith("ISO") and line[3].startswith("F") and len(line) == 4
    for name in ("short/10001_00_0.1s.dng", "long/10001_00_10s.dng"):
        with rawpy.imread(str(tmp_path / "raw/Fuji" / name)) as raw:
            np.testing.assert_array_equal(raw.raw_pattern, XT2.colors)  # 6x6: X-Trans
            assert list(raw.black_level_per_channel) == [1024] * 4 and raw.white_level == 16383
            assert raw.raw_image_visible.shape == (24, 36)
            np.testing.assert_allclose(raw.rgb_xyz_matrix[:3], FUJI.xyz_to_camera, atol=1e-4)
    # SID's own Fuji lines (.RAF) parse as the Sony ones do
    entry = sid.parse_list_line(
        "./Fuji/short/10003_00_0.1s.RAF ./Fuji/long/10003_00_10s.RAF ISO1000 F8", "test"
    )
    assert (entry.short, entry.long, entry.iso) == ("10003_00_0.1s", "10003_00_10s", 1000)
    assert sid.parse_name("10003_00_0.1s.RAF") == sid.SidName("10003", 0, 0.1)
    result = cli("synth", "jpg", "--profile", "FujiXT2", "--output", "jpeg")
    assert result.exit_code == 1 and "profile FujiXT2 is X-Trans: use output dng" in result.output


@pytest.fixture(scope="module")
def xtrans_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synth FujiXT2 -> convert -> pair -> patch (24, stride 24) -> one tiny training epoch of
    a residual network whose skip, a linear demosaic, is learned with it."""
    root = tmp_path_factory.mktemp("xtrans")
    p = Params()
    synth = override(p.synth, "synth", scenes=3, size=SIZE, frames=1, profile="FujiXT2")
    stages.synth.run(synth, root / "raw", seed=0)
    stages.convert.run(p.convert, root / "raw/Fuji", root / "conv", mode="xtrans")
    stages.pair.run(p.pair, root / "conv", root / "pairs.parquet")
    cfg = override(p.patch, "patch", size=24, stride=24, row_group=8)
    stages.patch.run(cfg, root / "pairs.parquet", root / "patches", seed=0, mode="xtrans")
    stages.train.run(
        ModelConfig(input="xtrans", residual=True, skip_upsample="learned", **TINY_MODEL),
        TrainConfig(**{**TINY_TRAIN, "batch_size": 2}),
        MlflowConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}"),
        root / "patches",
        root / "models",
        root / "reports",
        seed=0,
    )
    return root


def test_convert_pair_and_patch_keep_the_six_by_six_period(xtrans_run):
    manifest = pq.read_table(xtrans_run / "conv/converted.parquet").to_pylist()
    shorts = [r for r in manifest if r["gain"] > 1]
    assert len(shorts) == 3 and all(r["status"] == "ok" for r in manifest)
    assert all(r["packed"].endswith(".xtrans-signed.png") for r in shorts)
    assert all(r["width"] == 76 and r["height"] == 50 for r in manifest)  # LINEAR under 512 px
    pairs = pq.read_table(xtrans_run / "pairs.parquet").to_pylist()
    assert {r["split"] for r in pairs} == {"train", "test", "val"}
    spec, groups = scan(xtrans_run / "patches/train")
    assert spec.input == "xtrans" and spec.dark_shape == (8, 8, 9)
    train = [r for r in pairs if r["split"] == "train"][0]
    packed = XTRANS.read_input(xtrans_run / "conv" / train["dark_packed"], "")
    assert packed.shape == (16, 24, 9)  # 48x72 of the 50x76 frame: whole 6x6 blocks
    dark, bright, table = read_row_group(groups[0], spec)
    starts = list(zip(table.column("y").to_pylist(), table.column("x").to_pylist(), strict=True))
    # packed windows of 8 at stride 8 over 16x24: whole 6x6 blocks, the last at the edge
    assert starts == [(0, 0), (0, 24), (0, 48), (24, 0), (24, 24), (24, 48)]
    for (y, x), window in zip(starts, dark, strict=True):
        np.testing.assert_array_equal(window, packed[y // 3 : y // 3 + 8, x // 3 : x // 3 + 8])
    assert bright.shape == (6, 24, 24, 3)


def test_an_xtrans_model_trains_and_enhances_each_file_by_its_layout(
    xtrans_run, tmp_path, monkeypatch
):
    models = xtrans_run / "models"
    assert card.ModelCard.load(models).input == "xtrans"
    assert card.ModelCard.load(models).arguments["scale"] == 3
    dark = xtrans_run / "raw/Fuji/short/10001_00_0.1s.dng"
    camera = tmp_path / "IMG_0042.dng"
    write_camera_dng(camera, "GRBG")
    # the training's store: already made (a new one takes seconds of migrations)
    mlflow_cfg = MlflowConfig(tracking_uri=f"sqlite:///{xtrans_run / 'mlflow.db'}")
    infer = InferConfig(tile=16, overlap=8)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def enhance(*files: Path, model: str | None = None) -> dict:
        inputs = [str(f) for f in files]
        out = tmp_path / "out"
        return stages.enhance.run(ConvertConfig(), infer, mlflow_cfg, model, inputs, out, 100.0)

    # the X-Trans model by name: the Bayer file is refused in one line, the batch goes on
    summary = enhance(dark, camera, model=str(models))
    assert summary["enhanced"] == 1 and summary["failed"] == 1
    assert "the sensor is Bayer, not X-Trans" in summary["failed_files"][0]
    out = cv2.imread(str(tmp_path / "out/10001_00_0.1s_enhanced.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (48, 72, 3) and out.dtype == np.uint16  # x3 of the packed frame

    # no model named and no X-Trans model shipped: that file fails, the Bayer one goes to the
    # shipped Bayer model
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    (shipped / "bayer").symlink_to(card.SHIPPED / "bayer")
    monkeypatch.setattr(card, "SHIPPED", shipped)
    shutil.rmtree(tmp_path / "out")
    summary = enhance(dark, camera)
    assert summary["enhanced"] == 1 and summary["failed"] == 1
    assert summary["failed_files"][0].startswith(f"{dark}: no model for X-Trans RAW files: ")
    assert "lowlight ships no xtrans model" in summary["failed_files"][0]
    assert (tmp_path / "out/IMG_0042_enhanced.png").exists()

    # with an X-Trans model shipped, each file goes to the model of its own layout
    (shipped / "xtrans").symlink_to(models)
    shutil.rmtree(tmp_path / "out")
    summary = enhance(dark, camera)
    assert summary["enhanced"] == 2 and summary["failed"] == 0
    assert summary["model"] == (
        f"X-Trans RAW: shipped ({shipped / 'xtrans'}); RAW: shipped ({shipped / 'bayer'})"
    )
    by_layout = cv2.imread(str(tmp_path / "out/10001_00_0.1s_enhanced.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(by_layout, out)  # the same X-Trans model's output


def test_an_xtrans_model_exports_to_onnx_and_int8_with_its_learned_skip(xtrans_run, tmp_path):
    import torch

    from lowlight.export import export_onnx
    from lowlight.inference import load_model
    from lowlight.models.unet import skip_weights

    models = xtrans_run / "models"
    assert card.ModelCard.load(models).arguments["skip_upsample"] == "learned"
    trained = torch.load(models / card.WEIGHTS, weights_only=True)["skip_weight"]
    start = skip_weights(modes.get("xtrans").skip, 3, "bilinear")
    assert trained.shape == start.shape and not torch.equal(trained, start)  # it learned
    export_onnx(models, tmp_path / "f.onnx")
    export_onnx(models, tmp_path / "q.onnx", int8=True, calibration=xtrans_run / "patches/train")
    torch_fn, _ = load_model(models, "cpu")
    tiles = np.random.default_rng(0).random((1, 9, 10, 14), dtype=np.float32)
    expected = torch_fn(tiles)
    assert expected.shape == (1, 3, 30, 42)
    np.testing.assert_allclose(load_model(tmp_path / "f.onnx")[0](tiles), expected, atol=1e-4)
    # the skip, its edge padding and the head stay float: int8 only inside the U-Net
    quantized = load_model(tmp_path / "q.onnx")[0](tiles)
    assert np.abs(quantized - expected).mean() < 0.05
