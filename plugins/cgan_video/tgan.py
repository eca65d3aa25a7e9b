"""TGAN (Saito, Matsumoto and Saito, ICCV 2017): a temporal and an image generator, a 3-D critic.

- Temporal generator: z0 -> linear -> 1-D transposed convolutions -> T per-frame latents z1^t.
- Image generator: for each frame, z0 and z1^t are projected (linear) to 4x4 feature maps,
  concatenated, and 2-D transposed convolutions make the frame (tanh).
- Discriminator: 3-D convolutions over (T, H, W) halve time and space down to 4x4, then a 2-D
  convolution over the remaining (channels x time) maps gives one score.
- Objective: the Wasserstein critic loss with singular value clipping after every
  ``model.clip_every``-th discriminator update (see :mod:`cgan_video.clipping`).

Video tensors are ``(N, C, T, H, W)`` in ``[-1, 1]``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch
from torch import nn

from cgan_core import GANModel, UsageError

from cgan_video.clipping import clip_singular_values, clip_weights

SUPPORTED_RESOLUTIONS = (32, 64)
CLIPPING_MODES = ("auto", "singular", "weight", "none")


def init_tgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases; batch norm N(1, 0.02) scale (DCGAN-style, as TGAN)."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class TemporalGenerator(nn.Module):
    """z0 ``(N, K0)`` -> per-frame latents ``(N, T, K1)`` through 1-D transposed convolutions.

    The sequence starts at length 4 and doubles until it covers ``frames``; longer sequences
    are cut to ``frames``, so any clip length works.
    """

    def __init__(self, latent_dim: int, frame_latent_dim: int, frames: int, width: int = 256) -> None:
        super().__init__()
        self.frames = frames
        self.width = width
        self.project = nn.Sequential(nn.Linear(latent_dim, width * 4, bias=False), nn.BatchNorm1d(width * 4),
                                     nn.ReLU(True))
        layers: list[nn.Module] = []
        length, channels = 4, width
        while length < frames:
            layers += [nn.ConvTranspose1d(channels, max(channels // 2, 32), 4, 2, 1, bias=False),
                       nn.BatchNorm1d(max(channels // 2, 32)), nn.ReLU(True)]
            channels = max(channels // 2, 32)
            length *= 2
        layers += [nn.Conv1d(channels, frame_latent_dim, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z0: torch.Tensor) -> torch.Tensor:
        hidden = self.project(z0).view(z0.shape[0], self.width, 4)
        return self.net(hidden)[:, :, : self.frames].transpose(1, 2)  # (N, T, K1)


class ImageGenerator(nn.Module):
    """(z0, z1^t) -> one frame: two linear projections to 4x4 maps, then transposed 2-D convolutions."""

    def __init__(self, latent_dim: int, frame_latent_dim: int, channels: int, resolution: int, base: int) -> None:
        super().__init__()
        blocks = int(math.log2(resolution)) - 2  # 4x4 -> resolution
        width = base * 2 ** (blocks - 1)
        self.half = width // 2
        self.project_clip = nn.Sequential(nn.Linear(latent_dim, self.half * 16, bias=False),
                                          nn.BatchNorm1d(self.half * 16), nn.ReLU(True))
        self.project_frame = nn.Sequential(nn.Linear(frame_latent_dim, self.half * 16, bias=False),
                                           nn.BatchNorm1d(self.half * 16), nn.ReLU(True))
        layers: list[nn.Module] = []
        for _ in range(blocks - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        clip = self.project_clip(z0).view(-1, self.half, 4, 4)
        frame = self.project_frame(z1).view(-1, self.half, 4, 4)
        return self.net(torch.cat([clip, frame], dim=1))


class TGANGenerator(nn.Module):
    """The whole generator: latent z0 ``(N, K0)`` -> video ``(N, C, T, H, W)``."""

    def __init__(self, latent_dim: int, frame_latent_dim: int, channels: int, frames: int, resolution: int,
                 base: int) -> None:
        super().__init__()
        self.temporal = TemporalGenerator(latent_dim, frame_latent_dim, frames)
        self.image = ImageGenerator(latent_dim, frame_latent_dim, channels, resolution, base)

    def forward(self, z0: torch.Tensor) -> torch.Tensor:
        n = z0.shape[0]
        z1 = self.temporal(z0)  # (N, T, K1)
        frames = z1.shape[1]
        z0_per_frame = z0.unsqueeze(1).expand(-1, frames, -1).reshape(n * frames, -1)
        images = self.image(z0_per_frame, z1.reshape(n * frames, -1))  # (N*T, C, H, W)
        return images.view(n, frames, *images.shape[1:]).transpose(1, 2)  # (N, C, T, H, W)


class TGANDiscriminator(nn.Module):
    """Video ``(N, C, T, H, W)`` -> one score per clip: 3-D convolutions, then a 2-D convolution."""

    def __init__(self, channels: int, frames: int, resolution: int, base: int) -> None:
        super().__init__()
        blocks = int(math.log2(resolution)) - 2  # resolution -> 4x4
        layers: list[nn.Module] = []
        width_in, width, length = channels, base, frames
        for index in range(blocks):
            # Time is halved like space while more than one step is left (kernel 4 needs pad 1).
            kt, st, pt = (4, 2, 1) if length > 1 else (1, 1, 0)
            layers.append(nn.Conv3d(width_in, width, (kt, 4, 4), (st, 2, 2), (pt, 1, 1), bias=index == 0))
            if index > 0:
                layers.append(nn.BatchNorm3d(width))
            layers.append(nn.LeakyReLU(0.2, True))
            length = (length + 2 * pt - kt) // st + 1
            width_in, width = width, width * 2
        self.net = nn.Sequential(*layers)
        self.score = nn.Conv2d(width_in * length, 1, 4, 1, 0)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        features = self.net(video)  # (N, C', T', 4, 4)
        n, c, t, h, w = features.shape
        return self.score(features.reshape(n, c * t, h, w)).view(n)


def resolve_clipping(mode: str, loss: str) -> str:
    """The clipping actually applied: ``auto`` is ``singular`` for ``wasserstein``, else ``none``."""
    if mode not in CLIPPING_MODES:
        raise UsageError(f"unknown model.clipping '{mode}'; valid: {', '.join(CLIPPING_MODES)}")
    if mode == "auto":
        return "singular" if loss == "wasserstein" else "none"
    return mode


class TGAN(GANModel):
    """TGAN behind the core's default adversarial step; clipping runs in :meth:`after_discriminator_step`.

    Attributes:
        clipping: The clipping mode in force (``singular``, ``weight`` or ``none``).
        clip_count: How many times clipping has been applied (a registered buffer, so it is
            checkpointed and a resumed run clips on the same updates).
        d_updates: Discriminator updates seen (also a buffer).
    """

    def __init__(self, config: Any, data_info: Mapping[str, Any]) -> None:
        super().__init__(config, data_info)
        model_config = config.model
        shape = data_info.get("shape") or [config.data.channels, config.data.frames, config.data.resolution,
                                            config.data.resolution]
        channels, frames, height, width = (int(v) for v in shape)
        if height != width or height not in SUPPORTED_RESOLUTIONS:
            raise UsageError(f"tgan supports square {SUPPORTED_RESOLUTIONS[0]}x{SUPPORTED_RESOLUTIONS[0]} or "
                             f"{SUPPORTED_RESOLUTIONS[1]}x{SUPPORTED_RESOLUTIONS[1]} frames, got {height}x{width}; "
                             "set --set data.resolution=32 or 64")
        if model_config.clip_every < 1:
            raise UsageError(f"model.clip_every must be at least 1, got {model_config.clip_every}")
        self.latent_dim = model_config.latent_dim
        self.clipping = resolve_clipping(model_config.clipping, config.train.loss)
        self.clip_every = model_config.clip_every
        self.weight_clip = model_config.weight_clip
        self.generator = TGANGenerator(model_config.latent_dim, model_config.frame_latent_dim, channels, frames,
                                       height, model_config.base_channels)
        self.discriminator = TGANDiscriminator(channels, frames, height, model_config.base_channels)
        self.generator.apply(init_tgan_weights)
        self.discriminator.apply(init_tgan_weights)
        self.register_buffer("d_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("clip_count", torch.zeros((), dtype=torch.long))

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.randn(n, self.latent_dim, generator=generator)

    def after_discriminator_step(self, step: int) -> None:
        """Clip the critic after every ``clip_every``-th discriminator update."""
        self.d_updates += 1
        if self.clipping == "none" or int(self.d_updates) % self.clip_every:
            return
        if self.clipping == "singular":
            clip_singular_values(self.discriminator)
        else:
            clip_weights(self.discriminator, self.weight_clip)
        self.clip_count += 1


def build_tgan(config: Any, data_info: Mapping[str, Any]) -> TGAN:
    """``ModelSpec.build`` for TGAN."""
    return TGAN(config, data_info)
