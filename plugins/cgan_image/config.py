"""Config sections of the image modality and the DCGAN model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ImageDataConfig:
    """The ``data`` section for images.

    Attributes:
        resolution: Side of the square images the model sees (DCGAN: 32 or 64).
        channels: 1 for grayscale, 3 for RGB; sources are converted.
        crop: ``center`` crops non-square images to a centred square before resizing;
            ``none`` resizes them (changing the aspect ratio).
        max_items: Use at most this many items (0 = all).
    """

    resolution: int = 32
    channels: int = 1
    crop: str = "center"
    max_items: int = 0


@dataclass
class DCGANConfig:
    """The ``model`` section of DCGAN (Radford, Metz and Chintala, ICLR 2016).

    Attributes:
        latent_dim: Size of the latent vector z.
        base_channels: Feature maps of the last generator / first discriminator layer (ngf/ndf);
            32 suits 32x32 images on a CPU, the paper's 64x64 setting is 64.
        spectral_norm: Spectral normalisation in the discriminator (replaces its batch norm).
    """

    latent_dim: int = 100
    base_channels: int = 32
    spectral_norm: bool = False
