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

from cgan_image.features import ImageFeatureExtractor, resize_square

RECIPE_VERSION = 1


@dataclass(frozen=True)
class ClassifierRecipe:
    """How the classifier is trained; every field is part of the cache key.

    Attributes:
        width: Channels of the first convolution (doubled twice).
        feature_dim: Size of the penultimate layer (the features).
        epochs: Passes over the training images, bounded by ``min_steps``/``max_steps``.
        min_steps: At least this many optimiser steps (small datasets).
        max_steps: At most this many optimiser steps (large datasets).
        batch_size: Images per step.
        lr: Peak learning rate of the one-cycle schedule (Adam).
        max_shift: Random translation in pixels (augmentation).
        holdout: Share of the images kept out of training to measure accuracy.
        seed: Seed of initialisation, shuffling and augmentation.
    """

    width: int = 16
    feature_dim: int = 128
    epochs: int = 10
    min_steps: int = 150
    max_steps: int = 2000
    batch_size: int = 128
    lr: float = 3e-3
    max_shift: int = 2
    holdout: float = 0.1
    seed: int = 0
    version: int = RECIPE_VERSION


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

    Every random number comes from generators seeded by ``recipe.seed`` inside a forked RNG, so
    the result depends only on the data and the recipe, and global RNG streams are untouched.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(recipe.seed)
        generator = torch.Generator().manual_seed(recipe.seed)
        order = torch.randperm(images.shape[0], generator=generator)
        held = max(1, int(round(images.shape[0] * recipe.holdout)))
        val_idx, train_idx = order[:held], order[held:]
        model = DomainClassifier(images.shape[1], classes, recipe.width, recipe.feature_dim).to(device)
        batches_per_epoch = max(1, math.ceil(len(train_idx) / recipe.batch_size))
        steps = min(max(recipe.epochs * batches_per_epoch, recipe.min_steps), recipe.max_steps)
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=steps)
        model.train()
        step = 0
        while step < steps:
            shuffled = train_idx[torch.randperm(len(train_idx), generator=generator)]
            for batch_idx in shuffled.split(recipe.batch_size):
                if step >= steps or len(batch_idx) < 2:
                    break
                batch = random_shift(images[batch_idx], recipe.max_shift, generator).to(device)
                loss = F.cross_entropy(model(batch), labels[batch_idx].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                step += 1
        model.eval()
        with torch.inference_mode():
            correct = 0
            for batch_idx in val_idx.split(512):
                predictions = model(images[batch_idx].to(device)).argmax(dim=1).cpu()
                correct += int((predictions == labels[batch_idx]).sum())
    return model.cpu(), correct / len(val_idx)


def _stack(dataset: Any) -> torch.Tensor:
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, torch.Tensor):
        return samples
    return torch.stack([dataset[i] for i in range(len(dataset))])


def labelled_training_set(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor, str, str]:
    """Images, labels, data fingerprint and a description of what the classifier learns from.

    Prefers the run's training split; falls back to the labelled reference images.

    Raises:
        MetricUnavailable: when neither has labels.
    """
    if ctx.load_split is not None:
        train = ctx.memoized("image-classifier-train-split", lambda: ctx.load_split("train"))
        if train is not None and train.labels is not None:
            images = _stack(train.dataset)
            fingerprint = train.fingerprint or tensor_fingerprint(images)
            return images, train.labels.long(), fingerprint + ":" + tensor_fingerprint(train.labels), \
                f"train split of '{train.source}'"
    if ctx.real_labels is not None and isinstance(ctx.real, torch.Tensor):
        return ctx.real, ctx.real_labels.long(), tensor_fingerprint(ctx.real) + ":" + tensor_fingerprint(ctx.real_labels), \
            "reference images"
    raise MetricUnavailable(
        "classifier metrics need labelled images (digits, fashion-mnist, or a folder with one sub-folder per "
        "class); this dataset has no labels, so use the @effnet-lite0 metrics instead"
    )


def _recipe_from(ctx: EvalContext) -> ClassifierRecipe:
    steps = ctx.option("classifier.max_steps")
    return ClassifierRecipe(max_steps=int(steps)) if steps is not None else ClassifierRecipe()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_or_train(ctx: EvalContext) -> tuple[DomainClassifier, str, dict[str, Any]]:
    """The cached classifier for this data and recipe, trained first if needed.

    Returns:
        The model (eval mode), the sha256 of its safetensors weights and its metadata.
    """
    from safetensors.torch import load_file, save, save_file

    images, labels, fingerprint, description = labelled_training_set(ctx)
    classes = int(ctx.data_info.get("num_classes") or 0) or int(labels.max()) + 1
    recipe = _recipe_from(ctx)
    key_source = {"data": fingerprint, "shape": list(images.shape[1:]), "classes": classes, "recipe": asdict(recipe)}
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:20]
    directory: Optional[Path] = Path(ctx.cache_dir) / "classifiers" if ctx.cache_dir is not None else None
    if directory is not None and (directory / f"{key}.safetensors").is_file() and (directory / f"{key}.json").is_file():
        weights = directory / f"{key}.safetensors"
        try:
            with torch.random.fork_rng(devices=[]):  # module initialisation draws random numbers
                model = DomainClassifier(images.shape[1], classes, recipe.width, recipe.feature_dim)
            model.load_state_dict(load_file(str(weights)))
            meta = json.loads((directory / f"{key}.json").read_text())
            return model.eval(), _file_sha256(weights), meta
        except (OSError, ValueError, RuntimeError, json.JSONDecodeError):
            pass  # a damaged cache entry is retrained below
    model, accuracy = train_classifier(images, labels, classes, recipe, ctx.device)
    meta = {"classifier_accuracy": round(accuracy, 4), "classifier_trained_on": description,
            "classifier_input": list(images.shape[1:]), "classes": classes, "key": key_source}
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    if directory is None:
        return model, hashlib.sha256(save(state)).hexdigest(), meta
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{key}.safetensors"
    temporary = directory / f"{key}.safetensors.tmp"
    save_file(state, str(temporary))
    temporary.replace(weights)
    (directory / f"{key}.json").write_text(json.dumps(meta, indent=2))
    return model, _file_sha256(weights), meta


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
