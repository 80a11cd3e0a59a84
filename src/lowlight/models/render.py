"""``lowlight.rendering`` in torch: the fixed, differentiable step that renders a network's
linear camera RGB with each pair's white balance and colour matrix before the loss."""

from __future__ import annotations

import torch

from lowlight.rendering import BT709_GAMMA, power_curve


def clip(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] as LibRaw does, with the gradient of the identity (straight through): a
    generator whose output left the range still learns its way back instead of going dead."""
    return x + (x.clamp(0.0, 1.0) - x).detach()


def render(camera_rgb: torch.Tensor, params: torch.Tensor, curve: str = "bt709") -> torch.Tensor:
    """N x 3 x H x W linear camera RGB, N x 12 ``RenderParams.vector`` -> N x 3 x H x W image."""
    wb = params[:, :3, None, None]
    rgb_cam = params[:, 3:].reshape(-1, 3, 3)
    balanced = clip(camera_rgb.float() * wb)
    srgb = clip(torch.einsum("nij,njhw->nihw", rgb_cam, balanced))
    if curve == "srgb":
        low = srgb * 12.92
        high = 1.055 * srgb.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
        return torch.where(srgb <= 0.0031308, low, high)
    p, x0, a = power_curve(*BT709_GAMMA)
    # the power's slope is unbounded at 0: the clamp keeps its gradient finite below the break
    high = (1 + a) * srgb.clamp_min(x0) ** p - a
    return torch.where(srgb < x0, BT709_GAMMA[1] * srgb, high)
