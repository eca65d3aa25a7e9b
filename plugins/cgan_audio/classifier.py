"""The ``classifier`` extractor for audio: a small CNN on log-mel spectrograms, trained by cgan.

There is no offline, pip-installable audio network whose features suit arbitrary short clips,
so cgan trains one on the labelled data of the run (spoken digits, tones, or a folder with one
sub-folder per class), once per dataset and recipe, with a fixed seed, and caches it under the
evaluation cache directory keyed by the data's fingerprint. Its 128-d penultimate layer gives the
features of ``fad@classifier``; its softmax gives ``classifier-score``. Training runs under a
forked RNG, so it never disturbs a training run's random streams.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from cgan_core import EvalContext, MetricUnavailable, tensor_fingerprint

from cgan_audio.features import MelSettings, logmel

RECIPE_VERSION = 1


@dataclass(frozen=True)
class ClassifierRecipe:
    """How the classifier is trained; every field is part of the cache key.

    Attributes:
        width: Channels of the first convolution (doubled twice).
        feature_dim: Size of the penultimate layer (the features).
        epochs: Passes over the training clips, bounded by ``min_steps``/``max_steps``.
        min_steps: At least this many optimiser steps (small datasets).
        max_steps: At most this many optimiser steps (large datasets).
        batch_size: Clips per step.
        lr: Peak learning rate of the one-cycle schedule (Adam).
        max_shift: Random shift in frames of the spectrograms (augmentation: onsets vary).
        holdout: Share of the clips kept out of training to measure accuracy.
        seed: Seed of initialisation, shuffling and augmentation.
    """

    width: int = 16
    feature_dim: int = 128
    epochs: int = 15
    min_steps: int = 150
    max_steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    max_shift: int = 4
    holdout: float = 0.1
    seed: int = 0
    version: int = RECIPE_VERSION


class AudioClassifier(nn.Module):
    """Log-mel (N, n_mels, frames) -> three conv blocks -> 2x2 pooling -> 128-d features -> class logits."""

    def __init__(self, classes: int, width: int = 16, feature_dim: int = 128) -> None:
        super().__init__()

        def block(inputs: int, outputs: int) -> list[nn.Module]:
            return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]

        self.input_norm = nn.BatchNorm2d(1)  # log-mel levels differ by dataset; learn their scale
        self.body = nn.Sequential(
            *block(1, width), nn.MaxPool2d(2),
            *block(width, width * 2), nn.MaxPool2d(2),
            *block(width * 2, width * 4), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(width * 16, feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(feature_dim, classes))

    def features(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features of (N, n_mels, frames) log-mel spectrograms."""
        return self.body(self.input_norm(spectrograms.unsqueeze(1)))

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(spectrograms))


def random_frame_shift(spectrograms: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each spectrogram in time by up to ``max_shift`` frames, filling with its quietest value."""
    if max_shift <= 0:
        return spectrograms
    shifted = torch.empty_like(spectrograms)
    shifts = torch.randint(-max_shift, max_shift + 1, (spectrograms.shape[0],), generator=generator).tolist()
    for index, shift in enumerate(shifts):
        rolled = torch.roll(spectrograms[index], shift, dims=1)
        fill = spectrograms[index].min()
        if shift > 0:
            rolled[:, :shift] = fill
        elif shift < 0:
            rolled[:, shift:] = fill
        shifted[index] = rolled
    return shifted


def train_classifier(spectrograms: torch.Tensor, labels: torch.Tensor, classes: int, recipe: ClassifierRecipe,
                     device: torch.device) -> tuple[AudioClassifier, float]:
    """Train on log-mel spectrograms; returns the classifier (eval mode, CPU) and its held-out accuracy.

    Every random number comes from generators seeded by ``recipe.seed`` inside a forked RNG, so
    the result depends only on the data and the recipe, and global RNG streams are untouched.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(recipe.seed)
        generator = torch.Generator().manual_seed(recipe.seed)
        order = torch.randperm(spectrograms.shape[0], generator=generator)
        held = max(1, int(round(spectrograms.shape[0] * recipe.holdout)))
        val_idx, train_idx = order[:held], order[held:]
        model = AudioClassifier(classes, recipe.width, recipe.feature_dim).to(device)
        batches_per_epoch = max(1, math.ceil(len(train_idx) / recipe.batch_size))
        steps = min(max(recipe.epochs * batches_per_epoch, recipe.min_steps), recipe.max_steps)
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=steps)
        model.train()
        step = 0
        while step < steps:
            shuffled = train_idx[torch.randperm(len(train_idx), generator=generator)]
            for batch_idx in shuffled.split(recipe.batch_size):
                if step >= steps:
                    break
                if len(batch_idx) < 2:  # batch norm needs two examples
                    continue
                batch = random_frame_shift(spectrograms[batch_idx], recipe.max_shift, generator).to(device)
                loss = F.cross_entropy(model(batch), labels[batch_idx].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                step += 1
        model.eval()
        with torch.inference_mode():
            predictions = torch.cat([model(spectrograms[part].to(device)).argmax(dim=1).cpu()
                                     for part in val_idx.split(512)])
            accuracy = float((predictions == labels[val_idx]).float().mean())
    return model.cpu(), accuracy


def _stack(dataset: Any) -> torch.Tensor:
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, torch.Tensor):
        return samples
    return torch.stack([dataset[i] for i in range(len(dataset))])


