"""The ``moving-digits`` dataset: the Moving-MNIST recipe on scikit-learn's bundled digits.

Each clip shows one or two handwritten digits (scikit-learn's 1,797 8x8 digits, scaled to 7/16
of the frame side, like MNIST's 28 pixels in 64) moving in straight lines at a fixed speed and
bouncing off the frame borders; overlapping digits combine by maximum. Clips are rendered on
demand from a few integers per clip, so the dataset costs almost no memory at any size, and
the same ``seed`` always gives the same clips. The ``reference`` split is an independent
stream of ``data.reference_size`` clips (held-out data for evaluation).

Labels: a clip with digits ``a`` (and ``b``) has label ``a`` (or ``10 * a + b``); the encoding
is recorded in ``info["digits_per_clip"]``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from cgan_core import DataRequest, LoadedData, SkipLog, UsageError

from cgan_video.clips import clip_info, fingerprint_uint8, to_unit_range

REFERENCE_SEED_OFFSET = 1_000_003  # the reference split draws from a disjoint seed stream
SPEED = 0.1  # fraction of the free range travelled per frame (Moving-MNIST's step length)


@functools.lru_cache(maxsize=4)
def digit_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits scaled to ``size`` x ``size`` uint8 pixels, and their labels.

    Cached: scikit-learn parses its CSV (about a second) and every split and metric uses these.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    scaled = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    pixels = (scaled[:, 0] * 255).round().to(torch.uint8).numpy()
    labels = bunch.target.astype(np.int64)
    pixels.setflags(write=False)  # shared by every caller of the cache
    labels.setflags(write=False)
    return pixels, labels


def bounce_paths(rng: np.random.Generator, count: int, frames: int, free: int) -> np.ndarray:
    """Top-left corners ``(count, frames, 2)`` of objects moving and bouncing inside ``[0, free]``."""
    position = rng.uniform(0.0, 1.0, size=(count, 2))
    angle = rng.uniform(0.0, 2.0 * np.pi, size=count)
    velocity = np.stack([np.sin(angle), np.cos(angle)], axis=1) * SPEED
    path = np.empty((count, frames, 2))
    for t in range(frames):
        path[:, t] = position
        position = position + velocity
        for axis in range(2):  # reflect off the walls at 0 and 1
            low, high = position[:, axis] < 0.0, position[:, axis] > 1.0
            position[low, axis] = -position[low, axis]
            position[high, axis] = 2.0 - position[high, axis]
            velocity[low | high, axis] *= -1.0
    return np.rint(path * free).astype(np.int16)


class MovingDigits(Dataset):
    """Clips rendered on demand; items are float ``(C, T, H, W)`` in ``[-1, 1]``.

    Args:
        size: Number of clips.
        frames: Frames per clip.
        resolution: Frame side in pixels (at least 16).
        digits: Digits per clip (1 or 2).
        channels: 1 (grayscale) or 3 (the gray value in every channel).
        seed: Seed of the digit choices and paths.
    """

    def __init__(self, size: int, frames: int, resolution: int, digits: int, channels: int, seed: int) -> None:
        self.frames, self.resolution, self.channels = frames, resolution, channels
        self.digit_size = max(4, round(resolution * 7 / 16))
        self.pixels, digit_labels = digit_images(self.digit_size)
        rng = np.random.default_rng(seed)
        self.choice = rng.integers(0, len(self.pixels), size=(size, digits))
        self.paths = bounce_paths(rng, size * digits, frames, resolution - self.digit_size).reshape(
            size, digits, frames, 2)
        chosen = digit_labels[self.choice]
        weights = 10 ** np.arange(digits - 1, -1, -1)
        self.labels = torch.as_tensor((chosen * weights).sum(axis=1), dtype=torch.int64)
        self.digit_labels = chosen

    def __len__(self) -> int:
        return int(self.choice.shape[0])

    def render(self, index: int) -> np.ndarray:
        """The uint8 frames ``(T, H, W)`` of clip ``index``."""
        side, s = self.resolution, self.digit_size
        video = np.zeros((self.frames, side, side), dtype=np.uint8)
        for slot, image_index in enumerate(self.choice[index]):
            digit = self.pixels[image_index]
            for t, (y, x) in enumerate(self.paths[index, slot]):
                window = video[t, y : y + s, x : x + s]
                np.maximum(window, digit, out=window)
        return video

    def __getitem__(self, index: int) -> torch.Tensor:
        clip = to_unit_range(self.render(int(index))).unsqueeze(0)  # (1, T, H, W)
        return clip.expand(self.channels, -1, -1, -1).contiguous() if self.channels > 1 else clip


def load_moving_digits(request: DataRequest) -> LoadedData:
    """``DatasetSpec.load`` of ``moving-digits`` (config: size, digits, frames, resolution, seed)."""
    config = request.config
    if config.digits not in (1, 2):
        raise UsageError(f"data.digits must be 1 or 2 for moving-digits, got {config.digits}")
    if config.resolution < 16:
        raise UsageError(f"data.resolution must be at least 16 for moving-digits, got {config.resolution}")
    if config.frames < 1:
        raise UsageError(f"data.frames must be positive, got {config.frames}")
    if config.channels not in (1, 3):
        raise UsageError(f"data.channels must be 1 or 3, got {config.channels}")
    reference = request.split != "train"
    size = config.reference_size if reference else config.size
    size = min(size, config.max_items) if config.max_items else size
    if size < 1:
        raise UsageError(f"data.{'reference_size' if reference else 'size'} must be positive for moving-digits")
    seed = config.seed + (REFERENCE_SEED_OFFSET if reference else 0)
    dataset = MovingDigits(size, config.frames, config.resolution, config.digits, config.channels, seed)
    extra: dict[str, Any] = {
        "digits_per_clip": config.digits,
        "num_classes": 10 ** config.digits,
        "label_encoding": "decimal: one digit per position, the first digit most significant",
        "digit_size": dataset.digit_size,
    }
    info = clip_info((config.channels, config.frames, config.resolution, config.resolution), len(dataset),
                     config.fps, dataset.labels, extra)
    fingerprint = fingerprint_uint8(torch.as_tensor(dataset.paths), "moving-digits", seed, config.resolution,
                                    config.channels, dataset.choice.tolist()[:1000])
    return LoadedData(dataset, info, dataset.labels, SkipLog(), "moving-digits", fingerprint)

