"""Bad input and faults (issue 16): each a clear error naming the file, nothing lost.

Real files, real processes: a monochrome DNG LibRaw reads, empty and two-channel images, name
collisions, a convert killed with SIGKILL, a pairs file pointing outside its folder, broken
model cards. The registry's faults (concurrent promotions, a server killed mid-promotion,
credentials in URIs) are in tests/integration/test_registry_faults.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import DNGVersion, PhotometricInterpretation

from lowlight import stages, storage
from lowlight.config import ModelConfig, Params, TrainConfig, override
from lowlight.conversion import read_manifest

from .conftest import TINY_MODEL, TINY_TRAIN


def write_monochrome_dng(path: Path) -> Path:
    """A LinearRaw DNG of one channel (a monochrome camera), which LibRaw opens."""
    tags = DNGTags()
    tags.set(Tag.ImageWidth, 48)
    tags.set(Tag.ImageLength, 32)
    tags.set(Tag.TileWidth, 48)
    tags.set(Tag.TileLength, 32)
    tags.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Linear_Raw)
    tags.set(Tag.SamplesPerPixel, 1)
    tags.set(Tag.BitsPerSample, 16)
    tags.set(Tag.BlackLevel, 512)
    tags.set(Tag.WhiteLevel, 16383)
    tags.set(Tag.Make, "lowlight")
    tags.set(Tag.Model, "monochrome")
    tags.set(Tag.DNGVersion, DNGVersion.V1_4)
    tags.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    writer = RAW2DNG()
    writer.options(tags, path="", compress=False)
    path.write_bytes(bytes(writer.convert(np.full((32, 48), 2000, np.uint16), filename="")))
    return path


def failed_rows(out: Path) -> dict[str, str]:
    table, _ = read_manifest(out)
    return {r["source"]: r["error"] for r in table.to_pylist() if r["status"] == "failed"}


# 1. any exception of one file is that file's failure ------------------------------------------


def test_a_monochrome_dng_is_a_failed_row_and_the_batch_goes_on(cli, sony, tmp_path):
    write_monochrome_dng(sony / "Sony/short/mono.dng")
    for mode in ("rgb", "bayer"):
        out = tmp_path / f"conv-{mode}"
        result = cli("convert", sony / "Sony", out, "--params", params_file(tmp_path, mode))
        assert result.exit_code == 0, result.output
        failed = failed_rows(out)
        assert list(failed) == ["short/mono.dng"], failed
        assert (
            "short/mono.dng" in failed["short/mono.dng"] or "mono.dng" in failed["short/mono.dng"]
        )
        assert len(list(out.rglob("*.jpg"))) == 9  # every good file converted


def params_file(folder: Path, mode: str) -> Path:
    path = folder / f"params-{mode}.yaml"
    path.write_text(f"model:\n  input: {mode}\n")
    return path


def test_enhance_reports_empty_and_two_channel_images_and_goes_on(cli, tiny_models, tmp_path):
    good = tmp_path / "in/good.png"
    good.parent.mkdir()
    cv2.imwrite(str(good), np.full((20, 24, 3), 40, np.uint8))
    (tmp_path / "in/empty.jpg").write_bytes(b"")
    from PIL import Image  # OpenCV cannot write a grey + alpha PNG

    Image.fromarray(np.full((20, 24, 2), 60, np.uint8), "LA").save(tmp_path / "in/grey_alpha.png")
    cv2.imwrite(str(tmp_path / "in/grey.png"), np.full((20, 24), 60, np.uint8))
    (tmp_path / "in/text.jpg").write_text("not an image")
    result = cli("enhance", tmp_path / "in", "--model", tiny_models, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["good_enhanced.png", "grey_alpha_enhanced.png", "grey_enhanced.png"]
    assert "empty.jpg: empty file" in result.output
    assert "text.jpg: not a readable JPEG/PNG image" in result.output


# 2. output names never collide ----------------------------------------------------------------


def test_enhance_keeps_folders_when_names_collide(cli, tiny_models, tmp_path):
    for camera, level in (("a", 30), ("b", 90)):
        (tmp_path / camera).mkdir()
        cv2.imwrite(str(tmp_path / camera / "IMG_0001.png"), np.full((20, 24, 3), level, np.uint8))
    cv2.imwrite(str(tmp_path / "a/IMG_0001.jpg"), np.full((20, 24, 3), 50, np.uint8))
    # --ratio 1: as they are (auto would expose all three to one level)
    result = cli("enhance", tmp_path / "a", tmp_path / "b", "--model", tiny_models,
                 "--out", tmp_path / "out", "--ratio", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert out == ["a/IMG_0001_jpg_enhanced.png", "a/IMG_0001_png_enhanced.png",
                   "b/IMG_0001_enhanced.png"]  # fmt: skip
    means = {p: cv2.imread(str(tmp_path / "out" / p)).mean() for p in out}
    assert len(set(means.values())) == 3  # three different images, none overwritten


def test_convert_gives_same_stem_files_their_own_outputs(cli, sony, tmp_path):
    shorts = sony / "Sony/short"
    shutil.copy(shorts / "00001_00_0.1s.dng", shorts / "IMG_1.dng")
    shutil.copy(shorts / "10001_00_0.1s.dng", shorts / "IMG_1.DNG")
    result = cli("convert", sony / "Sony", tmp_path / "conv", "--ratio", "10")
    assert result.exit_code == 0, result.output
    table, _ = read_manifest(tmp_path / "conv")
    rows = {r["source"]: r for r in table.to_pylist()}
    assert rows["short/IMG_1.dng"]["output"] == "short/IMG_1.dng.jpg"
    assert rows["short/IMG_1.DNG"]["output"] == "short/IMG_1.DNG.jpg"
    outputs = [r["output"] for r in rows.values()]
    assert len(outputs) == len(set(outputs)) == 11
    assert all((tmp_path / "conv" / o).exists() for o in outputs)


# 5. gains are finite, positive and capped -----------------------------------------------------


@pytest.mark.parametrize("ratio", ["-5", "0", "nan", "inf", "1e9"])
def test_bad_ratios_are_refused_in_one_line(cli, sony, tiny_models, tmp_path, ratio):
    photo = sony / "Sony/short/00001_00_0.1s.dng"
    result = cli("enhance", photo, "--model", tiny_models, "--ratio", ratio,
                 "--out", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--ratio" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    result = cli("convert", sony / "Sony", tmp_path / "conv", "--ratio", ratio)
    assert result.exit_code == 1 and "convert.ratio" in result.output


# 6. a refused resume leaves the finished run alone; a torn checkpoint is one line ------------


def test_refused_resume_keeps_the_run_finished(cli, tiny_patches, tmp_path):
    import mlflow

    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"model": TINY_MODEL, "train": TINY_TRAIN,
                                  "mlflow": {"tracking_uri": db}}))  # fmt: skip
    models = tmp_path / "models"
    assert cli("train", tiny_patches, models, "--params", params).exit_code == 0
    run_id = json.loads((models / "generator.json").read_text())["mlflow_run_id"]
    params.write_text(json.dumps({"model": {**TINY_MODEL, "width": 8}, "train": TINY_TRAIN,
                                  "mlflow": {"tracking_uri": db}}))  # fmt: skip
    result = cli("train", tiny_patches, models, "--params", params, "--resume")
    assert result.exit_code == 1 and "other model/train params" in result.output
    assert mlflow.MlflowClient(db).get_run(run_id).info.status == "FINISHED"

    checkpoint = tmp_path / "checkpoints/models/last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # a kill during a copy
    result = cli("train", tiny_patches, models, "--params", params, "--resume")
    assert result.exit_code == 1 and "unreadable checkpoint" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


# 7. a killed convert leaves nothing behind and its finished work is reused --------------------


def test_kill_9_during_convert_then_rerun_reuses_finished_files(tmp_path):
    raw = tmp_path / "raw"
    stages.synth.run(override(Params().synth, "synth", scenes=12, size="256x384", frames=2),
                     raw, seed=0)  # fmt: skip
    out = tmp_path / "conv"
    command = [sys.executable, "-m", "lowlight.cli", "convert", str(raw / "Sony"), str(out)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    done: list[Path] = []
    while time.monotonic() < deadline and len(done) < 6 and process.poll() is None:
        time.sleep(0.05)
        done = list(tmp_path.glob(".conv.staging-*/**/*.jpg"))
    assert process.poll() is None, "convert finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(tmp_path.glob(".conv.staging-*")) and not out.exists()

    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    skipped = int(next(line.split()[-2] for line in result.stdout.splitlines()
                       if "skipped_unchanged" in line))  # fmt: skip
    assert skipped >= 5
    assert not list(tmp_path.glob(".conv.staging-*")), "stale staging folders left"
    assert not list(out.rglob(".*journal*")) and not list(tmp_path.glob(f"*{storage.OWNER}"))
    table, _ = read_manifest(out)
    assert table.num_rows == 36 and {r["status"] for r in table.to_pylist()} == {"ok"}


def test_a_dead_runs_staging_folder_is_removed_by_the_next_patch(tiny_patches, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    out = tmp_path / "patches"
    stale = tmp_path / ".patches.staging-killed"
    stale.mkdir()
    storage.owner_file(stale).write_text(f"{os.uname().nodename} {dead.pid}\n")
    (stale / "part-0.parquet").write_bytes(b"half written")
    alive = tmp_path / ".patches.staging-running"
    alive.mkdir()
    storage.owner_file(alive).write_text(f"{os.uname().nodename} {os.getpid()}\n")
    p = Params()
    cfg = override(p.patch, "patch", size=16, stride=8, row_group=16)
    stages.patch.run(cfg, tiny_patches.parent / "pairs.parquet", out, seed=0)
    assert not stale.exists() and not storage.owner_file(stale).exists()
    assert alive.exists() and (out / "train").is_dir()
    assert storage.owner_file(alive).exists()  # a live run's folder is left alone


# 8. identical runs write identical bytes ------------------------------------------------------


def test_two_identical_trainings_write_byte_identical_generators(tiny_patches, tmp_path):
    from lowlight.train import BEST, fit

    for name in ("a", "b"):
        fit(ModelConfig(**TINY_MODEL), TrainConfig(**TINY_TRAIN), tiny_patches, tmp_path / name, 0)
    assert (tmp_path / "a" / BEST).read_bytes() == (tmp_path / "b" / BEST).read_bytes()


# 9. a pairs file cannot point outside its converted folder ------------------------------------


@pytest.mark.parametrize("path", ["/etc/hostname", "../../outside.png", "short/../../x.png"])
def test_pairs_paths_must_stay_inside_the_converted_folder(tiny_patches, tmp_path, path):
    source = tiny_patches.parent / "pairs.parquet"
    table = pq.read_table(source)
    darks = table.column("dark").to_pylist()
    darks[0] = path
    bad = table.set_column(table.schema.get_field_index("dark"), "dark", pa.array(darks))
    pq.write_table(bad.replace_schema_metadata(table.schema.metadata), tmp_path / "pairs.parquet")
    p = Params()
    cfg = override(p.patch, "patch", size=16, stride=8)
    with pytest.raises(Exception, match="leaves the converted folder") as info:
        stages.patch.run(cfg, tmp_path / "pairs.parquet", tmp_path / "patches", seed=0)
    assert str(tmp_path / "pairs.parquet") in str(info.value) and path in str(info.value)
    assert not (tmp_path / "patches").exists()


# 10. the model card is validated --------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"arguments": {"width": 100000}}, "arguments.width must be an integer in [4, 256]"),
        ({"arguments": {"depth": "four"}}, "arguments.depth must be an integer"),
        ({"arguments": {"residual": "yes"}}, "arguments.residual must be true or false"),
        ({"architecture": "os.system"}, "architecture 'os.system'"),
        ({"arguments": {"width": 8}}, "weights do not match generator.json"),
        ({"patch_size": "big"}, "patch_size"),
    ],
)
def test_a_bad_model_card_is_one_line(cli, tiny_models, tmp_path, change, message):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    card = json.loads((models / "generator.json").read_text())
    for key, value in change.items():
        card[key] = {**card[key], **value} if isinstance(value, dict) else value
    (models / "generator.json").write_text(json.dumps(card))
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((20, 24, 3), 40, np.uint8))
    result = cli("enhance", image, "--model", models, "--out", tmp_path / "out")
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_bad_json_and_torn_weights_are_one_line(cli, tiny_models, tmp_path):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((20, 24, 3), 40, np.uint8))
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    (models / "generator.json").write_text("{not json")
    result = cli("enhance", image, "--model", models, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "not valid JSON" in result.output
    shutil.copy(tiny_models / "generator.json", models / "generator.json")
    weights = models / "generator.pt"
    weights.write_bytes(weights.read_bytes()[:500])
    result = cli("enhance", image, "--model", models, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "not a readable generator state dict" in result.output


# 11. patches cover every pixel ----------------------------------------------------------------


def test_a_stride_above_the_patch_size_is_refused(cli, tiny_patches, tmp_path):
    pairs = tiny_patches.parent / "pairs.parquet"
    result = cli("patch", pairs, tmp_path / "p", "--stride", "500", "--size", "16")
    assert result.exit_code == 1 and "stride (500) must not exceed size (16)" in result.output
    assert not (tmp_path / "p").exists()


# 12. what is left out is named; a missing file is "not found" ---------------------------------


def test_folders_named_like_raws_and_link_loops_are_named(cli, sony, tmp_path, caplog):
    (sony / "Sony/short/x.dng").mkdir()
    (sony / "Sony/short/loop").symlink_to(sony / "Sony")
    (sony / "Sony/short/broken.dng").symlink_to(tmp_path / "nowhere.dng")
    with caplog.at_level("WARNING"):
        result = cli("convert", sony / "Sony", tmp_path / "conv")
    assert result.exit_code == 0, result.output
    text = caplog.text
    assert "x.dng: skipped, a folder" in text and "broken.dng: skipped, a broken link" in text
    assert "loop: skipped, a link loop" in text
    table, _ = read_manifest(tmp_path / "conv")
    assert table.num_rows == 9  # each file once, not once per trip around the loop


def test_missing_and_truncated_files_say_what_they_are(cli, sony, tiny_models, tmp_path):
    truncated = tmp_path / "cut.dng"
    truncated.write_bytes((sony / "Sony/short/00001_00_0.1s.dng").read_bytes()[:300])
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((20, 24, 3), 40, np.uint8))
    result = cli("enhance", tmp_path / "missing.ARW", truncated, image, "--model", tiny_models,
                 "--out", tmp_path / "out", "--ratio", "10")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "missing.ARW: not found" in result.output
    assert "cut.dng" in result.output and "truncated or not a RAW file" in result.output
