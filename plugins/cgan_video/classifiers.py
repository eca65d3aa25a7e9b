"""Domain classifiers cgan trains on a video dataset's own labels, for the offline video metrics.

Two small networks learn which classes (for moving-digits: which digits) a clip shows:

- :class:`ClipClassifier`, 3-D convolutions over whole clips; its 128-d penultimate layer gives
  the features of ``fvd@classifier``.
- :class:`FrameClassifier`, 2-D convolutions over single frames; ``temporal-consistency``
  asks it which classes each frame shows. It also learns to say "nothing" on negatives (noise,
  flat frames, pixel-shuffled frames), so frames in which nothing is drawn count against
  consistency instead of being read as some class.

Both predict a distribution over classes (softmax) trained towards the clip's class set:
moving-digits' label ``10 * a + b`` becomes the digit set ``{a, b}`` with probability 1/2 each,
any other label a single class. The frame classifier has one more class, "nothing", the
target of its negatives. Inputs are resized to 32x32 (digits stay legible, training stays
cheap). Training uses a forked, seeded RNG, so it depends only on the
data and the recipe and never disturbs a training run's random streams. Weights are cached as
safetensors under ``cache_dir/classifiers`` keyed by the data fingerprint and the recipe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from cgan_core import (ClassifierFit, EvalContext, MetricUnavailable, UsageError, cache_key, cached_classifier,
                       fit_classifier, tensor_fingerprint)

RECIPE_VERSION = 1
INPUT_SIDE = 32


@dataclass(frozen=True)
class Recipe:
    """How a classifier is trained; every field is part of the cache key.

    Attributes:
        kind: ``clip`` or ``frame``.
        steps: Optimiser steps.
        batch_size: Clips per step (frame classifier: frames per step).
        lr: Peak learning rate (Adam, one-cycle schedule).
        max_clips: Clips taken from the training data (the first ones, deterministic).
        max_shift: Random translation in pixels (augmentation; moving-digits needs none, its
            digits are everywhere already).
        holdout: Share of the clips kept out of training to measure accuracy.
        seed: Seed of initialisation, shuffling, negatives and augmentation.
    """

    kind: str
    steps: int = 600
    batch_size: int = 64
    lr: float = 1e-2
    max_clips: int = 1024
    max_shift: int = 0
    holdout: float = 0.1
    seed: int = 0
    version: int = RECIPE_VERSION


def _block2d(inputs: int, outputs: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]


class FrameClassifier(nn.Module):
    """Frames ``(N, C, 32, 32)`` -> per-class logits; three conv blocks and a linear head."""

    def __init__(self, channels: int, classes: int, width: int = 16, feature_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_block2d(channels, width), nn.MaxPool2d(2),
            *_block2d(width, width * 2), nn.MaxPool2d(2),
            *_block2d(width * 2, width * 4), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(width * 16, feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(feature_dim, classes)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features."""
        return self.body(frames)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(frames))


