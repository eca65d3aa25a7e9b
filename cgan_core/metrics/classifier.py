"""Training and caching of the small domain classifiers behind the ``@classifier`` metrics.

Where no offline pre-trained network suits a dataset (digits, moving digits, spoken digits), a
modality trains a small classifier on the run's labelled data and uses its penultimate layer as
features. What does not depend on the modality lives here: the seeded hold-out split, the
optimisation loop (Adam with a one-cycle schedule) and a cache of the trained weights keyed by the
data and the recipe. The modality supplies the network, the batches (with its augmentation) and
the accuracy measure.

Everything random comes from generators seeded by the recipe's seed inside a forked RNG, so a
classifier depends only on its data and recipe, and training one in the middle of a training run
(evaluation during training) leaves the run's random streams untouched.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from cgan_core.data import stack_samples, tensor_fingerprint
from cgan_core.fileio import atomic_write_text, sha256_file
from cgan_core.metrics.context import MetricUnavailable

BatchFunction = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class ClassifierFit:
    """How a classifier is optimised.

    Attributes:
        steps: Optimiser steps.
        batch_size: Items per step.
        lr: Peak learning rate of the one-cycle schedule (Adam).
        holdout: Share of the items kept out of training (for the accuracy).
        seed: Seed of initialisation, the split, shuffling and augmentation.
        sampling: ``epochs`` (shuffled passes over the training items) or ``random`` (each
            batch drawn with replacement).
    """

    steps: int
    batch_size: int
    lr: float
    holdout: float = 0.1
    seed: int = 0
    sampling: str = "epochs"


def holdout_size(items: int, holdout: float) -> int:
    """How many of ``items`` the split keeps out of training (at least one)."""
    return max(1, int(round(items * holdout)))


def epoch_steps(items: int, holdout: float, batch_size: int, epochs: int, min_steps: int, max_steps: int) -> int:
    """Steps for ``epochs`` passes over the training part of ``items``, within ``[min_steps, max_steps]``."""
    batches_per_epoch = max(1, math.ceil((items - holdout_size(items, holdout)) / batch_size))
    return min(max(epochs * batches_per_epoch, min_steps), max_steps)


@dataclass(frozen=True)
class ClassifierRecipe:
    """How a small convolutional classifier is built and trained; every field is part of its cache key.

    Attributes:
        width: Channels of the first convolution (doubled twice).
        feature_dim: Size of the penultimate layer (the features).
        epochs: Passes over the training items, bounded by ``min_steps``/``max_steps``.
        min_steps: At least this many optimiser steps (small datasets).
        max_steps: At most this many optimiser steps (large datasets).
        batch_size: Items per step.
        lr: Peak learning rate of the one-cycle schedule (Adam).
        max_shift: Size of the random shift used as augmentation (pixels, frames: the modality's unit).
        holdout: Share of the items kept out of training to measure accuracy.
        seed: Seed of initialisation, shuffling and augmentation.
        version: Bumped when the network or its training changes, so old cache entries are not reused.
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
    version: int = 1

    def fit(self, items: int) -> ClassifierFit:
        """The optimisation settings for ``items`` labelled items (shuffled epochs)."""
        steps = epoch_steps(items, self.holdout, self.batch_size, self.epochs, self.min_steps, self.max_steps)
        return ClassifierFit(steps=steps, batch_size=self.batch_size, lr=self.lr, holdout=self.holdout, seed=self.seed)


def labelled_training_samples(ctx: Any, memo_key: str, reference_name: str, unavailable: str
                              ) -> tuple[torch.Tensor, torch.Tensor, str, str]:
    """The labelled samples a domain classifier learns from.

    Prefers the run's training split (loaded once per evaluation); falls back to the labelled
    reference samples.

    Args:
        ctx: The :class:`~cgan_core.metrics.EvalContext`.
        memo_key: Key under which the context keeps the loaded split.
        reference_name: What the reference samples are called ("reference images"), for the description.
        unavailable: The message when neither has labels (say which metrics work without them).

    Returns:
        Samples, labels, a fingerprint of both, and a description of where they came from.

    Raises:
        cgan_core.MetricUnavailable: neither the training split nor the reference samples have labels.
    """
    load_split = getattr(ctx, "load_split", None)
    if load_split is not None:
        train = ctx.memoized(memo_key, lambda: load_split("train"))
        if train is not None and train.labels is not None:
            samples = stack_samples(train.dataset)
            fingerprint = (train.fingerprint or tensor_fingerprint(samples)) + ":" + tensor_fingerprint(train.labels)
            return samples, train.labels.long(), fingerprint, f"train split of '{train.source}'"
    if ctx.real_labels is not None and isinstance(ctx.real, torch.Tensor):
        fingerprint = tensor_fingerprint(ctx.real) + ":" + tensor_fingerprint(ctx.real_labels)
        return ctx.real, ctx.real_labels.long(), fingerprint, reference_name
    raise MetricUnavailable(unavailable)


@torch.inference_mode()
def heldout_accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor,
                     device: torch.device, chunk: int = 512) -> float:
    """Share of the items at ``indices`` whose arg-max class is their label."""
    predictions = torch.cat([model(inputs[part].to(device)).argmax(dim=1).cpu() for part in indices.split(chunk)])
    return int((predictions == labels[indices]).sum()) / max(1, len(indices))


