"""WaveGAN (Donahue, McAuley and Puckette, ICLR 2019): raw-waveform GAN with 1-D convolutions.

The generator is DCGAN flattened to one dimension: a dense layer to 16 steps of ``2**(k-1) * d``
channels, then ``k`` transposed convolutions (kernel 25, stride 4) that each quadruple the length
and halve the channels, ending in one tanh channel. The discriminator mirrors it with strided
convolutions, LeakyReLU(0.2) and phase shuffle, and ends in a dense layer to one score. There is
no batch norm by default: the model trains with WGAN-GP, whose penalty is per example.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import nn

from cgan_core import GANModel, UsageError

from cgan_audio.phase_shuffle import PhaseShuffle

BASE_STEPS = 16  # length of the generator's first feature map (the paper's 16 x 1024)


def upsampling_layers(length: int, stride: int) -> int:
    """Number of stride-``stride`` layers that take 16 steps to ``length`` samples.

    Raises:
        UsageError: ``length`` is not 16 * stride**k with k >= 1.
    """
    layers, size = 0, BASE_STEPS
    while size < length:
        size *= stride
        layers += 1
    if size != length or layers < 1:
        valid = ", ".join(str(BASE_STEPS * stride**k) for k in range(2, 7))
        raise UsageError(f"wavegan needs data.length = 16 * {stride}**k samples, got {length}; valid: {valid}")
    return layers


def conv_padding(kernel_size: int, stride: int) -> tuple[int, int]:
    """Padding and output padding that make a layer change the length by exactly ``stride``."""
    if kernel_size < stride:
        raise UsageError(f"model.kernel_size ({kernel_size}) must be at least model.stride ({stride})")
    padding = (kernel_size - stride + 1) // 2
    return padding, 2 * padding - (kernel_size - stride)


class WaveGANGenerator(nn.Module):
    """z (N, latent) -> waveform (N, 1, 16 * stride**layers) in [-1, 1]."""

    def __init__(self, latent_dim: int, model_size: int, layers: int, kernel_size: int = 25, stride: int = 4,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.width = model_size * 2 ** (layers - 1)
        self.dense = nn.Linear(latent_dim, BASE_STEPS * self.width)
        self.dense_norm = nn.BatchNorm1d(self.width) if batch_norm else nn.Identity()
        padding, output_padding = conv_padding(kernel_size, stride)
        blocks: list[nn.Module] = []
        width = self.width
        for index in range(layers):
            last = index == layers - 1
            out = 1 if last else width // 2
            blocks.append(nn.ConvTranspose1d(width, out, kernel_size, stride, padding, output_padding))
            if last:
                blocks.append(nn.Tanh())
            else:
                if batch_norm:
                    blocks.append(nn.BatchNorm1d(out))
                blocks.append(nn.ReLU())
            width = out
        self.net = nn.Sequential(*blocks)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.dense(latent.view(latent.shape[0], -1)).view(latent.shape[0], self.width, BASE_STEPS)
        return self.net(torch.relu(self.dense_norm(x)))


class WaveGANDiscriminator(nn.Module):
    """waveform (N, 1, L) -> one unbounded score per example (a WGAN critic)."""

    def __init__(self, model_size: int, layers: int, kernel_size: int = 25, stride: int = 4,
                 phase_shuffle: int = 2) -> None:
        super().__init__()
        padding, _ = conv_padding(kernel_size, stride)
        blocks: list[nn.Module] = []
        channels = 1
        for index in range(layers):
            out = model_size * 2**index
            blocks += [nn.Conv1d(channels, out, kernel_size, stride, padding), nn.LeakyReLU(0.2)]
            if index < layers - 1:
                blocks.append(PhaseShuffle(phase_shuffle))
            channels = out
        self.net = nn.Sequential(*blocks)
        self.score = nn.Linear(BASE_STEPS * channels, 1)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return self.score(self.net(waves).flatten(1)).view(waves.shape[0])


class WaveGAN(GANModel):
    """The WaveGAN pair behind the core's default adversarial step (WGAN-GP, 5 critic steps)."""

    def __init__(self, config: Any, data_info: Mapping[str, Any]) -> None:
        super().__init__(config, data_info)
        model_config = config.model
        length = int(data_info.get("length", config.data.length))
        if int(data_info.get("channels", 1)) != 1:
            raise UsageError("wavegan generates mono audio; the audio modality mixes sources to one channel")
        if model_config.model_size < 1 or model_config.latent_dim < 1:
            raise UsageError("model.model_size and model.latent_dim must be positive")
        if model_config.phase_shuffle < 0:
            raise UsageError(f"model.phase_shuffle must be 0 or more samples, got {model_config.phase_shuffle}")
        layers = upsampling_layers(length, model_config.stride)
        self.latent_dim = model_config.latent_dim
        self.generator = WaveGANGenerator(model_config.latent_dim, model_config.model_size, layers,
                                          model_config.kernel_size, model_config.stride, model_config.batch_norm)
        self.discriminator = WaveGANDiscriminator(model_config.model_size, layers, model_config.kernel_size,
                                                  model_config.stride, model_config.phase_shuffle)

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Uniform noise in [-1, 1], as in the paper."""
        if generator is not None:
            return (torch.rand(n, self.latent_dim, generator=generator) * 2 - 1).to(self.device)
        return torch.rand(n, self.latent_dim, device=self.device) * 2 - 1


def build_wavegan(config: Any, data_info: Mapping[str, Any]) -> WaveGAN:
    """``ModelSpec.build`` for WaveGAN."""
    return WaveGAN(config, data_info)