class ClipClassifier(nn.Module):
    """Clips ``(N, C, T, 32, 32)`` -> per-class logits; 3-D conv blocks, then a linear head."""

    def __init__(self, channels: int, classes: int, width: int = 16, feature_dim: int = 128) -> None:
        super().__init__()

        def block(inputs: int, outputs: int, stride: tuple[int, int, int]) -> list[nn.Module]:
            return [nn.Conv3d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm3d(outputs), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *block(channels, width, (1, 2, 2)),
            *block(width, width * 2, (2, 2, 2)),
            *block(width * 2, width * 4, (2, 2, 2)),
            nn.AdaptiveAvgPool3d((1, 2, 2)), nn.Flatten(),
            nn.Linear(width * 16, feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(feature_dim, classes)

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features."""
        return self.body(clips)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(clips))


def resize_frames(clips: torch.Tensor, side: int = INPUT_SIDE) -> torch.Tensor:
    """Resize the frames of ``(N, C, T, H, W)`` clips to ``side`` x ``side`` (antialiased)."""
    n, c, t, h, w = clips.shape
    if (h, w) == (side, side):
        return clips
    frames = clips.transpose(1, 2).reshape(n * t, c, h, w)
    frames = F.interpolate(frames, size=(side, side), mode="bilinear", align_corners=False, antialias=h > side)
    return frames.view(n, t, c, side, side).transpose(1, 2)


def class_sets(labels: torch.Tensor, data_info: Any) -> tuple[torch.Tensor, int]:
    """Multi-hot targets ``(N, K)`` and how many classes a clip shows.

    moving-digits labels (``info["digits_per_clip"]`` set) decode to digit sets over 10 digits;
    other labels are one-hot over ``num_classes``.
    """
    labels = labels.long()
    digits = int(data_info.get("digits_per_clip") or 0)
    if digits:
        hot = torch.zeros(labels.shape[0], 10)
        for position in range(digits):
            hot[torch.arange(labels.shape[0]), (labels // 10**position) % 10] = 1.0
        return hot, digits
    classes = int(data_info.get("num_classes") or 0) or int(labels.max()) + 1
    return F.one_hot(labels, classes).float(), 1


def as_clips(samples: Any) -> torch.Tensor:
    """Video samples as one float ``(N, C, T, H, W)`` tensor (stacking a dataset or list if needed)."""
    if isinstance(samples, torch.Tensor):
        clips = samples
    else:
        clips = torch.stack([samples[i] for i in range(len(samples))]) if len(samples) else torch.empty(0)
    if clips.dim() != 5:
        raise UsageError(f"video metrics need (N, C, T, H, W) clips, got shape {tuple(clips.shape)}")
    return clips.float()


def stack_resized(samples: Any, count: int, chunk: int = 128) -> torch.Tensor:
    """The first ``count`` clips of a tensor or dataset, frames resized to the classifier input.

    Works in chunks so that a dataset of large frames is never held at full size.
    """
    parts = []
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        part = samples[start:stop] if isinstance(samples, torch.Tensor) else as_clips([samples[i] for i in range(start, stop)])
        parts.append(resize_frames(as_clips(part)))
    if not parts:
        raise UsageError("video metrics got no clips")
    return torch.cat(parts)


def labelled_clips(ctx: EvalContext, max_clips: int) -> tuple[torch.Tensor, torch.Tensor, str, str]:
    """Clips, labels, a fingerprint and a description of what the classifiers learn from.

    Prefers the run's training split (up to ``max_clips`` clips); falls back to the labelled
    reference clips. Frames come resized to the classifiers' 32x32 input.

    Raises:
        MetricUnavailable: when neither has labels.
    """
    if ctx.load_split is not None:
        train = ctx.memoized("video-train-split", lambda: ctx.load_split("train"))
        if train is not None and train.labels is not None and len(train):
            count = min(len(train), max_clips)
            clips = stack_resized(train.dataset, count)
            labels = train.labels[:count].long()
            key = f"{train.fingerprint or tensor_fingerprint(clips)}:{count}:{tensor_fingerprint(labels)}"
            return clips, labels, key, f"train split of '{train.source}' ({count} clips)"
    if ctx.real_labels is not None:
        clips = stack_resized(ctx.real, min(len(ctx.real), max_clips))
        labels = ctx.real_labels[: len(clips)].long()
        return clips, labels, f"{tensor_fingerprint(clips)}:{tensor_fingerprint(labels)}", \
            f"reference clips ({len(clips)})"
    raise MetricUnavailable("the @classifier video metrics need labelled clips (moving-digits, or a folder with one "
                     "sub-folder per class); this dataset has no labels, so use fvd@i3d instead")


def _shift(batch: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Roll each item by up to ``max_shift`` pixels in both directions (cheap translation augmentation)."""
    if max_shift <= 0:
        return batch
    out = torch.empty_like(batch)
    shifts = torch.randint(-max_shift, max_shift + 1, (batch.shape[0], 2), generator=generator).tolist()
    for index, (dy, dx) in enumerate(shifts):
        out[index] = torch.roll(batch[index], shifts=(dy, dx), dims=(-2, -1))
    return out


def soft_targets(sets: torch.Tensor, with_none: bool) -> torch.Tensor:
    """Class sets ``(N, K)`` (multi-hot) as target distributions, optionally with a "nothing" class."""
    targets = sets / sets.sum(dim=1, keepdim=True).clamp(min=1.0)
    if with_none:
        empty = (sets.sum(dim=1, keepdim=True) == 0).float()
        targets = torch.cat([targets, empty], dim=1)
    return targets


def frame_negatives(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """As many frames as ``frames`` that show no class, in three kinds (a third each): uniform
    noise, flat frames of a random level, and real frames with their pixels shuffled (the same
    intensities without any shape).

    Blurred frames are deliberately not negatives: a blob moving like a digit is partial
    evidence of one, so a generator that has learnt shapes but not strokes scores between
    noise and real clips rather than like noise.
    """
    n = frames.shape[0]
    sizes = [n // 3, n // 3, n - 2 * (n // 3)]
    noise = torch.rand((sizes[0],) + tuple(frames.shape[1:]), generator=generator) * 2.0 - 1.0
    flat = (torch.rand(sizes[1], 1, 1, 1, generator=generator) * 2.0 - 1.0).expand(-1, *frames.shape[1:])
    rest = frames[sizes[0] + sizes[1] :].flatten(2)
    order = torch.argsort(torch.rand(rest.shape[0], rest.shape[-1], generator=generator), dim=1)
    shuffled = torch.gather(rest, 2, order.unsqueeze(1).expand_as(rest)).view(-1, *frames.shape[1:])
    return torch.cat([noise, flat, shuffled])


def _frame_batch(clips: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random frame of each chosen clip, plus a quarter as many negatives with empty targets."""
    frame_index = torch.randint(0, clips.shape[2], (len(idx),), generator=generator)
    frames = clips[idx, :, frame_index]  # (B, C, H, W)
    count = max(2, len(idx) // 4)
    negatives = frame_negatives(frames[:count], generator)
    return torch.cat([frames, negatives]), torch.cat([targets[idx], torch.zeros_like(targets[idx][:count])])


def _network(kind: str, channels: int, classes: int) -> nn.Module:
    return (ClipClassifier if kind == "clip" else FrameClassifier)(channels, classes)


def train_classifier(clips: torch.Tensor, targets: torch.Tensor, recipe: Recipe,
                     device: torch.device) -> tuple[nn.Module, float]:
    """Train a clip or frame classifier; returns it (eval mode, CPU) and its held-out accuracy.

    Accuracy is the share of held-out clips (frame classifier: frames) whose top-k classes are
    exactly their true set, k being the set's size.
    """
    with_none = recipe.kind == "frame"
    fit = ClassifierFit(steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr, holdout=recipe.holdout,
                        seed=recipe.seed, sampling="random")

    def batch(indices: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if recipe.kind == "clip":
            inputs, sets = clips[indices], targets[indices]
        else:
            inputs, sets = _frame_batch(clips, targets, indices, generator)
        return _shift(inputs, recipe.max_shift, generator), soft_targets(sets, with_none)

    classes = targets.shape[1] + (1 if with_none else 0)
    model, val_idx = fit_classifier(lambda: _network(recipe.kind, clips.shape[1], classes), clips.shape[0], fit,
                                    batch, device)
    with torch.inference_mode():
        if recipe.kind == "clip":
            inputs, truth = clips[val_idx], targets[val_idx]
        else:
            inputs = clips[val_idx].transpose(1, 2).flatten(0, 1)
            truth = targets[val_idx].repeat_interleave(clips.shape[2], dim=0)
        logits = torch.cat([model(chunk.to(device)).cpu() for chunk in inputs.split(256)])[:, : truth.shape[1]]
    k = int(truth.sum(dim=1).max())
    predicted = torch.zeros_like(truth).scatter_(1, logits.topk(k, dim=1).indices, 1.0)
    accuracy = float((predicted == truth).all(dim=1).float().mean())
    return model.cpu(), accuracy


def recipe_from(ctx: EvalContext, kind: str) -> Recipe:
    """The recipe, with ``--option {kind}-classifier.steps=N`` / ``.max_clips=N`` applied."""
    recipe = Recipe(kind=kind)
    changes = {}
    for key in ("steps", "max_clips", "batch_size"):
        value = ctx.option(f"{kind}-classifier.{key}")
        if value is not None:
            changes[key] = int(value)
    return replace(recipe, **changes)


def load_or_train(ctx: EvalContext, kind: str) -> tuple[nn.Module, str, dict[str, Any]]:
    """The cached ``clip`` or ``frame`` classifier for this data and recipe, trained first if needed.

    Returns:
        The model (eval mode, on ``ctx.device``), the sha256 of its weights, and its metadata.
    """
    recipe = recipe_from(ctx, kind)
    clips, labels, fingerprint, description = labelled_clips(ctx, recipe.max_clips)
    targets, per_clip = class_sets(labels, ctx.data_info)
    key_source = {"data": fingerprint, "shape": list(clips.shape[1:]), "classes": int(targets.shape[1]),
                  "recipe": asdict(recipe)}

    def train() -> tuple[nn.Module, dict[str, Any]]:
        model, accuracy = train_classifier(clips, targets, recipe, ctx.device)
        return model, {"classifier_accuracy": round(accuracy, 4), "classifier_trained_on": description,
                       "classes_per_clip": per_clip, "classes": int(targets.shape[1]), "key": key_source}

    directory = Path(ctx.cache_dir) / "classifiers" if ctx.cache_dir is not None else None
    classes = int(targets.shape[1]) + (1 if kind == "frame" else 0)
    model, sha, meta = cached_classifier(directory, cache_key(key_source, f"video-{kind}-"),
                                         lambda: _network(kind, clips.shape[1], classes), train)
    return model.to(ctx.device), sha, meta


def run_batched(function: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, device: torch.device,
                batch_size: int = 128) -> torch.Tensor:
    """Apply ``function`` to ``inputs`` in batches on ``device``; returns float CPU outputs."""
    outputs = []
    with torch.inference_mode():
        for start in range(0, inputs.shape[0], batch_size):
            batch = inputs[start : start + batch_size].to(device, torch.float32).clamp(-1.0, 1.0)
            outputs.append(function(batch).float().cpu())
    if not outputs:
        raise UsageError("video metrics got no clips")
    return torch.cat(outputs)
