"""The ``classifier`` extractor: a small CNN that cgan trains on the dataset's own labels.

For datasets with classes (digits, Fashion-MNIST, a folder with one sub-folder per class) a
domain classifier gives features that separate what matters in that domain, unlike ImageNet
networks that see 32x32 digits as blurry blobs. It is trained once per dataset, with a fixed
seed, on the run's training split (or the labelled reference set when no run is known), and
cached under the evaluation cache directory keyed by the data's fingerprint and the recipe. Its
128-d penultimate layer gives the features; its softmax gives the Inception-Score-style
``classifier-score``. Training runs under a forked RNG, so it never disturbs a training run's
random streams.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cgan_core import (ClassifierRecipe, EvalContext, cache_key, cached_classifier, fit_classifier,
                       heldout_accuracy, labelled_training_samples)

from cgan_image.features import ImageFeatureExtractor, resize_square

# The digits-sized recipe: 10 epochs, at least 150 and at most 2,000 steps of 128 images, shifts of
# up to 2 pixels. Every field is part of the cache key.
DEFAULT_RECIPE = ClassifierRecipe()


# Why the metrics cannot run on unlabelled data, and what to use instead.
NO_LABELS = ("classifier metrics need labelled images (digits, fashion-mnist, or a folder with one sub-folder per "
             "class); this dataset has no labels, so use the @effnet-lite0 metrics instead")


class DomainClassifier(nn.Module):
    """Three conv blocks (two of stride 2) -> 2x2 pooling -> 128-d features -> class logits."""

    def __init__(self, channels: int, classes: int, width: int = 16, feature_dim: int = 128) -> None:
        super().__init__()

        def block(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(outputs),
                    nn.ReLU(inplace=True)]

        # Strided convolutions rather than pooling: a quarter of the work, which matters on CPUs.
        self.body = nn.Sequential(
            *block(channels, width, 2), *block(width, width * 2, 2), *block(width * 2, width * 4, 1),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(width * 16, feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(feature_dim, classes))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (background -1 fills the border)."""
    if max_shift <= 0:
        return images
    n, _, height, width = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = shifts[:, 0] * 2.0 / width
    theta[:, 1, 2] = shifts[:, 1] * 2.0 / height
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images + 1.0, grid, mode="nearest", padding_mode="zeros", align_corners=False) - 1.0


def train_classifier(images: torch.Tensor, labels: torch.Tensor, classes: int, recipe: ClassifierRecipe,
                     device: torch.device) -> tuple[DomainClassifier, float]:
    """Train the classifier; returns it (eval mode, CPU) and its held-out accuracy.

    Seeded by ``recipe.seed`` inside a forked RNG (see :func:`cgan_core.fit_classifier`), so the
    result depends only on the data and the recipe.
    """
    def batch(indices: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return random_shift(images[indices], recipe.max_shift, generator), labels[indices]

    model, val_idx = fit_classifier(lambda: DomainClassifier(images.shape[1], classes, recipe.width, recipe.feature_dim),
                                    images.shape[0], recipe.fit(images.shape[0]), batch, device)
    return model.cpu(), heldout_accuracy(model, images, labels, val_idx, device)


def _recipe_from(ctx: EvalContext) -> ClassifierRecipe:
    steps = ctx.option("classifier.max_steps")
    return replace(DEFAULT_RECIPE, max_steps=int(steps)) if steps is not None else DEFAULT_RECIPE


def load_or_train(ctx: EvalContext) -> tuple[DomainClassifier, str, dict[str, Any]]:
    """The cached classifier for this data and recipe, trained first if needed.

    Returns:
        The model (eval mode), the sha256 of its safetensors weights and its metadata.
    """
    images, labels, fingerprint, description = labelled_training_samples(
        ctx, "image-classifier-train-split", "reference images", NO_LABELS)
    classes = int(ctx.data_info.get("num_classes") or 0) or int(labels.max()) + 1
    recipe = _recipe_from(ctx)
    key_source = {"data": fingerprint, "shape": list(images.shape[1:]), "classes": classes, "recipe": asdict(recipe)}

    def train() -> tuple[DomainClassifier, dict[str, Any]]:
        model, accuracy = train_classifier(images, labels, classes, recipe, ctx.device)
        return model, {"classifier_accuracy": round(accuracy, 4), "classifier_trained_on": description,
                       "classifier_input": list(images.shape[1:]), "classes": classes, "key": key_source}

    directory = Path(ctx.cache_dir) / "classifiers" if ctx.cache_dir is not None else None
    return cached_classifier(directory, cache_key(key_source),
                             lambda: DomainClassifier(images.shape[1], classes, recipe.width, recipe.feature_dim), train)


def classifier_extractor(ctx: EvalContext) -> ImageFeatureExtractor:
    """Build the ``classifier`` extractor for the context's dataset (training it if not cached)."""
    model, sha, meta = load_or_train(ctx)
    model = model.to(ctx.device)
    channels, height, _ = meta["classifier_input"]

    def preprocess(batch: torch.Tensor) -> torch.Tensor:
        if batch.shape[1] != channels:
            batch = batch.mean(dim=1, keepdim=True) if channels == 1 else batch.expand(-1, channels, -1, -1)
        return resize_square(batch, height)

    return ImageFeatureExtractor(
        name="classifier",
        weights_sha256=sha,
        preprocessing=f"{channels}x{height}x{height} in [-1,1] (the dataset's own format), float32",
        embed=model.features,
        preprocess=preprocess,
        probabilities=lambda batch: torch.softmax(model(batch), dim=1),
        batch_size=512,
        extra={"classifier_accuracy": meta["classifier_accuracy"],
               "classifier_trained_on": meta["classifier_trained_on"]},
    )
