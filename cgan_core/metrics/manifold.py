"""k-NN manifold metrics: improved precision/recall and density/coverage.

* Precision and recall (Kynkäänniemi et al., NeurIPS 2019): each set's manifold is the union of
  balls around its samples with radius the distance to the k-th nearest neighbour in the same
  set. Precision is the share of generated samples inside the real manifold, recall the share of
  real samples inside the generated manifold.
* Density and coverage (Naeem et al., ICML 2020): density counts, per generated sample, how many
  real balls contain it (divided by k and averaged), so it rewards samples where real data is
  dense and is not capped at 1; coverage is the share of real balls containing at least one
  generated sample.

Distances are Euclidean, computed in float64 in row blocks so 10k x 10k sets fit in memory.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from cgan_core.metrics.frechet import as_feature_matrix

BLOCK_ROWS = 1024


def _squared_distance_blocks(x: np.ndarray, y: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start_row, squared distances of x[start:start+B] to all of y)``."""
    y_norms = np.einsum("ij,ij->i", y, y)
    for start in range(0, x.shape[0], BLOCK_ROWS):
        block = x[start : start + BLOCK_ROWS]
        squared = np.einsum("ij,ij->i", block, block)[:, None] + y_norms[None, :] - 2.0 * block @ y.T
        yield start, np.maximum(squared, 0.0)


def knn_radii(features: Any, k: int) -> np.ndarray:
    """Distance from each sample to its k-th nearest neighbour in the same set (itself excluded).

    Raises:
        ValueError: if the set has no more than ``k`` samples.
    """
    x = as_feature_matrix(features)
    if x.shape[0] <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} samples, got {x.shape[0]}")
    radii = np.empty(x.shape[0], dtype=np.float64)
    for start, squared in _squared_distance_blocks(x, x):
        # Column k of the partition is the (k+1)-th smallest: index 0 is the sample itself (0).
        radii[start : start + squared.shape[0]] = np.sqrt(np.partition(squared, k, axis=1)[:, k])
    return radii


def _containment_counts(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per point: how many balls (centre, radius) contain it; per ball: whether any point is inside."""
    counts = np.zeros(points.shape[0], dtype=np.int64)
    covered = np.zeros(centres.shape[0], dtype=bool)
    squared_radii = radii**2
    for start, squared in _squared_distance_blocks(points, centres):
        inside = squared <= squared_radii[None, :]
        counts[start : start + squared.shape[0]] = inside.sum(axis=1)
        covered |= inside.any(axis=0)
    return counts, covered


def precision_recall(real_features: Any, fake_features: Any, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN radius ``k`` (paper: 3).

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    real = as_feature_matrix(real_features, "real features")
    fake = as_feature_matrix(fake_features, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    fake_in_real, _ = _containment_counts(fake, real, knn_radii(real, k))
    real_in_fake, _ = _containment_counts(real, fake, knn_radii(fake, k))
    return float((fake_in_real > 0).mean()), float((real_in_fake > 0).mean())


def density_coverage(real_features: Any, fake_features: Any, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with k-NN radius ``k`` (paper: 5).

    Returns:
        ``(density, coverage)``; coverage is in [0, 1], density is >= 0 and about 1 when the
        generated samples follow the real distribution.
    """
    real = as_feature_matrix(real_features, "real features")
    fake = as_feature_matrix(fake_features, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    counts, covered = _containment_counts(fake, real, knn_radii(real, k))
    return float(counts.sum() / (k * fake.shape[0])), float(covered.mean())
