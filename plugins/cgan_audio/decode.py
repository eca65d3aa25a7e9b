"""Decoding audio files into float arrays: soundfile (libsndfile) first, PyAV as the fallback.

``torchaudio.load`` is not used: from torchaudio 2.9 it hands decoding to torchcodec, which needs
a system FFmpeg. soundfile's wheels bundle libsndfile (WAV, FLAC, OGG/Vorbis/Opus, MP3) and PyAV's
bundle FFmpeg (everything else, e.g. M4A/AAC), so decoding works on a bare machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".aac", ".wma"}


class AudioDecodeError(Exception):
    """A file could not be decoded by any backend."""


@dataclass
class DecodedAudio:
    """A decoded file.

    Attributes:
        samples: Float32 array shaped (channels, frames), nominally in [-1, 1].
        sample_rate: Rate of ``samples`` in Hz.
        backend: ``soundfile`` or ``pyav``.
    """

    samples: np.ndarray
    sample_rate: int
    backend: str


def decode_with_soundfile(path: Path) -> DecodedAudio:
    """Decode with libsndfile through soundfile.

    Raises:
        AudioDecodeError: libsndfile cannot read the file.
    """
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, ValueError, EOFError) as exc:
        raise AudioDecodeError(str(exc)) from None
    return DecodedAudio(np.ascontiguousarray(data.T), int(rate), "soundfile")


def decode_with_pyav(path: Path) -> DecodedAudio:
    """Decode the first audio stream with PyAV's bundled FFmpeg, as float32 planar.

    Raises:
        AudioDecodeError: FFmpeg cannot open the file, it has no audio stream, or no frame decodes.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioDecodeError("no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp")
            chunks: list[np.ndarray] = []
            rate = 0
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    rate = converted.sample_rate
                    chunks.append(converted.to_ndarray())
    except AudioDecodeError:
        raise
    except Exception as exc:  # PyAV raises its own error classes per FFmpeg error code
        raise AudioDecodeError(f"{type(exc).__name__}: {exc}") from None
    if not chunks or rate <= 0:
        raise AudioDecodeError("no audio frames decoded")
    return DecodedAudio(np.concatenate(chunks, axis=1).astype(np.float32), int(rate), "pyav")


def decode_audio_file(path: Path) -> DecodedAudio:
    """Decode one audio file completely, so truncated or corrupt data is detected.

    Args:
        path: A WAV, FLAC, OGG, MP3 or other audio file.

    Returns:
        The decoded samples (channels, frames) and their rate.

    Raises:
        AudioDecodeError: neither soundfile nor PyAV can decode it, or it holds no samples; the
            message names both backends' errors.
    """
    errors = []
    for decoder in (decode_with_soundfile, decode_with_pyav):
        try:
            decoded = decoder(path)
        except AudioDecodeError as exc:
            errors.append(f"{decoder.__name__.removeprefix('decode_with_')}: {exc}")
            continue
        if decoded.samples.size == 0:
            errors.append(f"{decoded.backend}: no samples")
            continue
        if not np.isfinite(decoded.samples).all():
            errors.append(f"{decoded.backend}: non-finite samples")
            continue
        return decoded
    raise AudioDecodeError("; ".join(errors))
