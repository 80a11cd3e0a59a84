"""Signed input (issue 23): values below the black level (read noise, symmetric about black)
survive convert -> pair -> patch -> the training dataset, and enhance's packing, so the network
never sees rectified noise; clipping them at 0 lifted every dark mean."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from lowlight import imageio, modes, patches, raw
from lowlight.config import ConvertConfig
from lowlight.dataset import PatchStream, PatchTable
from lowlight.dng import DngMeta, write_dng
from lowlight.errors import DatasetError
from tests.conftest import one_line_error

BLACK, WHITE, RATIO = 512, 16383, 100.0
SPAN = WHITE - BLACK
STEP = 1 / 32767  # signed16's quantisation step


def flat_dark(shape=(64, 64), sigma=4.0, seed=0) -> np.ndarray:
    """A short frame of a black scene: the black level plus read noise (whole DN)."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, shape)
    return np.rint(BLACK + noise).astype(np.uint16)


def expected_packed(mosaic: np.ndarray, gain: float = RATIO) -> np.ndarray:
    """The RGGB planes of an RGGB ``mosaic``, black-subtracted, over the span, amplified."""
    values = (mosaic.astype(np.float64) - BLACK) * gain / SPAN
    planes = [values[0::2, 0::2], values[0::2, 1::2], values[1::2, 0::2], values[1::2, 1::2]]
    return np.clip(np.stack(planes, axis=-1), -1.0, 1.0)


def write_frame(path, mosaic, exposure):
    # an unprofiled camera (no calibrated dark offset): the black level is exact
    return write_dng(path, mosaic, DngMeta(BLACK, WHITE, (0.5, 1.0, 0.6), exposure, 3200))


def test_signed16_round_trips_its_range_to_half_a_step():
    values = np.concatenate([np.linspace(-1, 1, 20001), [0.0, 1.0, -1.0, 3e-6, -3e-6]])
    values = values.astype(np.float32)
    stored = imageio.encode_signed16(values)
    assert stored.dtype == np.uint16
    back = imageio.decode_signed16(stored)
    assert back.dtype == np.float32
    assert np.abs(back - values).max() <= 0.5 * STEP * (1 + 1e-3)
    assert back[-5:-2].tolist() == [0.0, 1.0, -1.0]  # black and white are exact
    # outside the range: clipped, the white level's clip kept
    assert imageio.decode_signed16(imageio.encode_signed16(np.float32([2.0, -3.0]))).tolist() == [
        1.0,
        -1.0,
    ]
    # every code decodes to a value that encodes back to it (one pair, no drift)
    codes = np.arange(1, 65536, dtype=np.uint16)
    assert np.array_equal(imageio.encode_signed16(imageio.decode_signed16(codes)), codes)


def test_amplification_keeps_values_below_black_and_clips_white():
    mosaic = np.array([[500, 512, 700, 16000, 0]], np.uint16)
    out = raw.amplify_mosaic(mosaic, np.float32(BLACK), WHITE, 10.0)
    # 12 DN below black -> 120 below; the white level clips; the dtype's 0 is the floor
    assert out.tolist() == [[392, 512, 2392, 16383, 0]]
    per_pixel = raw.amplify_mosaic(mosaic, np.full(mosaic.shape, BLACK, np.float32), WHITE, 10.0)
    assert np.array_equal(per_pixel, out)


def test_enhance_packing_keeps_negatives_and_an_unbiased_mean(tmp_path):
    """What a bayer model gets from a RAW file (``BayerMode.load_photo``, as enhance and the
    registered model call it): the values below black, negative, their mean ~0."""
    mosaic = flat_dark()
    mosaic[0, 0], mosaic[0, 2] = 16383, 0  # a hot pixel clips at white, a dead one at -1
    path = write_frame(tmp_path / "dark.dng", mosaic, 0.1)
    photo = modes.get("bayer").load_photo(path, RATIO, ConvertConfig())
    expected = expected_packed(mosaic)
    assert photo.unit.dtype == np.float32 and photo.gain == RATIO
    np.testing.assert_allclose(photo.unit, expected, atol=1e-6)
    assert photo.unit[0, 0, 0] == 1.0 and photo.unit[0, 1, 0] == -1.0
    values = photo.unit.ravel()[2:]
    sigma = 4.0 * RATIO / SPAN
    assert (values < 0).mean() > 0.4
    assert abs(values.mean()) < 4 * sigma / np.sqrt(values.size)  # unbiased
    # what the zero clip gave before: the read noise rectified, sigma / sqrt(2 pi) on average
    assert np.maximum(values, 0).mean() == pytest.approx(sigma / np.sqrt(2 * np.pi), rel=0.1)


