"""DCGAN (Radford, Metz and Chintala, ICLR 2016) for 32x32 and 64x64 images."""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch
from torch import nn

from cgan_core import GANModel, UsageError

SUPPORTED_RESOLUTIONS = (32, 64)


def _upsampling_blocks(resolution: int) -> int:
    return int(math.log2(resolution)) - 2  # 4x4 -> resolution, doubling each block


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions, N(1, 0.02) scale and zero shift for batch norm (the paper's init)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z -> 4x4 feature maps -> (transposed conv, batch norm, ReLU) x k -> tanh image."""

    def __init__(self, latent_dim: int, channels: int, resolution: int, base: int) -> None:
        super().__init__()
        blocks = _upsampling_blocks(resolution)
        width = base * 2 ** (blocks - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(blocks - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent.view(latent.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image -> (strided conv, batch norm, LeakyReLU 0.2) x k -> 4x4 conv to one logit."""

    def __init__(self, channels: int, resolution: int, base: int, spectral_norm: bool) -> None:
        super().__init__()
        wrap = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        blocks = _upsampling_blocks(resolution)
        layers: list[nn.Module] = [wrap(nn.Conv2d(channels, base, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2, True)]
        width = base
        for _ in range(blocks - 1):
            layers.append(wrap(nn.Conv2d(width, width * 2, 4, 2, 1, bias=False)))
            if not spectral_norm:
                layers.append(nn.BatchNorm2d(width * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            width *= 2
        layers.append(wrap(nn.Conv2d(width, 1, 4, 1, 0, bias=False)))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).view(images.shape[0])


class DCGAN(GANModel):
    """The DCGAN generator/discriminator pair behind the core's default adversarial step."""

    def __init__(self, config: Any, data_info: Mapping[str, Any]) -> None:
        super().__init__(config, data_info)
        model_config = config.model
        channels = int(data_info.get("channels", config.data.channels))
        resolution = int(data_info.get("resolution", config.data.resolution))
        if resolution not in SUPPORTED_RESOLUTIONS:
            raise UsageError(f"dcgan supports resolutions {SUPPORTED_RESOLUTIONS}, got {resolution}; "
                             "set --set data.resolution=32 or 64 (28x28 sources are resized)")
        self.latent_dim = model_config.latent_dim
        self.generator = DCGANGenerator(model_config.latent_dim, channels, resolution, model_config.base_channels)
        self.discriminator = DCGANDiscriminator(channels, resolution, model_config.base_channels,
                                                model_config.spectral_norm)
        self.generator.apply(init_dcgan_weights)
        self.discriminator.apply(init_dcgan_weights)

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.randn(n, self.latent_dim, generator=generator)


def build_dcgan(config: Any, data_info: Mapping[str, Any]) -> DCGAN:
    """``ModelSpec.build`` for DCGAN."""
    return DCGAN(config, data_info)
