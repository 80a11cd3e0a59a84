"""Rendering camera RGB as LibRaw does, from each file's own metadata (numpy and torch)."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy
import torch

from lowlight import raw
from lowlight.dng import DngMeta, write_dng
from lowlight.models.render import render as render_torch
from lowlight.rendering import RenderParams, bt709, render

# Another camera than the synthetic Sony: its own XYZ -> camera matrix and as-shot white balance
# (a Nikon D850-like matrix from dcraw's table, a tungsten-ish neutral).
OTHER = DngMeta(
    black_level=256, white_level=4095, as_shot_neutral=(0.62, 1.0, 0.38), exposure=0.1, iso=800,
    make="Nikon", model="synthetic D850", color_matrix=(
        1.0405, -0.3755, -0.0270, -0.5461, 1.3787, 0.1793, -0.1040, 0.2015, 0.6785),
)  # fmt: skip
LIBRAW = dict(use_camera_wb=True, no_auto_bright=True, output_bps=16, adjust_maximum_thr=0.0)


def flat_dng(path, camera_rgb, meta=OTHER, size=(32, 48)):
    """A DNG whose mosaic is one camera RGB colour (R, G, B of the RGGB sites)."""
    span = meta.white_level - meta.black_level
    levels = np.rint(np.asarray(camera_rgb) * span + meta.black_level)
    mosaic = np.empty(size, np.uint16)
    mosaic[0::2, 0::2], mosaic[1::2, 1::2] = levels[0], levels[2]
    mosaic[0::2, 1::2] = mosaic[1::2, 0::2] = levels[1]
    return write_dng(path, mosaic, meta)


@pytest.mark.parametrize("camera_rgb", [(0.1, 0.2, 0.05), (0.3, 0.25, 0.4), (0.02, 0.5, 0.1)])
def test_render_of_a_flat_frame_matches_libraw(tmp_path, camera_rgb):
    path = flat_dng(tmp_path / "flat.dng", camera_rgb)
    with rawpy.imread(str(path)) as r:
        params = RenderParams.from_libraw(r.camera_whitebalance, r.color_matrix)
        libraw = r.postprocess(**LIBRAW).astype(np.float64)[8:-8, 8:-8] / 65535
    ours = render(np.broadcast_to(np.float32(camera_rgb), (4, 4, 3)), params)
    np.testing.assert_allclose(ours[0, 0], libraw.reshape(-1, 3).mean(0), atol=2 / 255)
    assert params.wb == pytest.approx((1 / 0.62 / (1 / 1.0), 1.0, 1 / 0.38), rel=1e-3)


def test_bt709_is_libraws_default_curve(tmp_path):
    rng = np.random.default_rng(0)
    mosaic = (rng.random((32, 48)) * 3000 + 400).astype(np.uint16)
    path = write_dng(tmp_path / "noise.dng", mosaic, OTHER)
    with rawpy.imread(str(path)) as r:
        linear = r.postprocess(gamma=(1, 1), **LIBRAW) / 65535
    with rawpy.imread(str(path)) as r:
        curved = r.postprocess(**LIBRAW) / 65535
    assert np.abs(bt709(linear) - curved).max() < 0.5 / 255


def test_decode_reports_the_files_render_params(tmp_path):
    path = flat_dng(tmp_path / "f.dng", (0.2, 0.2, 0.2))
    _, meta, _ = raw.decode(path, 1.0)
    *_, packed_render = raw.decode_packed(path, 1.0)
    assert meta.render == packed_render and meta.render.curve == "bt709"
    assert RenderParams.from_dict(meta.render.to_dict()) == meta.render
    assert meta.render.vector.shape == (12,) and min(meta.render.wb) == 1.0


def test_torch_render_equals_numpy_and_has_gradients():
    rng = np.random.default_rng(1)
    params = RenderParams((2.1, 1.0, 1.6), ((1.7, -0.6, -0.1), (-0.2, 1.5, -0.3), (0.0, -0.5, 1.5)))
    camera = rng.random((2, 3, 8, 8), dtype=np.float32) * 0.6
    for curve in ("bt709", "srgb"):
        vector = torch.from_numpy(np.stack([params.vector, params.vector]))
        x = torch.from_numpy(camera).requires_grad_()
        out = render_torch(x, vector, curve)
        with_curve = RenderParams(params.wb, params.rgb_cam, curve)
        expected = np.stack([render(c.transpose(1, 2, 0), with_curve) for c in camera])
        np.testing.assert_allclose(out.detach().numpy().transpose(0, 2, 3, 1), expected, atol=1e-5)
        out.mean().backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
