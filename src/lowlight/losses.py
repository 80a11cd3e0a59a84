"""Adversarial losses, chosen by name (``train.adversarial``): the real alternatives of the GAN."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Adversarial:
    """Discriminator and generator losses on discriminator logits."""

    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real, fake) logits
    generator: Callable[[torch.Tensor], torch.Tensor]  # fake logits


def _bce_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real, ones)
        + F.binary_cross_entropy_with_logits(fake, zeros)
    )


def _lsgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (
        F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
    )


ADVERSARIAL = {
    # The original GAN loss (Goodfellow et al. 2014), non-saturating for the generator.
    "bce": Adversarial(
        _bce_d, lambda fake: F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    ),
    # Least-squares GAN (Mao et al. 2017): steadier gradients when D is confident.
    "lsgan": Adversarial(_lsgan_d, lambda fake: F.mse_loss(fake, torch.ones_like(fake))),
}
