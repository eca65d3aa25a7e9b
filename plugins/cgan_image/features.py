"""Image feature extractors: what turns a batch of images into the vectors metrics compare.

An :class:`ImageFeatureExtractor` knows its name, the sha256 of its weights and a plain-words
description of its preprocessing; all three go into the provenance of every number computed from
its features and into the cache key of the reference features. Extractors are built by name with
:func:`load_extractor` (``effnet-lite0``, ``classifier``, ``inception``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from cgan_core import EvalContext, UsageError, sha256_file

EXTRACTORS = ("effnet-lite0", "classifier", "inception")


@dataclass
class ImageFeatureExtractor:
    """A frozen network that maps images in cgan's format ((N, C, H, W) in [-1, 1]) to features.

    Attributes:
        name: Extractor name, the part after ``@`` in metric names.
        weights_sha256: sha256 of the weights file the network was loaded from.
        preprocessing: What is done to the images before the network, in words (provenance).
        embed: ``embed(batch_on_device) -> (B, D) features``; the batch is already preprocessed.
        preprocess: ``preprocess(batch_on_device) -> network input``.
        probabilities: Optional ``(batch) -> (B, classes)`` softmax outputs (classifier score).
        batch_size: Images per forward pass.
        extra: Further provenance (held-out accuracy of a trained classifier, ...).
    """

    name: str
    weights_sha256: str
    preprocessing: str
    embed: Callable[[torch.Tensor], torch.Tensor]
    preprocess: Callable[[torch.Tensor], torch.Tensor]
    probabilities: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    batch_size: int = 128
    extra: Optional[dict[str, Any]] = None

    def provenance(self) -> dict[str, Any]:
        """Fields recorded with every metric computed from these features."""
        fields = {"extractor": self.name, "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing}
        fields.update(self.extra or {})
        return fields

    def cache_parts(self) -> dict[str, Any]:
        """What the reference features depend on besides the data (the cache key)."""
        return {"extractor": self.name, "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing}

    def _run(self, images: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> np.ndarray:
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
            raise UsageError(f"image metrics need (N, C, H, W) image tensors, got {shape}")
        outputs = []
        with torch.inference_mode():
            for start in range(0, images.shape[0], self.batch_size):
                batch = images[start : start + self.batch_size].to(device, torch.float32, non_blocking=True)
                batch = self.preprocess(batch.clamp(-1.0, 1.0))
                outputs.append(head(batch).float().cpu())
        if not outputs:
            raise UsageError("image metrics got no images")
        return torch.cat(outputs).double().numpy()

    def features(self, images: torch.Tensor, device: torch.device) -> np.ndarray:
        """(N, D) float64 features of images in [-1, 1]."""
        return self._run(images, self.embed, device)

    def class_probabilities(self, images: torch.Tensor, device: torch.device) -> np.ndarray:
        """(N, classes) softmax outputs; only classifier extractors have them."""
        if self.probabilities is None:
            raise UsageError(f"extractor '{self.name}' has no class outputs")
        return self._run(images, self.probabilities, device)


@lru_cache(maxsize=16)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file's bytes (cached per path, size and modification time)."""
    return sha256_file(Path(path))


def sha256_of(path: Path) -> str:
    """sha256 of a weights file, computed once per process and file version."""
    stat = Path(path).stat()
    return file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Grayscale (N, 1, H, W) -> three equal channels; RGB is returned unchanged."""
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    if images.shape[1] == 3:
        return images
    raise UsageError(f"image metrics take 1- or 3-channel images, got {images.shape[1]} channels")


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize to size x size (antialiased when shrinking)."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=images.shape[-1] > size)


def load_extractor(name: str, ctx: EvalContext) -> ImageFeatureExtractor:
    """Build (or reuse, within one evaluation) the extractor called ``name``.

    Raises:
        UsageError: for an unknown extractor name.
    """
    if name not in EXTRACTORS:
        raise UsageError(f"unknown image feature extractor '{name}'; valid: {', '.join(EXTRACTORS)}")

    def build() -> ImageFeatureExtractor:
        if name == "effnet-lite0":
            from cgan_image.features_effnet import effnet_lite0_extractor

            return effnet_lite0_extractor(ctx)
        if name == "classifier":
            from cgan_image.classifier import classifier_extractor

            return classifier_extractor(ctx)
        from cgan_image.features_inception import inception_extractor

        return inception_extractor(ctx)

    return ctx.memoized(f"image-extractor:{name}", build)


def real_features(extractor: ImageFeatureExtractor, ctx: EvalContext) -> np.ndarray:
    """Features of the reference images, cached on disk by dataset, extractor, weights and preprocessing."""
    return ctx.memoized(
        f"image-real-features:{extractor.name}",
        lambda: ctx.cached_features(extractor.cache_parts(), lambda: extractor.features(ctx.real, ctx.device)),
    )


def fake_features(extractor: ImageFeatureExtractor, ctx: EvalContext) -> np.ndarray:
    """Features of the generated images, computed once per evaluation."""
    return ctx.memoized(f"image-fake-features:{extractor.name}", lambda: extractor.features(ctx.fake, ctx.device))
