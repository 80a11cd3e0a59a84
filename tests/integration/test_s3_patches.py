"""The patch stage reading and writing s3:// against a real moto_server."""

import boto3
import numpy as np

from lowlight import stages, storage
from lowlight.config import Params
from lowlight.dataset import PatchStream
from lowlight.patches import iter_patches


def upload_tree(local, bucket, prefix, endpoint):
    client = boto3.client("s3", endpoint_url=endpoint)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local).as_posix()}")


def test_patch_round_trip_through_s3(sony, tmp_path, s3_bucket, s3_server):
    p = Params()
    stages.convert.run(p.convert, sony / "Sony", tmp_path / "conv")
    stages.pair.run(p.pair, tmp_path / "conv", tmp_path / "conv" / "pairs.parquet")
    upload_tree(tmp_path / "conv", s3_bucket, "conv", s3_server)

    cfg = p.patch.model_copy(update={"size": 16, "stride": 8, "row_group": 20})
    pairs_uri = f"s3://{s3_bucket}/conv/pairs.parquet"
    images_uri = f"s3://{s3_bucket}/conv"
    out_uri = f"s3://{s3_bucket}/patches"
    remote = stages.patch.run(cfg, pairs_uri, out_uri, seed=0, images=images_uri)
    local = stages.patch.run(cfg, tmp_path / "conv/pairs.parquet", tmp_path / "patches", seed=0)

    assert remote["train_patches"] == local["train_patches"] > 0
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_server).list_objects_v2(
            Bucket=s3_bucket, Prefix="patches/"
        )["Contents"]
    ]
    assert "patches/train/part-00000.parquet" in keys
    assert not any(k.endswith(".tmp") for k in keys)
    # the same bytes land in the bucket as on disk (the pairs hash is of identical bytes)
    assert (
        storage.read_bytes(f"{out_uri}/train/part-00000.parquet")
        == (tmp_path / "patches/train/part-00000.parquet").read_bytes()
    )

    remote_patches = list(iter_patches(f"{out_uri}/train"))
    local_patches = list(iter_patches(tmp_path / "patches/train"))
    assert len(remote_patches) == len(local_patches)
    for (a, b), (c, d) in zip(remote_patches, local_patches, strict=True):
        assert np.array_equal(a, c) and np.array_equal(b, d)

    stream = PatchStream(f"{out_uri}/train", seed=0, shuffle_buffer=8)
    assert sum(1 for _ in stream) == local["train_patches"]


def test_convert_pair_and_patch_straight_from_and_to_s3(sony, tmp_path, s3_bucket, s3_server):
    """No local copy of the RAW folder: convert streams each object, writes objects."""
    p = Params()
    upload_tree(sony, s3_bucket, "raw", s3_server)
    raw, conv = f"s3://{s3_bucket}/raw/Sony", f"s3://{s3_bucket}/conv"
    remote = stages.convert.run(p.convert, raw, conv)
    local = stages.convert.run(p.convert, sony / "Sony", tmp_path / "conv")
    assert remote["converted"] == local["converted"] == 9 and remote["failed"] == 0
    for name in ("short/00001_00_0.1s.jpg", "long/10001_00_10s.jpg"):
        assert storage.read_bytes(f"{conv}/{name}") == (tmp_path / "conv" / name).read_bytes()
    again = stages.convert.run(p.convert, raw, conv)
    assert again["skipped_unchanged"] == 9 and again["converted"] == 0

    pairs = stages.pair.run(p.pair, conv, f"{conv}/pairs.parquet")
    assert pairs["lists_used"] and pairs["pairs"] == 3  # SID list files read from the bucket
    cfg = p.patch.model_copy(update={"size": 16, "stride": 8, "row_group": 20})
    patched = stages.patch.run(cfg, f"{conv}/pairs.parquet", f"s3://{s3_bucket}/patches", seed=0)
    assert patched["train_patches"] == 15 and patched["skipped"] == 0
