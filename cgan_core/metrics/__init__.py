"""Modality-free metric maths and the evaluation context.

Everything here works on (N, D) feature matrices (NumPy arrays or torch tensors) and knows
nothing about pixels, words or frames: a modality plugin turns its samples into features with
its own extractor and calls these functions from a :class:`cgan_core.specs.MetricSpec`.
"""

from cgan_core.metrics.context import EvalContext, MetricUnavailable
from cgan_core.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_stats
from cgan_core.metrics.kid import kernel_inception_distance
from cgan_core.metrics.manifold import density_coverage, knn_radii, precision_recall
from cgan_core.metrics.scores import classifier_score

__all__ = [
    "EvalContext",
    "MetricUnavailable",
    "classifier_score",
    "density_coverage",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_stats",
    "kernel_inception_distance",
    "knn_radii",
    "precision_recall",
]
