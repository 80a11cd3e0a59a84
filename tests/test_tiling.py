"""Tiled inference: where tiles go, and that the shipped model's tiled output is its bare
forward pass's (issue 17: within 1/255 away from the image border)."""

import numpy as np
import pytest
import torch

from lowlight import card, synth
from lowlight.colour import srgb_to_linear
from lowlight.config import InferConfig
from lowlight.inference import enhance, load_torch
from lowlight.tiling import axis_plan, default_overlap, pad_to_multiple, run_tiles, tile_grid


@pytest.mark.parametrize("length", [1, 37, 100, 255, 256, 257, 700, 1416, 2120])
@pytest.mark.parametrize(
    ("tile", "overlap", "multiple"), [(64, 16, 1), (256, 128, 16), (640, 160, 16), (100, 30, 8)]
)
def test_kept_parts_cover_the_axis_once_far_from_cut_edges(length, tile, overlap, multiple):
    size, plan = axis_plan(length, tile, overlap, multiple)
    assert size <= tile and size == min(size, length)
    assert plan[0][1] == 0 and plan[-1][2] == length
    for (start, keep0, keep1), nxt in zip(plan, plan[1:] + [None], strict=True):
        assert start % multiple == 0 and keep0 < keep1
        assert start + size >= keep1 and start + size - length < multiple
        if keep0 > 0:  # a cut edge on the left
            assert keep0 - start >= overlap // 2
        if nxt is not None:  # the kept parts chain, and each ends well inside its tile
            assert nxt[1] == keep1 and start + size - keep1 >= overlap // 2


def test_tiles_are_spread_evenly_and_the_overlap_must_leave_a_stride():
    size, plan = axis_plan(1416, 640, 160, 16)  # a Sony frame's packed height
    assert (size, len(plan)) == (592, 3)  # not 640 + 640 + a mostly repeated third tile
    with pytest.raises(ValueError, match="smaller than the tile"):
        tile_grid(100, 100, 32, 32)
    with pytest.raises(ValueError, match="multiple of 16"):
        axis_plan(100, 40, 30, 16)


def test_identity_model_is_reproduced_exactly():
    image = np.random.default_rng(0).random((77, 131, 3), dtype=np.float32)
    out = run_tiles(image, lambda tiles: tiles, tile=32, overlap=12, batch=3)
    np.testing.assert_array_equal(out, image)


def test_every_output_pixel_comes_from_one_tile_far_from_its_cut_edges():
    """Each tile's output is filled with its index and its distance to the nearest cut edge:
    the assembled image shows every pixel was kept where its tile saw >= overlap/2 around it."""
    image = np.zeros((150, 230, 1), np.float32)
    (h, w), grid = tile_grid(150, 230, 64, 24, 8)
    calls = iter(grid)

    def margins(tiles):
        out = np.empty_like(tiles)
        for i in range(len(tiles)):
            (y, _, _), (x, _, _) = next(calls)
            yy, xx = np.mgrid[y : y + h, x : x + w]
            up = np.where(y > 0, yy - y, 999)
            down = np.where(y + h < 150, y + h - 1 - yy, 999)
            left = np.where(x > 0, xx - x, 999)
            right = np.where(x + w < 230, x + w - 1 - xx, 999)
            out[i, 0] = np.minimum(np.minimum(up, down), np.minimum(left, right))
        return out

    out = run_tiles(image, margins, tile=64, overlap=24, batch=2, multiple=8)
    assert out.min() >= 12 - 1  # a pixel's distance to the edge counts from 0


def test_pad_to_multiple():
    tiles = np.random.default_rng(0).random((2, 3, 37, 53), dtype=np.float32)
    padded, h, w = pad_to_multiple(tiles, 8)
    assert padded.shape == (2, 3, 40, 56) and (h, w) == (37, 53)
    assert np.array_equal(padded[..., :37, :53], tiles)


def test_the_shipped_models_tiled_output_is_its_bare_forward_pass():
    """A packed frame of a test photo at ratio-100 brightness, 6 tiles of 240 with the default
    overlap, against one pass of the network over the whole frame (the shipped depth-3 model:
    12 x 8 = 96 made it exact on this frame and on test frames, 80 left 0.05/255, 64 0.35/255;
    the earlier depth-4 model needed 160 for 0.1/255)."""
    fn, model_card = load_torch(card.shipped(), "cpu")
    generator, _ = card.load_generator(card.shipped())
    photos = dict(synth.load_photos(None))
    rgb = srgb_to_linear(synth.crop_scene(photos["chelsea.png"], (768, 1024),
                                          np.random.default_rng(0)))  # fmt: skip
    mosaic = synth.mosaic(rgb, "RGGB")
    noisy = np.random.default_rng(1).poisson(mosaic * 400) / 400  # shot noise at ~x100 levels
    packed = np.stack([noisy[0::2, 0::2], noisy[0::2, 1::2], noisy[1::2, 0::2],
                       noisy[1::2, 1::2]], -1).clip(0, 1).astype(np.float32)  # fmt: skip
    with torch.inference_mode():
        bare = generator(torch.from_numpy(packed.transpose(2, 0, 1).copy())[None])
    bare = bare[0].numpy().transpose(1, 2, 0).clip(0, 1)
    assert InferConfig().overlap is None  # the model's own: default_overlap(multiple)
    overlap = default_overlap(model_card.multiple)
    tiled = enhance(packed, fn, 240, None, 2, model_card.multiple)
    assert len(tile_grid(*packed.shape[:2], 240, overlap, model_card.multiple)[1]) == 6
    inner = np.s_[16:-16, 16:-16]  # away from the image border (output pixels)
    assert np.abs(tiled[inner] - bare[inner]).max() <= 1 / 255
