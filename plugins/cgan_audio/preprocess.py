"""Turning decoded audio into training clips: mono, resample, perturb, cut or pad, scale to [-1, 1]."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

# Speed factors of the augmentation: a small fixed set keeps the number of resampling kernels small.
SPEED_FACTORS = (0.9, 0.95, 1.0, 1.05, 1.1)


def to_mono(samples: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Average (channels, frames) down to a (frames,) float tensor."""
    tensor = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    if tensor.dim() == 1:
        return tensor
    return tensor.mean(dim=0)


def resample(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample a (frames,) wave with torchaudio's band-limited sinc interpolation."""
    if orig_rate == new_rate:
        return wave
    import torchaudio.functional as AF

    divisor = math.gcd(int(orig_rate), int(new_rate))
    return AF.resample(wave, int(orig_rate) // divisor, int(new_rate) // divisor)


def change_speed(wave: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``wave`` ``factor`` times faster (pitch moves with it), keeping the sample rate.

    The factor is taken as a ratio of small integers (1.05 = 21/20) whatever the sample rate, so
    the resampling kernel stays short.
    """
    if factor == 1.0:
        return wave
    return resample(wave, int(round(factor * 20)), 20)


def fit_length(wave: torch.Tensor, length: int, crop: str = "start", offset: int = 0) -> torch.Tensor:
    """Cut a (frames,) wave to ``length`` samples or pad it with silence.

    Args:
        wave: The clip.
        length: Target number of samples.
        crop: ``start`` or ``center``: which part of a longer clip is kept.
        offset: Samples of silence put before a shorter clip (clamped so the clip still fits).
    """
    frames = wave.shape[0]
    if frames >= length:
        if crop == "start":
            start = 0
        elif crop == "center":
            start = (frames - length) // 2
        else:
            raise ValueError(f"data.crop must be 'start' or 'center', got '{crop}'")
        return wave[start : start + length].clone()
    out = torch.zeros(length, dtype=wave.dtype)
    offset = max(0, min(int(offset), length - frames))
    out[offset : offset + frames] = wave
    return out


def normalize(wave: torch.Tensor, mode: str, peak_level: float) -> torch.Tensor:
    """Peak-normalise (``peak``) or leave the level (``none``); always clamp to [-1, 1]."""
    if mode == "peak":
        peak = float(wave.abs().max()) if wave.numel() else 0.0
        if peak > 1e-8:
            wave = wave * (peak_level / peak)
    elif mode != "none":
        raise ValueError(f"data.normalize must be 'peak' or 'none', got '{mode}'")
    return wave.clamp(-1.0, 1.0)


def prepare_clips(
    samples: np.ndarray | torch.Tensor,
    rate: int,
    config: object,
    copies: int = 0,
    perturb: Optional[torch.Generator] = None,
) -> list[torch.Tensor]:
    """The whole pipeline for one decoded file: the clip itself, then ``copies`` perturbed ones.

    Each clip is a (1, length) float tensor in [-1, 1]. A perturbed copy draws from ``perturb`` a
    speed factor, a shift of a shorter clip inside the padding, and a gain of 0.6-1.0 applied after
    normalisation. The file is resampled once and each speed once, however many copies use it.

    Args:
        samples: Decoded (channels, frames) or (frames,) samples.
        rate: Their sample rate.
        config: The ``data`` section (:class:`cgan_audio.config.AudioDataConfig`).
        copies: Number of perturbed copies.
        perturb: Random source of the perturbations (required when ``copies`` > 0).
    """
    wave = resample(to_mono(samples), rate, config.sample_rate)
    clips = [finish_clip(wave, config)]
    if copies and perturb is None:
        raise ValueError("perturbed copies need a torch.Generator")
    by_speed: dict[float, torch.Tensor] = {}
    for _ in range(copies):
        factor = SPEED_FACTORS[int(torch.randint(len(SPEED_FACTORS), (1,), generator=perturb))]
        if factor not in by_speed:
            by_speed[factor] = change_speed(wave, factor)
        fast = by_speed[factor]
        room = max(0, config.length - fast.shape[0])
        offset = int(torch.randint(room + 1, (1,), generator=perturb))
        gain = 0.6 + 0.4 * float(torch.rand((), generator=perturb))
        clips.append(finish_clip(fast, config, offset, gain))
    return clips


def finish_clip(wave: torch.Tensor, config: object, offset: int = 0, gain: float = 1.0) -> torch.Tensor:
    """Cut or pad a resampled (frames,) wave, normalise, apply ``gain``: a (1, length) tensor in [-1, 1]."""
    wave = fit_length(wave, config.length, config.crop, offset)
    wave = normalize(wave, config.normalize, config.peak_level) * gain
    return wave.clamp(-1.0, 1.0).unsqueeze(0)
