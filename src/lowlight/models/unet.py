"""U-Net generator whose decoder unpools with the encoder's max-pooling indices (the seed's)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lowlight.modes import SKIP_UPSAMPLING


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions with LeakyReLU(0.2), as in SID's U-Net."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
    )


def skip_weights(skip: list[list[float]], scale: int, upsample: str) -> torch.Tensor:
    """The skip as one convolution whose outputs are the pixel shuffle's sub-pixels, each
    colour's ``scale**2`` in a row: 1x1 for nearest, 3x3 (over a cell and its neighbours, the
    input's edge repeated) for bilinear and learned."""
    matrix = torch.tensor(skip, dtype=torch.float32)
    if upsample == "nearest":
        return matrix.repeat_interleave(scale**2, dim=0)[..., None, None]
    # bilinear, and where learned starts
    taps = torch.zeros(scale, 3)  # a sub-pixel's weights on the cell before, its own, after
    for a in range(scale):
        offset = (a + 0.5) / scale - 0.5  # its distance from the cell's centre, in cells
        taps[a] = torch.tensor([max(-offset, 0.0), 1.0 - abs(offset), max(offset, 0.0)])
    kernels = taps[:, None, :, None] * taps[None, :, None, :]  # (a, b, 3, 3)
    kernels = kernels.reshape(scale**2, 1, 3, 3)
    return (matrix[:, None, :, None, None] * kernels[None]).reshape(-1, matrix.shape[1], 3, 3)


class UNetGenerator(nn.Module):
    """Encoder-decoder with skips; fully convolutional for any H x W (output ``scale`` x larger).

    Each encoder level ends in ``MaxPool2d(2, return_indices=True)``; the matching decoder level
    starts with ``MaxUnpool2d(2)`` using those indices, then concatenates the features from
    before that pooling (the skip). ``forward`` reflect-pads to its ``multiple`` and
    crops back; ``body`` is the unpadded network (what an exporter should trace).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        depth: int = 3,
        width: int = 16,
        scale: int = 1,
        residual: bool = False,
        skip: list[list[float]] | None = None,
        unshuffle: int = 1,
        skip_upsample: str = "nearest",
    ):
        super().__init__()
        if skip is None and residual and (scale != 1 or in_channels != out_channels):
            raise ValueError("a residual U-Net of another scale or channels needs its skip")
        if unshuffle > 1 and scale != 1:
            raise ValueError("unshuffle is for full-size inputs: a packed mosaic is packed already")
        self.config = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "depth": depth,
            "width": width,
            "scale": scale,
            "residual": residual,
        }
        if residual and skip is not None and (scale != 1 or in_channels != out_channels):
            self.config["skip"] = [list(map(float, row)) for row in skip]
        if unshuffle > 1:  # absent from older cards: 1
            self.config["unshuffle"] = unshuffle
        if skip_upsample not in SKIP_UPSAMPLING:
            known = ", ".join(SKIP_UPSAMPLING)
            raise ValueError(f"skip_upsample {skip_upsample!r} (known: {known})")
        if skip_upsample != "nearest" and "skip" in self.config:  # absent from older cards
            self.config["skip_upsample"] = skip_upsample
        # residual: the output is a fixed linear map of the input channels, upsampled to the
        # output's size (a convolution over the sub-pixels, then the pixel shuffle), plus the
        # network's correction; None = the input itself
        weight = None
        if residual and "skip" in self.config:
            weight = skip_weights(skip, scale, skip_upsample)
        if skip_upsample == "learned" and weight is not None:  # saved with the weights
            self.skip_weight = nn.Parameter(weight)
        else:
            self.register_buffer("skip_weight", weight, persistent=False)
        self.depth, self.scale, self.residual = depth, scale, residual
        # unshuffle > 1: the input's s x s pixel blocks become channels before the first level
        # and return after the last (FFDNet's sub-images, Zhang et al. 2018): the network runs
        # at 1/s the size, so twice the width costs what the full-size network did, and every
        # level sees s times further (JPEG's 8x8 blocks, noise correlated by demosaicing)
        self.unshuffle = unshuffle
        widths = [width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            conv_block(in_channels * unshuffle**2 if i == 0 else widths[i - 1], widths[i])
            for i in range(depth)
        )
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.bottleneck = conv_block(widths[depth - 1], widths[depth])
        # Unpooling keeps channels, so reduce them to the skip's width before unpooling.
        self.reduce = nn.ModuleList(
            nn.Conv2d(widths[i + 1], widths[i], 1) for i in reversed(range(depth))
        )
        self.unpool = nn.MaxUnpool2d(2)
        self.decoders = nn.ModuleList(
            conv_block(2 * widths[i], widths[i]) for i in reversed(range(depth))
        )
        # scale > 1 (packed Bayer in, full-resolution RGB out, as in SID): scale**2 sub-pixel
        # outputs per channel, rearranged by a pixel shuffle.
        shuffle = scale * unshuffle
        self.head = nn.Sequential(
            nn.Conv2d(widths[0], out_channels * shuffle**2, 1), nn.PixelShuffle(shuffle)
        )
        if shuffle > 1:  # ICNR (Aitken et al. 2017): sub-pixels start equal, no checkerboard
            conv = self.head[0]
            with torch.no_grad():
                conv.weight.copy_(conv.weight[:: shuffle**2].repeat_interleave(shuffle**2, dim=0))
                conv.bias.copy_(conv.bias[:: shuffle**2].repeat_interleave(shuffle**2, dim=0))

    @property
    def multiple(self) -> int:
        return 2**self.depth * self.unshuffle

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The network on an input whose H and W are multiples of ``2**depth``.

        Residual: the network predicts the correction to its input (the noise, with the sign
        flipped), which is easier to learn than the whole image.
        """
        inputs = x
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        skips, indices = [], []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x, index = self.pool(x)
            indices.append(index)
        x = self.bottleneck(x)
        for reduce, decoder in zip(self.reduce, self.decoders, strict=True):
            skip, index = skips.pop(), indices.pop()
            x = self.unpool(reduce(x), index, output_size=skip.shape[-2:])
            x = decoder(torch.cat([x, skip], dim=1))
        conv, shuffle = self.head
        x = conv(x)
        if self.residual and self.skip_weight is None:
            return inputs + shuffle(x)
        if self.residual:  # add before the one pixel shuffle: the same sums, one copy less
            if self.skip_weight.shape[-1] > 1:  # bilinear: the edge repeated, as F.interpolate
                inputs = F.pad(inputs, (1, 1, 1, 1), mode="replicate")
            x = x + F.conv2d(inputs, self.skip_weight)
        return shuffle(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        # oneDNN's convolutions run about twice as fast on NHWC tensors on the CPU (197 -> ~100 ms
        # per raw megapixel for the shipped model; bench/pretrain.py): the same numbers otherwise
        x = x.contiguous(memory_format=torch.channels_last)
        return self.body(x)[..., : height * self.scale, : width * self.scale]


def build_generator(config: dict) -> UNetGenerator:
    """Rebuild a generator from its saved architecture config (``generator.json``)."""
    known = {"in_channels", "out_channels", "depth", "width", "scale", "residual", "skip",
             "unshuffle", "skip_upsample"}  # fmt: skip
    return UNetGenerator(**{k: v for k, v in config.items() if k in known})