def labelled_training_set(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor, str, str]:
    """Clips, labels, a data fingerprint and a description of what the classifier learns from.

    Prefers the run's training split; falls back to the labelled reference clips.

    Raises:
        MetricUnavailable: when neither has labels.
    """
    load_split = getattr(ctx, "load_split", None)
    if load_split is not None:
        train = ctx.memoized("audio-classifier-train-split", lambda: load_split("train"))
        if train is not None and train.labels is not None:
            waves = _stack(train.dataset)
            fingerprint = (train.fingerprint or tensor_fingerprint(waves)) + ":" + tensor_fingerprint(train.labels)
            return waves, train.labels.long(), fingerprint, f"train split of '{train.source}'"
    if ctx.real_labels is not None and isinstance(ctx.real, torch.Tensor):
        fingerprint = tensor_fingerprint(ctx.real) + ":" + tensor_fingerprint(ctx.real_labels)
        return ctx.real, ctx.real_labels.long(), fingerprint, "reference clips"
    raise MetricUnavailable(
        "audio classifier metrics need labelled clips (spoken-digits, tones, or a folder with one sub-folder "
        "per class); this dataset has no labels, so use fad@logmel instead"
    )


def _recipe_from(ctx: EvalContext) -> ClassifierRecipe:
    steps = ctx.option("classifier.max_steps") if hasattr(ctx, "option") else None
    return ClassifierRecipe(max_steps=int(steps)) if steps is not None else ClassifierRecipe()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_or_train(ctx: EvalContext, settings: MelSettings) -> tuple[AudioClassifier, str, dict[str, Any]]:
    """The cached classifier for this data, mel settings and recipe, trained first if needed.

    Returns:
        The model (eval mode, CPU), the sha256 of its safetensors weights and its metadata.
    """
    from safetensors.torch import load_file, save, save_file

    waves, labels, fingerprint, description = labelled_training_set(ctx)
    classes = int(ctx.data_info.get("num_classes") or 0) or int(labels.max()) + 1
    recipe = _recipe_from(ctx)
    key_source = {"data": fingerprint, "classes": classes, "mel": asdict(settings), "recipe": asdict(recipe)}
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:20]
    directory: Optional[Path] = Path(ctx.cache_dir) / "classifiers" if ctx.cache_dir is not None else None
    model = AudioClassifier(classes, recipe.width, recipe.feature_dim)
    weights = directory / f"audio-{key}.safetensors" if directory is not None else None
    meta_path = directory / f"audio-{key}.json" if directory is not None else None
    if weights is not None and meta_path is not None and weights.is_file() and meta_path.is_file():
        try:
            model.load_state_dict(load_file(str(weights)))
            return model.eval(), _file_sha256(weights), json.loads(meta_path.read_text())
        except (OSError, ValueError, RuntimeError, json.JSONDecodeError):
            pass  # a damaged cache entry is retrained below
    spectrograms = logmel(waves, settings, ctx.device)
    model, accuracy = train_classifier(spectrograms, labels, classes, recipe, ctx.device)
    meta = {"classifier_accuracy": round(accuracy, 4), "classifier_trained_on": description,
            "classes": classes, "key": key_source}
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    if weights is None or meta_path is None:
        return model, hashlib.sha256(save(state)).hexdigest(), meta
    weights.parent.mkdir(parents=True, exist_ok=True)
    temporary = weights.with_name(weights.name + ".tmp")
    save_file(state, str(temporary))
    temporary.replace(weights)
    meta_path.write_text(json.dumps(meta, indent=2))
    return model, _file_sha256(weights), meta
