"""The ``inception`` extractor: the standard FID Inception-v3 (2048-d pool features) via torch-fidelity.

Numbers from it are comparable with published FIDs (TensorFlow-compatible resizing to 299, uint8
input). Its weights are not shipped with any installable package, so they are looked for, in
order, at ``--option inception.weights=PATH``, ``$CGAN_INCEPTION_WEIGHTS``, the cgan cache and
torch's hub cache, and otherwise downloaded once into the cgan cache. Offline and without the
file, the metric fails with one line that says where to put it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from cgan_core import EvalContext, MissingDependencyError, UsageError, WeightsSource, find_weights_file

from cgan_image.features import ImageFeatureExtractor, sha256_of, to_rgb

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"


def _fidelity_module():  # noqa: ANN202 - a module
    try:
        from torch_fidelity import feature_extractor_inceptionv3
    except ImportError:
        raise MissingDependencyError("torch-fidelity", "the inception image metrics") from None
    return feature_extractor_inceptionv3


def weights_url() -> str:
    """Where torch-fidelity publishes the converted TensorFlow FID Inception weights."""
    return _fidelity_module().URL_INCEPTION_V3


def weights_source() -> WeightsSource:
    """The weights file, its download address and how a user passes it."""
    return WeightsSource(WEIGHTS_NAME, weights_url(), option="inception.weights", env="CGAN_INCEPTION_WEIGHTS",
                         purpose="the FID Inception-v3 metrics",
                         alternative="the offline @effnet-lite0 / @classifier metrics")


def find_weights(ctx: EvalContext) -> Path:
    """The weights file, downloaded into the cache if nowhere else.

    Raises:
        UsageError: given path missing, or no file and the download failed.
    """
    return find_weights_file(weights_source(), ctx.option("inception.weights"), ctx.cache_dir)


@lru_cache(maxsize=1)
def load_inception(path: str, sha256: str) -> torch.nn.Module:
    """torch-fidelity's FID Inception-v3 with the weights at ``path`` (eval mode, CPU)."""
    try:
        # torch-fidelity unpickles the file itself; loading it here first with weights_only=True
        # refuses any file that holds more than tensors, so no code from it can run.
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"'{path}' is not a plain Inception-v3 state dict ({type(exc).__name__})") from None
    module = _fidelity_module()
    try:
        return module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=path)
    except RuntimeError as exc:
        raise UsageError(f"'{path}' does not hold FID Inception-v3 weights: {str(exc).splitlines()[0]}") from None


def inception_extractor(ctx: EvalContext) -> ImageFeatureExtractor:
    """Build the extractor on ``ctx.device``."""
    path = find_weights(ctx)
    sha = sha256_of(path)
    model = load_inception(str(path), sha).to(ctx.device)

    def preprocess(batch: torch.Tensor) -> torch.Tensor:
        # Quantise like a saved PNG: torch-fidelity's Inception takes uint8 and resizes to 299 itself.
        return ((to_rgb(batch) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)

    def embed(batch: torch.Tensor) -> torch.Tensor:
        return model(batch)[0]

    return ImageFeatureExtractor(
        name="inception",
        weights_sha256=sha,
        preprocessing="gray->rgb, uint8 quantisation, TF1-compatible bilinear resize to 299x299 (torch-fidelity)",
        embed=embed,
        preprocess=preprocess,
        batch_size=64,
        extra={"architecture": "torch-fidelity FeatureExtractorInceptionV3 (pool3, 2048-d)", "feature_dim": 2048},
    )
