"""``mlp-gan``: fully connected generator and discriminator for 2-D points.

A :class:`cgan_core.GANModel` only says *what* the networks are: it sets ``generator`` and
``discriminator`` and draws latent noise. The core's trainer does the rest (optimisers,
the adversarial step with the configured loss, EMA, checkpoints, previews).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import nn

from cgan_core import GANModel


def mlp(inputs: int, outputs: int, hidden: int, depth: int) -> nn.Sequential:
    """``depth`` hidden layers of ``hidden`` units with LeakyReLU(0.2), then a linear output layer."""
    layers: list[nn.Module] = []
    width = inputs
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


class Critic(nn.Module):
    """Wraps an MLP so it returns one logit per sample, shaped (N,) as the core's losses expect."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        return self.net(samples.flatten(1)).squeeze(1)


class MLPGAN(GANModel):
    """z ~ N(0, I) -> MLP -> (x, y); the critic scores points with another MLP."""

    def __init__(self, config: Any, data_info: Mapping[str, Any]) -> None:
        super().__init__(config, data_info)
        model = config.model
        self.latent_dim = model.latent_dim
        self.generator = mlp(model.latent_dim, 2, model.hidden, model.depth)
        self.discriminator = Critic(mlp(2, 1, model.hidden, model.depth))

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        # self.randn draws from `generator` when one is given, so a seed fixes the samples.
        return self.randn(n, self.latent_dim, generator=generator)


def build_mlp_gan(config: Any, data_info: Mapping[str, Any]) -> MLPGAN:
    """``ModelSpec.build`` of ``mlp-gan``: ``config`` is the whole run config."""
    return MLPGAN(config, data_info)
