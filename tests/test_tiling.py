import numpy as np
import pytest
import torch

from lowlight.models import UNetGenerator
from lowlight.tiling import blend_tiles, pad_to_multiple, ramp_window, tile_grid


def test_ramp_window_is_smooth_positive_and_symmetric():
    window = ramp_window(64, 16)
    assert window.min() > 0 and window.max() == 1.0
    assert np.allclose(window, window[::-1])
    assert (window[16:48] == 1).all() and (np.diff(window[:16]) > 0).all()


def test_tile_grid_covers_the_image_with_the_overlap():
    grid = tile_grid(100, 230, 64, 16)
    covered = np.zeros((100, 230), int)
    for y, x, h, w in grid:
        covered[y : y + h, x : x + w] += 1
    assert covered.min() >= 1
    with pytest.raises(ValueError):
        tile_grid(100, 100, 32, 32)


def test_identity_model_is_reproduced_exactly():
    image = np.random.default_rng(0).random((77, 131, 3), dtype=np.float32)
    out = blend_tiles(image, lambda tiles: tiles, tile=32, overlap=12, batch=3)
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_no_step_at_tile_borders():
    """A model with a different bias per tile: blending leaves no seam, stitching would."""
    image = np.zeros((96, 160, 3), np.float32)
    offsets = iter(np.random.default_rng(1).random(100))

    def biased(tiles):
        return tiles + np.array([next(offsets) for _ in tiles], np.float32)[:, None, None, None]

    out = blend_tiles(image, biased, tile=48, overlap=24, batch=1)
    jumps = np.abs(np.diff(out, axis=1)).max(), np.abs(np.diff(out, axis=0)).max()
    assert max(jumps) < 0.08  # the largest per-tile offset difference is ~1


def test_tiled_generator_matches_whole_image_away_from_the_border():
    torch.manual_seed(0)
    generator = UNetGenerator(depth=3, width=8).eval()

    def run(tiles):
        with torch.no_grad():
            return generator(torch.from_numpy(tiles)).numpy()

    image = np.random.default_rng(2).random((150, 230, 3), dtype=np.float32)
    whole = run(image.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)
    tiled = blend_tiles(image, run, tile=96, overlap=48, batch=4)
    inner = np.s_[16:-16, 16:-16]
    error = np.abs(tiled[inner] - whole[inner])
    assert error.mean() < 2e-3 * np.abs(whole).mean() * 10
    assert error.max() < 0.05


def test_pad_to_multiple():
    tiles = np.random.default_rng(0).random((2, 3, 37, 53), dtype=np.float32)
    padded, h, w = pad_to_multiple(tiles, 8)
    assert padded.shape == (2, 3, 40, 56) and (h, w) == (37, 53)
    assert np.array_equal(padded[..., :37, :53], tiles)
