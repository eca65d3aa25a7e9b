"""The image metrics: ``fid``, ``kid``, ``precision``, ``recall``, ``density``, ``coverage`` on the
features of each extractor (``@effnet-lite0``, ``@classifier``, ``@inception``), and the
Inception-Score-style ``classifier-score``.

This module stays light (it is imported when plugins register); torch and the extractors are
imported when a metric is computed. The maths is the core's (:mod:`cgan_core.metrics`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from cgan_core import MetricSpec

EXTRACTOR_NAMES = ("effnet-lite0", "classifier", "inception")
EXTRACTOR_WORDS = {
    "effnet-lite0": "ImageNet EfficientNet-Lite0 features (offline)",
    "classifier": "features of a small CNN cgan trains on the dataset's labels (offline)",
    "inception": "the standard FID Inception-v3 features (needs its weights file or a download)",
}

# metric -> (higher is better, description before "on <features>")
FEATURE_METRICS: dict[str, tuple[bool, str]] = {
    "fid": (False, "Fréchet distance between real and generated"),
    "kid": (False, "Kernel Inception Distance (unbiased MMD², cubic kernel; std in provenance) between real and generated"),
    "precision": (True, "improved precision (Kynkäänniemi 2019, k=3): share of generated samples on the real manifold,"),
    "recall": (True, "improved recall (Kynkäänniemi 2019, k=3): share of real samples on the generated manifold,"),
    "density": (True, "density (Naeem 2020, k=5) of generated samples among real neighbourhoods,"),
    "coverage": (True, "coverage (Naeem 2020, k=5): share of real neighbourhoods holding a generated sample,"),
}


def _features(ctx: Any, extractor_name: str) -> tuple[Any, Any, Any]:
    from cgan_image.features import fake_features, load_extractor, real_features

    extractor = load_extractor(extractor_name, ctx)
    return extractor, real_features(extractor, ctx), fake_features(extractor, ctx)


def compute_feature_metric(metric: str, extractor_name: str, ctx: Any) -> dict[str, float]:
    """``MetricSpec.compute`` of ``metric@extractor_name``."""
    from cgan_core import density_coverage, frechet_distance, kernel_inception_distance, precision_recall

    name = f"{metric}@{extractor_name}"
    extractor, real, fake = _features(ctx, extractor_name)
    extra: dict[str, Any] = {}
    if metric == "fid":
        value = frechet_distance(real, fake)
    elif metric == "kid":
        subsets = int(ctx.option("kid.subsets", 100))
        subset_size = int(ctx.option("kid.subset_size", 1000))
        value, std = kernel_inception_distance(real, fake, subsets, subset_size, seed=ctx.seed)
        extra = {"std": std, "subsets": subsets, "subset_size": min(subset_size, len(real), len(fake))}
    elif metric in ("precision", "recall"):
        k = int(ctx.option("precision_recall.k", 3))
        pair = ctx.memoized(f"image-pr:{extractor_name}:{k}", lambda: precision_recall(real, fake, k))
        value, extra = pair[0 if metric == "precision" else 1], {"k": k}
    else:
        k = int(ctx.option("density_coverage.k", 5))
        pair = ctx.memoized(f"image-dc:{extractor_name}:{k}", lambda: density_coverage(real, fake, k))
        value, extra = pair[0 if metric == "density" else 1], {"k": k}
    ctx.record(name, **{**extractor.provenance(), "feature_dim": int(real.shape[1]), **extra})
    return {name: float(value)}


def compute_classifier_score(ctx: Any) -> dict[str, float]:
    """``MetricSpec.compute`` of ``classifier-score``: exp(E KL(p(y|x) || p(y))) of generated images."""
    from cgan_core import classifier_score

    from cgan_image.features import load_extractor

    extractor = load_extractor("classifier", ctx)
    probabilities = ctx.memoized("image-classifier-probabilities",
                                 lambda: extractor.class_probabilities(ctx.fake, ctx.device))
    splits = int(ctx.option("classifier-score.splits", 10))
    mean, std = classifier_score(probabilities, splits=min(splits, len(probabilities)))
    ctx.record("classifier-score", **extractor.provenance(), std=std, splits=splits,
               classes=int(probabilities.shape[1]))
    return {"classifier-score": mean}


def image_metric_specs() -> list[MetricSpec]:
    """Every image metric, one spec per metric and extractor."""
    specs = []
    for extractor in EXTRACTOR_NAMES:
        for metric, (higher, words) in FEATURE_METRICS.items():
            compute: Callable[[Any], dict[str, float]] = partial(compute_feature_metric, metric, extractor)
            specs.append(MetricSpec(
                name=f"{metric}@{extractor}", modality="image", compute=compute, higher_is_better=higher,
                extractor=extractor, description=f"{words} on {EXTRACTOR_WORDS[extractor]}",
            ))
    specs.append(MetricSpec(
        name="classifier-score", modality="image", compute=compute_classifier_score, higher_is_better=True,
        extractor="classifier",
        description="Inception-Score-style exp(E KL(p(y|x)||p(y))) with the dataset classifier (1..classes)",
    ))
    return specs
