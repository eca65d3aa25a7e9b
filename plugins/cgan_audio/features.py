"""Log-mel features of audio clips (torchaudio), the input of every audio metric.

``logmel`` turns (N, 1, L) waves into (N, n_mels, frames) log-mel spectrograms with settings
chosen from the sample rate and clip length, so the same run always gets the same features;
``logmel_statistics`` summarises each clip by the mean and standard deviation of every mel band
over time (what ``fad@logmel`` compares).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

FLOOR_DB = -80.0  # power floor relative to a full-scale sine: quieter detail than this does not count


@dataclass(frozen=True)
class MelSettings:
    """Short-time Fourier and mel filterbank settings.

    Attributes:
        sample_rate: Rate of the clips (Hz).
        n_fft: FFT size (also the window length; Hann window).
        hop_length: Samples between frames.
        n_mels: Mel bands from 0 Hz to Nyquist (HTK mel scale, power spectrogram).
    """

    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int

    @classmethod
    def for_clips(cls, sample_rate: int, length: int) -> "MelSettings":
        """Settings for clips of ``length`` samples: 64 ms windows (at most the clip), hop of a quarter."""
        n_fft = 1 << int(np.floor(np.log2(max(64, min(length, sample_rate * 0.064)))))
        return cls(int(sample_rate), n_fft, n_fft // 4, max(16, min(64, n_fft // 8)))

    def full_scale_power(self) -> float:
        """Power of a full-scale sine in its STFT bin: (sum of the Hann window / 2) squared."""
        return (self.n_fft / 4.0) ** 2

    def describe(self) -> str:
        """One line for provenance."""
        return (f"mono {self.sample_rate} Hz, power mel spectrogram (torchaudio, HTK, Hann n_fft={self.n_fft}, "
                f"hop={self.hop_length}, n_mels={self.n_mels}), natural log of power relative to a full-scale "
                f"sine, floored at {FLOOR_DB:g} dB")

    def transform(self) -> torch.nn.Module:
        """The torchaudio ``MelSpectrogram`` module for these settings."""
        import torchaudio

        return torchaudio.transforms.MelSpectrogram(
            sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels,
            f_min=0.0, f_max=self.sample_rate / 2, power=2.0, mel_scale="htk", norm=None, center=True)

    def filterbank_sha256(self) -> str:
        """sha256 of the mel filterbank matrix: identifies the feature maths across library versions."""
        bank = self.transform().mel_scale.fb.detach().cpu().float().contiguous().numpy()
        return hashlib.sha256(bank.tobytes()).hexdigest()


def _batches(waves: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, waves.shape[0], batch_size):
        yield waves[start : start + batch_size]


@torch.no_grad()
def logmel(waves: torch.Tensor, settings: MelSettings, device: torch.device | str = "cpu",
           batch_size: int = 256) -> torch.Tensor:
    """Log-mel spectrograms (N, n_mels, frames) of (N, 1, L) or (N, L) waves, on the CPU."""
    if not isinstance(waves, torch.Tensor) or waves.dim() not in (2, 3):
        shape = tuple(waves.shape) if hasattr(waves, "shape") else type(waves).__name__
        raise ValueError(f"audio features need waves shaped (N, 1, L), got {shape}")
    transform = settings.transform().to(device)
    scale = 1.0 / settings.full_scale_power()
    floor = 10.0 ** (FLOOR_DB / 10.0)
    out = []
    for batch in _batches(waves.reshape(waves.shape[0], -1).float(), batch_size):
        out.append(torch.log(transform(batch.to(device)) * scale + floor).cpu())
    return torch.cat(out) if out else torch.empty(0, settings.n_mels, 0)


def logmel_statistics(spectrograms: torch.Tensor) -> np.ndarray:
    """Per-clip mean and standard deviation of each mel band over time: (N, 2 * n_mels) float64."""
    mean = spectrograms.mean(dim=2)
    std = spectrograms.std(dim=2, unbiased=False)
    return torch.cat([mean, std], dim=1).double().numpy()