def _batches(train_idx: torch.Tensor, fit: ClassifierFit, generator: torch.Generator):
    """Index batches of the training items, ``fit.steps`` of them."""
    step = 0
    if fit.sampling == "random":
        while step < fit.steps:
            yield train_idx[torch.randint(0, len(train_idx), (fit.batch_size,), generator=generator)]
            step += 1
        return
    while step < fit.steps:
        shuffled = train_idx[torch.randperm(len(train_idx), generator=generator)]
        for batch_idx in shuffled.split(fit.batch_size):
            if step >= fit.steps or len(batch_idx) < 2:  # batch norm needs two examples
                break
            yield batch_idx
            step += 1


def fit_classifier(build: Callable[[], nn.Module], items: int, fit: ClassifierFit, batch: BatchFunction,
                   device: torch.device,
                   loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                   ) -> tuple[nn.Module, torch.Tensor]:
    """Train a classifier on ``items`` labelled items.

    Args:
        build: Makes the untrained network (called once, after seeding).
        items: Number of labelled items.
        fit: Optimisation settings.
        batch: ``batch(indices, generator) -> (inputs, targets)`` for a batch of item indices;
            augmentation draws from ``generator``.
        device: Where to train.
        loss: ``loss(logits, targets)``; cross-entropy (class indices or distributions) by default.

    Returns:
        The network in eval mode on ``device``, and the indices of the held-out items.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(fit.seed)
        generator = torch.Generator().manual_seed(fit.seed)
        order = torch.randperm(items, generator=generator)
        held = holdout_size(items, fit.holdout)
        val_idx, train_idx = order[:held], order[held:]
        model = build().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=fit.lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=fit.lr, total_steps=max(1, fit.steps))
        model.train()
        for batch_idx in _batches(train_idx, fit, generator):
            inputs, targets = batch(batch_idx, generator)
            value = loss(model(inputs.to(device)), targets.to(device))
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            schedule.step()
    return model.eval(), val_idx


def cache_key(key_source: Mapping[str, Any], prefix: str = "") -> str:
    """File stem of a cached classifier: ``prefix`` + 20 hex digits of the key's sha256."""
    return prefix + hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:20]


def cached_classifier(directory: Optional[Path], key: str, build: Callable[[], nn.Module],
                      train: Callable[[], tuple[nn.Module, dict[str, Any]]]) -> tuple[nn.Module, str, dict[str, Any]]:
    """The classifier cached as ``directory/key.safetensors`` (+ ``.json`` metadata), trained first if needed.

    A damaged cache entry is trained again; a new entry is written weights first (through a
    temporary file), then its metadata, so an entry with metadata is always whole.

    Args:
        directory: Cache folder, or ``None`` to train without caching.
        key: File stem (see :func:`cache_key`).
        build: Makes the untrained network, for loading cached weights into.
        train: Trains the network; returns it and its JSON-able metadata.

    Returns:
        The network (eval mode, CPU), the sha256 of its safetensors weights and its metadata.
    """
    from safetensors.torch import load_file, save, save_file

    if directory is not None:
        weights, meta_path = directory / f"{key}.safetensors", directory / f"{key}.json"
        if weights.is_file() and meta_path.is_file():
            try:
                with torch.random.fork_rng(devices=[]):  # initialisation draws random numbers
                    model = build()
                model.load_state_dict(load_file(str(weights)))
                return model.eval(), sha256_file(weights), json.loads(meta_path.read_text())
            except (OSError, ValueError, RuntimeError, json.JSONDecodeError):
                pass  # a damaged cache entry is retrained below
    model, meta = train()
    model = model.cpu().eval()
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    if directory is None:
        return model, hashlib.sha256(save(state)).hexdigest(), meta
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f"{key}.safetensors.tmp"
    save_file(state, str(temporary))
    temporary.replace(weights)
    atomic_write_text(meta_path, json.dumps(meta, indent=2))
    return model, sha256_file(weights), meta
