"""The packed-Bayer input mode: packing any 2x2 layout, the scale-2 U-Net, tiling, patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rawpy
import torch

from lowlight import imageio, raw
from lowlight.dng import DngMeta, write_dng
from lowlight.errors import ConfigError, RawDecodeError
from lowlight.models import ConvDiscriminator, UNetGenerator
from lowlight.modes import MODES
from lowlight.patches import PatchSpec
from lowlight.tiling import run_tiles
from lowlight.windows import cut_windows

LAYOUTS = {"RGGB": "RGGB", "GRBG": "GRBG", "GBRG": "GBRG", "BGGR": "BGGR"}


def mosaic_of(planes: dict[str, np.ndarray], layout: str) -> np.ndarray:
    """A mosaic whose 2x2 blocks hold the planes' values at ``layout``'s positions."""
    height, width = planes["R"].shape
    mosaic = np.zeros((2 * height, 2 * width), np.uint16)
    greens = iter(["G1", "G2"])
    for index, colour in enumerate(layout):
        dy, dx = divmod(index, 2)
        mosaic[dy::2, dx::2] = planes[next(greens) if colour == "G" else colour]
    return mosaic


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_pack_bayer_puts_r_g_g_b_in_order_whatever_the_layout(layout):
    rng = np.random.default_rng(0)
    # some below the black level: read noise, kept negative (issue 23)
    planes = {c: rng.integers(300, 4000, (3, 5)).astype(np.uint16) for c in ("R", "G1", "G2", "B")}
    mosaic = mosaic_of(planes, layout)
    desc = "RGBG"  # LibRaw's colour indices: 0 R, 1 G, 2 B, 3 the second G
    index = {"R": 0, "B": 2}
    colors = np.zeros_like(mosaic, dtype=np.uint8)
    greens = iter([1, 3])
    for i, colour in enumerate(layout):
        dy, dx = divmod(i, 2)
        colors[dy::2, dx::2] = next(greens) if colour == "G" else index[colour]
    black = np.array([512, 512, 512, 512], np.float32)
    packed = raw.pack_bayer(mosaic, colors, desc, black, 4607, gain=2.0)
    assert packed.shape == (3, 5, 4) and packed.dtype == np.float32
    assert packed.min() < 0  # not rectified
    expected_r = np.clip((planes["R"] - 512.0) * 2 / (4607 - 512), -1, 1)
    np.testing.assert_allclose(packed[..., 0], expected_r, rtol=1e-6)
    np.testing.assert_allclose(packed[..., 3], np.clip((planes["B"] - 512.0) * 2 / 4095, -1, 1),
                               rtol=1e-6)  # fmt: skip
    greens = [np.clip((planes[g] - 512.0) * 2 / 4095, -1, 1) for g in ("G1", "G2")]
    np.testing.assert_allclose(packed[..., 1], greens[0], rtol=1e-6)  # first G in raster order
    np.testing.assert_allclose(packed[..., 2], greens[1], rtol=1e-6)


def test_pack_bayer_rejects_other_sensors_and_drops_odd_edges():
    mosaic = np.full((5, 7), 1000, np.uint16)
    colors = np.tile(np.array([[0, 1], [3, 2]], np.uint8), (3, 4))[:5, :7]
    assert raw.pack_bayer(mosaic, colors, "RGBG", np.zeros(4), 4000, 1.0).shape == (2, 3, 4)
    xtrans = np.zeros((6, 6), np.uint8)  # no repeating 2x2 block
    xtrans[0, :] = [1, 1, 0, 1, 1, 2]
    with pytest.raises(ValueError, match="not a 2x2"):
        raw.pack_bayer(np.zeros((6, 6), np.uint16), xtrans, "RGBG", np.zeros(4), 4000, 1.0)


def write_camera_dng(path: Path, layout: str, orientation: int = 1) -> dict[str, np.ndarray]:
    """A 12-bit DNG unlike the synthetic SID frames: another layout, black 256, turned."""
    rng = np.random.default_rng(1)
    planes = {
        c: rng.integers(256, 4095, (11, 17)).astype(np.uint16) for c in ("R", "G1", "G2", "B")
    }
    mosaic = mosaic_of(planes, layout)  # (pidng writes no odd sizes LibRaw reads back)
    meta = DngMeta(256, 4095, (0.5, 1.0, 0.7), 0.01, 3200, make="Acme", model="Z 1",
                   cfa=layout, orientation=orientation)  # fmt: skip
    write_dng(path, mosaic, meta)
    return planes


@pytest.mark.parametrize("layout", ["GRBG", "BGGR"])
def test_decode_packed_reads_a_dng_of_another_layout(tmp_path, layout):
    path = tmp_path / "IMG_0042.dng"
    planes = write_camera_dng(path, layout, orientation=6)
    packed, gain, flip, _ = raw.decode_packed(path, 3.0)
    assert packed.shape == (11, 17, 4) and gain == 3.0 and flip == 6
    expected_r = np.clip((planes["R"] - 256.0) * 3 / (4095 - 256), -1, 1)
    np.testing.assert_allclose(packed[..., 0], expected_r, rtol=1e-5)
    with rawpy.imread(str(path)) as r:
        assert r.sizes.flip == 6
    assert raw.upright(np.zeros((4, 6, 3)), 6).shape == (6, 4, 3)
    broken = tmp_path / "broken.dng"
    broken.write_bytes(path.read_bytes()[:500])
    with pytest.raises(RawDecodeError, match="broken.dng"):
        raw.decode_packed(broken)


def test_packed_png_round_trip(tmp_path):
    packed = np.random.default_rng(0).uniform(-1, 1, (7, 9, 4)).astype(np.float32)
    imageio.write_packed(tmp_path / "x.bayer-signed.png", packed)
    back = imageio.read_packed(tmp_path / "x.bayer-signed.png")
    assert back.dtype == np.uint16 and back.shape == (7, 9, 4)
    np.testing.assert_allclose(imageio.decode_signed16(back), packed, atol=0.51 / 32767)
    imageio.write_image(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8), "png")
    with pytest.raises(Exception, match="not a packed Bayer PNG"):
        imageio.read_packed(tmp_path / "rgb.png")


def test_scale_two_unet_and_its_discriminator():
    generator = UNetGenerator(4, 3, depth=2, width=4, scale=2)
    out = generator(torch.rand(2, 4, 13, 22))  # any size, padded and cropped inside
    assert out.shape == (2, 3, 26, 44)
    disc = ConvDiscriminator(7, 4, 16)
    assert disc(torch.rand(2, 4, 16, 16), torch.rand(2, 3, 32, 32)).shape == (2,)
    residual = UNetGenerator(3, 3, depth=2, width=4, residual=True)
    torch.nn.init.zeros_(residual.head[0].weight)
    torch.nn.init.zeros_(residual.head[0].bias)
    x = torch.rand(1, 3, 9, 10)
    assert torch.equal(residual(x), x)  # a zero correction returns the input
    with pytest.raises(ValueError, match="residual"):
        UNetGenerator(4, 3, scale=2, residual=True)  # of another scale: needs its skip map
    naive = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]]
    bayer = UNetGenerator(4, 3, depth=2, width=4, scale=2, residual=True, skip=naive)
    torch.nn.init.zeros_(bayer.head[0].weight)
    torch.nn.init.zeros_(bayer.head[0].bias)
    packed = torch.rand(1, 4, 8, 12)
    expected = torch.stack([packed[:, 0], packed[:, 1:3].mean(1), packed[:, 3]], 1)
    torch.testing.assert_close(
        bayer(packed), expected.repeat_interleave(2, 2).repeat_interleave(2, 3)
    )
    rebuilt = UNetGenerator(**bayer.config)
    assert rebuilt.config == bayer.config and "skip" in bayer.config


def test_tiles_of_a_model_that_doubles_the_size_are_put_back_in_place():
    image = np.random.default_rng(0).random((45, 70, 4), dtype=np.float32)

    def upsample(tiles: np.ndarray) -> np.ndarray:  # exact 2x nearest: tiling must keep it
        return tiles.repeat(2, axis=2).repeat(2, axis=3)[:, :3]

    out = run_tiles(image, upsample, tile=16, overlap=6, batch=3, multiple=2)
    assert out.shape == (90, 140, 3)
    np.testing.assert_allclose(out, image[..., :3].repeat(2, 0).repeat(2, 1), atol=1e-6)


def test_bayer_patch_spec_and_aligned_windows():
    spec = MODES["bayer"].patch_spec(32, 16, "uint8", "abc")
    assert spec.dark_shape == (16, 16, 4) and spec.bright_shape == (32, 32, 3)
    assert PatchSpec.from_metadata(spec.metadata()) == spec
    assert spec.dark_pixels == "uint16" and spec.input == "bayer"
    with pytest.raises(ConfigError, match="even"):
        MODES["bayer"].patch_spec(31, 16)
    packed = np.random.default_rng(0).random((20, 30, 4))
    bright = packed[..., :3].repeat(2, 0).repeat(2, 1)
    starts, dark_windows = cut_windows(packed, 8, 4)
    bright_starts, bright_windows = cut_windows(bright, 16, 8)
    np.testing.assert_array_equal(bright_starts, starts * 2)  # the grids line up
    np.testing.assert_array_equal(bright_windows, dark_windows[..., :3].repeat(2, 1).repeat(2, 2))
