"""Writing audio samples: one 16-bit PCM WAV (or FLAC) per sample, a spectrogram preview, TensorBoard audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from cgan_core import SampleInfo

from cgan_audio.spectrogram import spectrogram_grid

PREVIEW_CLIPS_IN_WAV = 8  # clips strung together in the preview's listening file
PREVIEW_GAP_SECONDS = 0.25


def sample_rate_of(data_info: Mapping[str, Any]) -> int:
    """The run's sample rate (16 kHz when a run predates the field)."""
    return int(data_info.get("sample_rate", 16000))


def to_pcm16(samples: torch.Tensor) -> np.ndarray:
    """(N, 1, L) floats in [-1, 1] to (N, L) int16, rounded (clipped outside the range)."""
    waves = samples.detach().float().cpu().reshape(samples.shape[0], -1).clamp(-1.0, 1.0)
    return (waves * 32767.0).round().to(torch.int16).numpy()


def write_audio_file(pcm: np.ndarray, path: Path, sample_rate: int, fmt: str = "wav") -> None:
    """Write one mono int16 clip as 16-bit PCM WAV or FLAC."""
    import soundfile

    soundfile.write(str(path), pcm, sample_rate, subtype="PCM_16", format=fmt.upper())


def write_audio_samples(samples: torch.Tensor, out_dir: Path, info: SampleInfo,
                        data_info: Mapping[str, Any], fmt: str = "wav") -> list[Path]:
    """Write each sample as ``out_dir/[seedS-]sample-NNNNNN.wav`` (or ``.flac``); returns the paths in order."""
    if fmt not in ("wav", "flac"):
        raise ValueError(f"audio samples are written as wav or flac, not '{fmt}'")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rate = sample_rate_of(data_info)
    prefix = f"seed{info.seed}-" if info.seed is not None else ""
    paths = []
    for offset, pcm in enumerate(to_pcm16(samples)):
        path = out_dir / f"{prefix}sample-{info.start_index + offset:06d}.{fmt}"
        write_audio_file(pcm, path, rate, fmt)
        paths.append(path)
    return paths


def write_audio_preview(samples: torch.Tensor, path: Path, data_info: Mapping[str, Any]) -> Path:
    """Write a spectrogram grid PNG at ``path`` and a WAV of the first clips in a row.

    The WAV goes to an ``audio/`` folder beside the PNG (``samples/audio/step-N.wav`` in a run), so
    the previews folder itself holds only pictures.

    Returns:
        The PNG's path (``.png`` is added when missing).
    """
    from PIL import Image

    path = Path(path)
    if path.suffix != ".png":
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(spectrogram_grid(samples)).save(path, format="PNG", optimize=False, compress_level=6)
    rate = sample_rate_of(data_info)
    gap = np.zeros(int(rate * PREVIEW_GAP_SECONDS), dtype=np.int16)
    pieces = []
    for pcm in to_pcm16(samples[:PREVIEW_CLIPS_IN_WAV]):
        pieces += [pcm, gap]
    if pieces:
        listening = path.parent / "audio" / path.with_suffix(".wav").name
        listening.parent.mkdir(exist_ok=True)
        write_audio_file(np.concatenate(pieces), listening, rate)
    return path


def log_audio_preview(writer: Any, tag: str, samples: torch.Tensor, step: int, data_info: Mapping[str, Any]) -> None:
    """Add the first clips as TensorBoard audio and the spectrogram grid as an image."""
    rate = sample_rate_of(data_info)
    waves = samples.detach().float().cpu().clamp(-1.0, 1.0)
    for index in range(min(4, waves.shape[0])):
        writer.add_audio(f"{tag}/{index}", waves[index].reshape(1, -1), step, sample_rate=rate)
    writer.add_image(f"{tag}/spectrograms", spectrogram_grid(samples), step, dataformats="HWC")
