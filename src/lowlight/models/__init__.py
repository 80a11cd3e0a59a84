"""The GAN of the seed: a U-Net generator and a CNN discriminator (pure torch, no I/O)."""

from lowlight.models.discriminator import ConvDiscriminator
from lowlight.models.unet import UNetGenerator, build_generator

__all__ = ["ConvDiscriminator", "UNetGenerator", "build_generator"]
