"""SID's U-Net as a reference point for speed, written from its published description (Chen et
al., "Learning to See in the Dark", CVPR 2018, section 3 and its released network): the packed
4-channel Bayer input; two 3x3 convolutions with LeakyReLU(0.2) per level at 32, 64, 128, 256
and 512 channels over 4 max-poolings; 2x2 transposed convolutions (no bias) up, each
concatenated with the encoder's features of that size and followed by two 3x3 convolutions; a
1x1 convolution to 12 channels; a pixel shuffle x2 to full-resolution RGB. About 7.76 M
parameters. For benchmarks only: lowlight never trains or ships it.
"""

from __future__ import annotations

import torch
from torch import nn

from lowlight.models.unet import conv_block  # SID's level: two 3x3 convolutions, LeakyReLU(0.2)

WIDTHS = (32, 64, 128, 256, 512)


class SidUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        w = WIDTHS
        self.down = nn.ModuleList(conv_block(4 if i == 0 else w[i - 1], w[i]) for i in range(5))
        self.up = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2, bias=False)
                                for i in reversed(range(4)))  # fmt: skip
        self.merge = nn.ModuleList(conv_block(2 * w[i], w[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(w[0], 12, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # as fast a layout as ours gets
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < 4:
                skips.append(x)
                x = self.pool(x)
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return nn.functional.pixel_shuffle(self.head(x), 2)


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass over ``x``: convolutions and transposed
    convolutions (everything else is a rounding error beside them)."""
    total = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):  # each input pixel spreads a kernel
            total += inputs[0].numel() * module.out_channels * kernel // module.groups
        else:
            total += output.numel() * module.in_channels * kernel // module.groups

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]  # fmt: skip
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return total
