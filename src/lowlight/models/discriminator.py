"""The seed's discriminator: two conv blocks with max-pooling, two fully connected blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvDiscriminator(nn.Module):
    """Scores a (dark, bright) pair: one logit, real vs generated.

    Conditioned on the dark input (channels concatenated), like pix2pix. Adaptive pooling before
    the fully connected part lets the patch size change between training and validation.
    """

    def __init__(
        self, in_channels: int = 6, width: int = 32, hidden: int = 256, dropout: float = 0.3
    ):
        super().__init__()
        self.config = {
            "in_channels": in_channels,
            "width": width,
            "hidden": hidden,
            "dropout": dropout,
        }
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * 16, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden // 4, 1),
        )

    def forward(self, dark: torch.Tensor, bright: torch.Tensor) -> torch.Tensor:
        if dark.shape[-2:] != bright.shape[-2:]:  # packed Bayer: half the bright's resolution
            dark = F.interpolate(dark, size=bright.shape[-2:], mode="nearest")
        return self.classifier(self.features(torch.cat([dark, bright], dim=1))).squeeze(1)
