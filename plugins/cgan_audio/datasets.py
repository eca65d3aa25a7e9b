"""Named audio datasets: ``spoken-digits`` (real recordings from a Debian package) and ``tones``.

``spoken-digits`` reads the ten digit recordings ("zero" .. "nine", one female US English
speaker, 8 kHz) that Debian's ``asterisk-core-sounds-en-wav`` installs, labelled 0-9. Ten files
are too few to train on, so by default each gives 31 extra perturbed copies (speed, shift, gain;
see ``data.augment``). ``tones`` is generated: six labelled classes of synthetic sounds, for tests
and for checking a setup without any installed data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cgan_core import DataRequest, LoadedData, SkipLog, TensorData, UsageError, tensor_fingerprint

from cgan_audio.preprocess import normalize
from cgan_audio.sources import SPLIT_SEEDS, audio_info, check_data_config, clips_from_files

SPOKEN_DIGITS_PACKAGE = "asterisk-core-sounds-en-wav"
SPOKEN_DIGITS_DIRS = (
    Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits"),
    Path("/usr/share/asterisk/sounds/en/digits"),
)
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def spoken_digits_dirs() -> list[Path]:
    """Where the digit recordings are looked for: ``$CGAN_DATA_DIR/spoken-digits``, then Debian's paths."""
    dirs = []
    if os.environ.get("CGAN_DATA_DIR"):
        dirs.append(Path(os.environ["CGAN_DATA_DIR"]) / "spoken-digits")
    dirs.extend(SPOKEN_DIGITS_DIRS)
    return dirs


def find_spoken_digit_files() -> list[Path]:
    """The ten files ``0.wav`` .. ``9.wav`` (any audio suffix) from the first directory holding all ten.

    Raises:
        UsageError: no directory holds them; the message names the Debian package to install.
    """
    for directory in spoken_digits_dirs():
        found = []
        for digit in range(10):
            matches = sorted(directory.glob(f"{digit}.*")) if directory.is_dir() else []
            if not matches:
                break
            found.append(matches[0])
        if len(found) == 10:
            return found
    searched = ", ".join(str(d) for d in spoken_digits_dirs())
    raise UsageError(f"spoken digits not found (searched {searched}); install them with "
                     f"'apt-get install {SPOKEN_DIGITS_PACKAGE}', or put 0.wav .. 9.wav in $CGAN_DATA_DIR/spoken-digits")


def load_spoken_digits(request: DataRequest) -> LoadedData:
    """The ten recorded digits, each with ``data.augment`` perturbed copies, labelled 0-9.

    ``split="reference"`` draws the perturbed copies from another seed, so an evaluation compares
    against clips the model was not trained on (the originals are shared: there are only ten).
    """
    files = find_spoken_digit_files()
    if request.config.max_items:
        files = files[: request.config.max_items]
    clips, labels, skipped = clips_from_files(request, files, list(range(len(files))))
    info = audio_info(clips, request.config.sample_rate, labels, DIGIT_NAMES)
    return LoadedData(TensorData(clips), info, labels, skipped, "spoken-digits", tensor_fingerprint(clips))


# --- generated tones ------------------------------------------------------------------------------
def _envelope(n: int, rng: np.random.Generator) -> np.ndarray:
    attack = max(1, int(n * rng.uniform(0.01, 0.1)))
    env = np.exp(-np.linspace(0.0, rng.uniform(2.0, 6.0), n))
    env[:attack] *= np.linspace(0.0, 1.0, attack)
    return env


def _sine(t: np.ndarray, rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    return np.sin(2 * np.pi * rng.uniform(low, high) * t + rng.uniform(0, 2 * np.pi))


def _chirp(t: np.ndarray, f0: float, f1: float) -> np.ndarray:
    duration = t[-1] if t[-1] > 0 else 1.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * duration))
    return np.sin(phase)


def _tone_makers(nyquist: float) -> list[tuple[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]]]:
    top = 0.8 * nyquist  # keep every partial below Nyquist whatever the sample rate

    def square(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        f = rng.uniform(150.0, 300.0)
        harmonics = [k for k in range(1, 40, 2) if k * f < top]
        return sum(np.sin(2 * np.pi * k * f * t) / k for k in harmonics) * (4 / np.pi)

    def noise_burst(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(t.shape[0])
        return np.convolve(noise, np.ones(4) / 4, mode="same")  # a gentle low-pass

    return [
        ("sine-low", lambda t, rng: _sine(t, rng, 200.0, 400.0)),
        ("sine-high", lambda t, rng: _sine(t, rng, min(800.0, top / 2), min(1600.0, top))),
        ("chirp-up", lambda t, rng: _chirp(t, 200.0, min(2400.0, top))),
        ("chirp-down", lambda t, rng: _chirp(t, min(2400.0, top), 200.0)),
        ("square", square),
        ("noise-burst", noise_burst),
    ]


TONE_CLASSES = [name for name, _ in _tone_makers(8000.0)]
TONES_PER_CLASS = 64


def make_tones(sample_rate: int, length: int, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``per_class`` clips of each tone class: random pitch, onset, duration and decay.

    Returns:
        Clips (N, 1, length) in [-1, 1] (unnormalised peaks 0.3-0.9) and labels (N,).
    """
    rng = np.random.default_rng(seed)
    makers = _tone_makers(sample_rate / 2)
    clips, labels = [], []
    for index in range(per_class * len(makers)):
        label = index % len(makers)
        frames = int(length * rng.uniform(0.4, 0.9))
        onset = int(rng.integers(0, length - frames + 1))
        t = np.arange(frames) / sample_rate
        wave = makers[label][1](t, rng) * _envelope(frames, rng)
        wave = wave / (np.abs(wave).max() + 1e-8) * rng.uniform(0.3, 0.9)
        clip = np.zeros(length, dtype=np.float32)
        clip[onset : onset + frames] = wave
        clips.append(clip)
        labels.append(label)
    return torch.from_numpy(np.stack(clips)).unsqueeze(1), torch.tensor(labels, dtype=torch.long)


def load_tones(request: DataRequest) -> LoadedData:
    """Six classes of generated sounds (sines, chirps, a square wave, noise bursts), 64 clips each.

    ``data.augment`` adds that many further clips per class; ``split="reference"`` uses another seed.
    """
    config = request.config
    check_data_config(config)
    per_class = TONES_PER_CLASS * (1 + config.augment)
    clips, labels = make_tones(config.sample_rate, config.length, per_class, 1234 + SPLIT_SEEDS.get(request.split, 2))
    if config.normalize == "peak":
        clips = torch.stack([normalize(clip, "peak", config.peak_level) for clip in clips])
    if config.max_items:
        clips, labels = clips[: config.max_items], labels[: config.max_items]
    info = audio_info(clips, config.sample_rate, labels, TONE_CLASSES)
    return LoadedData(TensorData(clips), info, labels, SkipLog(), "tones", tensor_fingerprint(clips))

