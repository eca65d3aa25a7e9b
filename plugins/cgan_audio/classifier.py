"""The ``classifier`` extractor for audio: a small CNN on log-mel spectrograms, trained by cgan.

There is no offline, pip-installable audio network whose features suit arbitrary short clips,
so cgan trains one on the labelled data of the run (spoken digits, tones, or a folder with one
sub-folder per class), once per dataset and recipe, with a fixed seed, and caches it under the
evaluation cache directory keyed by the data's fingerprint. Its 128-d penultimate layer gives the
features of ``fad@classifier``; its softmax gives ``classifier-score``. Training runs under a
forked RNG, so it never disturbs a training run's random streams.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cgan_core import (ClassifierRecipe, EvalContext, cache_key, cached_classifier, fit_classifier,
                       heldout_accuracy, labelled_training_samples)

from cgan_audio.features import MelSettings, logmel

# Spoken-digit-sized clips: 15 epochs of 64 clips, at least 150 and at most 1,500 steps, shifts
# of up to 4 spectrogram frames (onsets vary). Every field is part of the cache key.
DEFAULT_RECIPE = ClassifierRecipe(epochs=15, max_steps=1500, batch_size=64, max_shift=4)


# Why the metrics cannot run on unlabelled data, and what to use instead.
NO_LABELS = ("audio classifier metrics need labelled clips (spoken-digits, tones, or a folder with one sub-folder "
             "per class); this dataset has no labels, so use fad@logmel instead")


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

    Seeded by ``recipe.seed`` inside a forked RNG (see :func:`cgan_core.fit_classifier`), so the
    result depends only on the data and the recipe.
    """
    def batch(indices: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return random_frame_shift(spectrograms[indices], recipe.max_shift, generator), labels[indices]

    model, val_idx = fit_classifier(lambda: AudioClassifier(classes, recipe.width, recipe.feature_dim),
                                    spectrograms.shape[0], recipe.fit(spectrograms.shape[0]), batch, device)
    return model.cpu(), heldout_accuracy(model, spectrograms, labels, val_idx, device)


def _recipe_from(ctx: EvalContext) -> ClassifierRecipe:
    steps = ctx.option("classifier.max_steps") if hasattr(ctx, "option") else None
    return replace(DEFAULT_RECIPE, max_steps=int(steps)) if steps is not None else DEFAULT_RECIPE


def load_or_train(ctx: EvalContext, settings: MelSettings) -> tuple[AudioClassifier, str, dict[str, Any]]:
    """The cached classifier for this data, mel settings and recipe, trained first if needed.

    Returns:
        The model (eval mode, CPU), the sha256 of its safetensors weights and its metadata.
    """
    waves, labels, fingerprint, description = labelled_training_samples(
        ctx, "audio-classifier-train-split", "reference clips", NO_LABELS)
    classes = int(ctx.data_info.get("num_classes") or 0) or int(labels.max()) + 1
    recipe = _recipe_from(ctx)
    key_source = {"data": fingerprint, "classes": classes, "mel": asdict(settings), "recipe": asdict(recipe)}

    def train() -> tuple[AudioClassifier, dict[str, Any]]:
        model, accuracy = train_classifier(logmel(waves, settings, ctx.device), labels, classes, recipe, ctx.device)
        return model, {"classifier_accuracy": round(accuracy, 4), "classifier_trained_on": description,
                       "classes": classes, "key": key_source}

    directory = Path(ctx.cache_dir) / "classifiers" if ctx.cache_dir is not None else None
    return cached_classifier(directory, cache_key(key_source, "audio-"),
                             lambda: AudioClassifier(classes, recipe.width, recipe.feature_dim), train)
