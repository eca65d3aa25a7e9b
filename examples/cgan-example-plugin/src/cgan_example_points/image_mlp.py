"""``mlp-image``: a new model for the built-in ``image`` modality.

It reuses nothing of the image plugin but its tensor format, which is the contract: image
batches are float (N, C, H, W) in [-1, 1], and ``data_info`` says ``channels`` and ``resolution``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import nn

from cgan_core import GANModel

from cgan_example_points.model import Critic, mlp


class ImageGenerator(nn.Module):
    """z -> MLP -> tanh -> (C, H, W) image."""

    def __init__(self, latent_dim: int, shape: tuple[int, int, int], hidden: int, depth: int) -> None:
        super().__init__()
        self.shape = shape
        self.net = mlp(latent_dim, shape[0] * shape[1] * shape[2], hidden, depth)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(latent)).view(latent.shape[0], *self.shape)


class MLPImageGAN(GANModel):
    """An MLP GAN on flattened images (Goodfellow et al. 2014's architecture family)."""

    def __init__(self, config: Any, data_info: Mapping[str, Any]) -> None:
        super().__init__(config, data_info)
        model = config.model
        channels = int(data_info.get("channels", config.data.channels))
        resolution = int(data_info.get("resolution", config.data.resolution))
        shape = (channels, resolution, resolution)
        self.latent_dim = model.latent_dim
        self.generator = ImageGenerator(model.latent_dim, shape, model.hidden, model.depth)
        self.discriminator = Critic(mlp(channels * resolution * resolution, 1, model.hidden, model.depth))

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.randn(n, self.latent_dim, generator=generator)


def build_mlp_image(config: Any, data_info: Mapping[str, Any]) -> MLPImageGAN:
    """``ModelSpec.build`` of ``mlp-image``."""
    return MLPImageGAN(config, data_info)