def test_negative_values_survive_convert_pair_patch_and_the_dataset(cli, tmp_path):
    """A black scene's short frame (read noise about the black level) and a grey long frame,
    through the CLI's convert, pair and patch, read by training's datasets: the dark patch is
    the frame's packed values, negatives included, to the quantisation; its mean is ~0."""
    short, long = flat_dark(), np.full((64, 64), BLACK + 6000, np.uint16)
    for scene in ("00001", "20001"):  # one train and one validation scene (SID's prefixes)
        write_frame(tmp_path / f"raw/Sony/short/{scene}_00_0.1s.dng", short, 0.1)
        write_frame(tmp_path / f"raw/Sony/long/{scene}_00_10s.dng", long, 10.0)
    params = {"patch": {"size": 64, "stride": 64, "row_group": 4}, "model": {"input": "bayer"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for args in (("convert", "raw/Sony", "conv"), ("pair", "conv", "pairs.parquet"),
                 ("patch", "pairs.parquet", "patches")):  # fmt: skip
        result = cli(*args)
        assert result.exit_code == 0, result.output

    expected = expected_packed(short)  # ratio 10 s / 0.1 s = 100
    spec, _ = patches.scan("patches/train")
    assert spec.dark_encoding == imageio.SIGNED16
    (dark, bright, _render), *rest = list(PatchStream("patches/train", seed=0))
    assert rest == [] and dark.shape == (4, 32, 32) and bright.shape == (3, 64, 64)
    values = dark.numpy().transpose(1, 2, 0)
    assert np.abs(values - expected).max() <= 0.5 * STEP * (1 + 1e-3)
    assert (values < 0).mean() > 0.4 and values.min() < -3 * 4.0 * RATIO / SPAN
    sigma = 4.0 * RATIO / SPAN
    assert abs(values.mean()) < 4 * sigma / np.sqrt(values.size)  # unbiased
    assert np.maximum(expected, 0).mean() > 10 * abs(values.mean())  # what the clip gave
    validation = PatchTable("patches/val")[0][0].numpy().transpose(1, 2, 0)
    assert np.array_equal(validation, values)

    # a converted folder of the clipped encoding (lowlight before issue 23) is refused
    table = pq.read_table("pairs.parquet")
    old = [name.replace(".bayer-signed.png", ".bayer.png") for name in
           table.column("dark_packed").to_pylist()]  # fmt: skip
    index = table.schema.get_field_index("dark_packed")
    pq.write_table(table.set_column(index, "dark_packed", [old]), "old.parquet")
    one_line_error(cli("patch", "old.parquet", "old-patches"), "old.parquet", ".bayer.png",
                   "older lowlight", "lowlight convert")  # fmt: skip


def test_a_patch_set_of_the_clipped_encoding_is_refused(tmp_path):
    """Bayer patches written before issue 23 (no dark encoding in their metadata) held
    rectified noise: the datasets refuse them in one line naming the part."""
    spec = modes.get("bayer").patch_spec(8, 8, "uint16")
    old = patches.PatchSpec(**{**spec.__dict__, "dark_encoding": ""})
    with patches.PatchWriter(tmp_path / "train", old, 4, 4) as writer:
        dark = np.zeros((1, 4, 4, 4), np.uint16)
        bright = np.zeros((1, 8, 8, 3), np.uint16)
        writer.add("p", "00001", 100.0, np.zeros((1, 2), int), dark, bright, np.ones(12))
    with pytest.raises(DatasetError, match=r"part-00000\.parquet: bayer patches of an older"):
        PatchTable(tmp_path / "train")
    # the rgb mode's patches are unchanged: no encoding, read as before
    assert modes.get("rgb").patch_spec(8, 8).dark_encoding == ""


def test_the_bayer_generator_passes_negative_input_through_its_skip():
    """No clamp or ReLU on the input: a residual bayer U-Net with a zero correction returns the
    naive demosaic (R, mean G, B) of a signed input, negatives included."""
    import torch

    from lowlight.config import ModelConfig
    from lowlight.models import UNetGenerator

    mode = modes.get("bayer")
    generator = UNetGenerator(
        **mode.generator_args(ModelConfig(input="bayer", depth=2, width=4, residual=True))
    )
    torch.nn.init.zeros_(generator.head[0].weight)
    torch.nn.init.zeros_(generator.head[0].bias)
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.05, (1, 4, 8, 12)).astype(np.float32))
    with torch.no_grad():
        out = generator(x)
    naive = torch.stack([x[:, 0], (x[:, 1] + x[:, 2]) / 2, x[:, 3]], dim=1)
    expected = naive.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert out.min() < 0 and torch.allclose(out, expected, atol=1e-6)
