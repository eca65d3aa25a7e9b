"""Config sections of the audio modality and the WaveGAN model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AudioDataConfig:
    """The ``data`` section for audio.

    Attributes:
        sample_rate: Rate (Hz) every source is resampled to, and the rate of generated clips.
        length: Samples per clip; WaveGAN needs 16 * 4**k (1024, 4096, 16384 = ~1 s at 16 kHz, 65536).
        crop: Where clips longer than ``length`` are cut: ``start`` keeps the beginning, ``center``
            the middle. Shorter clips are padded with silence at the end.
        normalize: ``peak`` scales each clip so its loudest sample is ``peak_level``; ``none`` keeps the
            recorded level (every clip is still clamped to [-1, 1]).
        peak_level: Target peak of ``normalize: peak``.
        augment: Extra randomly perturbed copies of each file (speed +-10 %, time shift, gain), drawn
            from a fixed seed; small real datasets such as ``spoken-digits`` use them.
        max_items: Use at most this many files (0 = all).
    """

    sample_rate: int = 16000
    length: int = 16384
    crop: str = "start"
    normalize: str = "peak"
    peak_level: float = 0.95
    augment: int = 0
    max_items: int = 0


@dataclass
class WaveGANConfig:
    """The ``model`` section of WaveGAN (Donahue, McAuley and Puckette, ICLR 2019).

    Attributes:
        latent_dim: Size of the latent vector z (the paper: 100).
        model_size: Width ``d`` of the networks: the generator starts with ``2**(k-1) * d`` channels
            for ``k`` upsampling layers and the discriminator ends with that many. The paper uses 64;
            the default 8 (with batch size 16) trains 40 steps in about a minute on two CPU
            cores; ``--set model.model_size=64 --set train.batch_size=64`` is the paper's full setting.
        kernel_size: Convolution length (the paper: 25).
        stride: Up/downsampling factor of each layer (the paper: 4).
        phase_shuffle: Phase shuffle radius ``n`` in the discriminator: each layer's activations are
            shifted by a random -n..n samples (the paper: 2; 0 turns it off).
        batch_norm: Batch normalisation in the generator (off in the paper).
    """

    latent_dim: int = 100
    model_size: int = 8
    kernel_size: int = 25
    stride: int = 4
    phase_shuffle: int = 2
    batch_norm: bool = False
