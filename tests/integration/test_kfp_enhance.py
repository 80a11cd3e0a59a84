"""Issue 22, point 4: the Kubeflow `enhance` pipeline end to end on this machine. README's
command, as written, runs it with kfp.local over a real moto S3 folder of synthetic DNGs, a
truncated one, a JPEG and an X-Trans DNG, with a tiny model registered as champion of the RAW
and the sRGB names (none of the X-Trans one): each file goes to its kind's champion, as
`lowlight enhance` sends it (issues 24 and 26); the PNGs in S3 are `lowlight enhance`'s, the
manifest says ok or failed and which version for each file, two shards ran."""

from __future__ import annotations

import json
import shlex

import boto3
import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from lowlight import stages, storage
from lowlight.config import EvaluateConfig, MlflowConfig, RegisterConfig

from ..conftest import one_line_error, readme_block
from .test_registry import INFER

pytestmark = pytest.mark.slow

BUCKET = "lowlight"  # README's example's bucket


def register_champion(tiny_models, tmp_path, store: str, names=("lowlight",)) -> None:
    """The tiny model evaluated and registered as champion of each of ``names`` in ``store``."""
    import mlflow

    models = tmp_path / "models"
    models.mkdir()
    for name in ("generator.pt", "generator.json"):
        (models / name).write_bytes((tiny_models / name).read_bytes())
    backend = MlflowConfig(tracking_uri=store)
    pairs = tiny_models.parent / "pairs.parquet"
    stages.evaluate.run(EvaluateConfig(), INFER, backend, models, pairs, None, tmp_path / "reports")
    # the card names the fixture's training run, in another store: give it one in this store
    card = json.loads((models / "generator.json").read_text())
    card["mlflow_run_id"] = mlflow.MlflowClient(store).create_run("0").info.run_id
    (models / "generator.json").write_text(json.dumps(card))
    for name in names:
        register = RegisterConfig(model_name=name, baseline_margin=-100.0)
        assert stages.register.run(register, INFER, backend, models, tmp_path / "reports")[
            "gate_passed"
        ]


def xtrans_dng(folder):
    """A tiny synthetic Fujifilm X-T2 DNG (X-Trans: LibRaw reads its 6x6 pattern)."""
    from lowlight import synth
    from lowlight.config import SynthConfig

    photos = dict(synth.load_photos(None))
    plan = synth.ScenePlan("10009", "test", 0, 10.0, 0.1, 1600)
    synth.write_scene(folder / "xt2", plan, photos["astronaut.png"], (48, 72), 1, 0,
                      profile="FujiXT2", capture=SynthConfig(profile="FujiXT2"))  # fmt: skip
    return next((folder / "xt2/short").iterdir())


def run_readme_command(cli, start: str):
    """README's block, as written: its one `lowlight ...` command (continued lines joined)."""
    command = readme_block(start).replace("\\\n", " ").strip()
    args = shlex.split(command)
    assert args[0] == "lowlight"
    return cli(*args[1:])


