import numpy as np
import pyarrow.parquet as pq
import pytest

from lowlight import stages
from lowlight.config import Params
from lowlight.modes import MODES
from lowlight.patches import PatchWriter, iter_patches, scan


def write_patches(folder, count, row_group=8, part_rows=16, size=8, seed=0):
    rng = np.random.default_rng(seed)
    spec = MODES["rgb"].patch_spec(size, size // 2, "uint8", pairs_sha256="abc")
    dark = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    bright = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    starts = np.stack([np.arange(count), np.zeros(count)], 1).astype(np.int32)
    with PatchWriter(folder, spec, row_group, part_rows) as writer:
        writer.add("00001_00_0.1s", "00001", 100.0, starts, dark, bright)
    return spec, dark, bright, writer


def test_writer_schema_metadata_row_groups_and_parts(tmp_path):
    spec, dark, bright, writer = write_patches(tmp_path, 40)
    assert writer.rows == 40 and len(writer.parts) == 3  # 16 + 16 + 8
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    meta = pq.ParquetFile(tmp_path / "part-00000.parquet").metadata
    assert meta.num_row_groups == 2 and meta.row_group(0).num_rows == 8
    assert meta.row_group(0).column(5).compression == "ZSTD"
    schema = pq.read_schema(tmp_path / "part-00000.parquet")
    assert schema.names[:7] == ["pair_id", "scene_id", "ratio", "y", "x", "dark", "bright"]
    assert schema.remove_metadata() == spec.schema().remove_metadata()
    read_spec, groups = scan(tmp_path)
    assert read_spec == spec and sum(g.rows for g in groups) == 40
    keys = {k.decode() for k in schema.metadata}
    for key in ("size", "stride", "dtype", "channels", "pairs_sha256", "lowlight_version"):
        assert f"lowlight.{key}" in keys
    back = list(iter_patches(tmp_path))
    assert all(
        np.array_equal(d, dark[i]) and np.array_equal(b, bright[i]) for i, (d, b) in enumerate(back)
    )


def test_same_input_same_bytes(tmp_path):
    write_patches(tmp_path / "a", 20)
    write_patches(tmp_path / "b", 20)
    for part in (tmp_path / "a").iterdir():
        assert part.read_bytes() == (tmp_path / "b" / part.name).read_bytes()


def test_failure_mid_write_leaves_no_partial_part(tmp_path):
    spec = MODES["rgb"].patch_spec(8, 4)
    window = np.zeros((12, 8, 8, 3), np.uint8)
    starts = np.zeros((12, 2), np.int32)
    with pytest.raises(RuntimeError, match="boom"), PatchWriter(tmp_path, spec, 4, 100) as writer:
        writer.add("p", "s", 1.0, starts, window, window)  # three row groups are in the file
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_patch_stage_skips_bad_pairs_and_counts(sony, tmp_path, caplog):
    p = Params()
    conv = tmp_path / "conv"
    stages.convert.run(p.convert, sony / "Sony", conv)
    stages.pair.run(p.pair.model_copy(update={"select": "all"}), conv, tmp_path / "pairs.parquet")
    cfg = p.patch.model_copy(update={"size": 16, "stride": 8})
    good = stages.patch.run(cfg, tmp_path / "pairs.parquet", tmp_path / "p1", seed=0)
    # 32x48 frames, 16/8 windows: 3 x 5 = 15 per pair; two train and two val pairs
    assert (good["train_patches"], good["val_patches"], good["skipped"]) == (30, 30, 0)

    (conv / "short/00001_00_0.1s.jpg").unlink()  # a train pair loses its dark image
    from lowlight.imageio import read_image, write_image

    val_dark = conv / "short/20001_00_0.1s.jpg"
    write_image(val_dark, read_image(val_dark)[:, :40].copy(), "jpeg")  # size mismatch
    bad = stages.patch.run(cfg, tmp_path / "pairs.parquet", tmp_path / "p2", seed=0)
    assert (bad["train_patches"], bad["val_patches"], bad["skipped"]) == (15, 15, 2)
    assert "00001_00_0.1s.jpg: missing or unreadable image" in caplog.text
    assert "is 40x32 but" in caplog.text


def test_max_per_image_is_a_seeded_subset(sony, tmp_path):
    p = Params()
    stages.convert.run(p.convert, sony / "Sony", tmp_path / "conv")
    stages.pair.run(p.pair, tmp_path / "conv", tmp_path / "pairs.parquet")
    cfg = p.patch.model_copy(update={"size": 16, "stride": 8, "max_per_image": 4})
    runs = [
        stages.patch.run(cfg, tmp_path / "pairs.parquet", tmp_path / f"o{i}", seed=3)
        for i in (1, 2)
    ]
    assert runs[0]["train_patches"] == 4
    a = (tmp_path / "o1/train/part-00000.parquet").read_bytes()
    assert a == (tmp_path / "o2/train/part-00000.parquet").read_bytes()