def test_enhance_pipeline_writes_pngs_and_a_manifest_to_s3(tiny_models, sony, s3_bucket, cli,
                                                            tmp_path, monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register_champion(tiny_models, tmp_path, store, ("lowlight", "lowlight-srgb"))
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"infer": INFER.model_dump(), "mlflow": {"tracking_uri": store}})
    )
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    dngs = sorted((sony / "Sony/short").glob("*.dng"))[:3]
    for dng in dngs:
        s3.upload_file(str(dng), BUCKET, f"photos/{dng.name}")
    whole = dngs[0].read_bytes()
    s3.put_object(Bucket=BUCKET, Key="photos/broken.dng", Body=whole[: len(whole) // 2])
    dark = (np.random.default_rng(0).random((40, 56, 3)) * 60).astype(np.uint8)
    assert cv2.imwrite(str(tmp_path / "phone.jpg"), dark)
    s3.upload_file(str(tmp_path / "phone.jpg"), BUCKET, "photos/phone.jpg")
    s3.upload_file(str(xtrans_dng(tmp_path)), BUCKET, "photos/fuji.dng")

    # a model or folder that is not there: one line at once, not the list step's retries
    folders = ["--param", f"source=s3://{BUCKET}/photos", "--param", f"output=s3://{BUCKET}/x"]
    result = cli("pipeline", "run-local", "--pipeline", "enhance", *folders,
                 "--param", "model=models:/lowlight@nobody")  # fmt: skip
    one_line_error(result, "models:/lowlight@nobody: no version of 'lowlight' is nobody")
    folders[1] = f"source=s3://{BUCKET}/nothing"
    one_line_error(cli("pipeline", "run-local", "--pipeline", "enhance", *folders), "not found")
    assert not (tmp_path / "kfp-local").exists()

    result = run_readme_command(cli, "lowlight pipeline run-local --pipeline enhance")
    assert result.exit_code == 0, result.output

    # one manifest: an ok row per good DNG and the JPEG, each by its kind's champion; a failed
    # row with its error for the truncated DNG, and for the X-Trans one (no model of its kind)
    fs, path = storage.resolve(f"s3://{BUCKET}/enhanced/manifest.parquet")
    rows = {r["source"]: r for r in pq.read_table(path, filesystem=fs).to_pylist()}
    photos = ["broken.dng", "fuji.dng", "phone.jpg"] + [d.name for d in dngs]
    assert set(rows) == {f"s3://{BUCKET}/photos/{n}" for n in photos}
    fuji = rows.pop(f"s3://{BUCKET}/photos/fuji.dng")
    assert fuji["status"] == "failed" and fuji["model"] == ""
    assert fuji["error"].startswith(f"s3://{BUCKET}/photos/fuji.dng: no registered model for "
                                    "X-Trans RAW files")  # fmt: skip
    phone = rows.pop(f"s3://{BUCKET}/photos/phone.jpg")
    assert phone["status"] == "ok" and phone["model"] == "models:/lowlight-srgb/1"
    assert {r["model"] for r in rows.values()} == {"models:/lowlight/1"}  # the champion, pinned
    broken = rows.pop(f"s3://{BUCKET}/photos/broken.dng")
    assert broken["status"] == "failed" and broken["output"] == ""
    assert broken["error"].startswith(f"s3://{BUCKET}/photos/broken.dng")
    assert "\n" not in broken["error"] and "/tmp/" not in broken["error"]
    assert all(r["status"] == "ok" and r["error"] == "" and r["gain"] > 1 for r in rows.values())

    # each PNG in S3 is what `lowlight enhance` writes for the same file with the same model
    assert cli("enhance", *dngs, "--model", "models:/lowlight/1", "--out", "cli").exit_code == 0
    assert cli("enhance", "phone.jpg", "--model", "models:/lowlight-srgb/1",
               "--out", "cli").exit_code == 0  # fmt: skip
    for photo, row in [(d, rows[f"s3://{BUCKET}/photos/{d.name}"]) for d in dngs] + [
        (tmp_path / "phone.jpg", phone)
    ]:
        assert row["output"] == f"s3://{BUCKET}/enhanced/{photo.stem}_enhanced.png"
        served = cv2.imdecode(np.frombuffer(storage.read_bytes(row["output"]), np.uint8),
                              cv2.IMREAD_UNCHANGED)  # fmt: skip
        expected = cv2.imread(f"cli/{photo.stem}_enhanced.png", cv2.IMREAD_UNCHANGED)
        assert served.dtype == expected.dtype and served.shape == expected.shape
        top = np.iinfo(served.dtype).max
        assert np.abs(served.astype(int) - expected.astype(int)).max() <= max(1, top // 255)

    # two shards ran, each with its share; the summary names the pinned versions
    runs = sorted((tmp_path / "kfp-local/pipeline_root").glob("lowlight-enhance-*"))
    assert len(runs) == 1
    shards = sorted(runs[0].glob("for-loop-*/enhance-shard/rows"))
    assert [pq.read_table(s).num_rows for s in shards] == [3, 3]
    summary = (runs[0] / "enhance-collect/summary").read_text()
    assert ("| model | RAW: models:/lowlight/1; JPEG/PNG: models:/lowlight-srgb/1 |" in summary
            and "| failed | 2 |" in summary)  # fmt: skip
    assert f"failed_files: s3://{BUCKET}/photos/broken.dng: " in result.output  # named
