"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel.

``k(x, y) = (x·y / D + 1)³``. The estimate is averaged over random subsets of both sets (the
reference implementation's 100 subsets of 1000), which also gives its standard deviation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cgan_core.metrics.frechet import as_feature_matrix

PRECOMPUTE_LIMIT = 4096  # samples per set up to which whole kernel matrices are kept (128 MiB each)


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """``(x·y / D + coef0) ** degree`` for every pair of rows of ``x`` and ``y``."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    """Unbiased MMD² from the three kernel matrices (diagonals of ``kxx``/``kyy`` excluded)."""
    m, n = kxx.shape[0], kyy.shape[0]
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2.0 * kxy.mean())


def kernel_inception_distance(
    features_a: Any,
    features_b: Any,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID between two feature sets: mean and standard deviation over random subsets.

    Args:
        features_a: (N, D) features of one set.
        features_b: (M, D) features of the other.
        num_subsets: Number of random subsets drawn (without replacement within a subset).
        subset_size: Samples per subset; capped at the size of the smaller set.
        seed: Seed of the subset choice (the result is deterministic for a seed).

    Raises:
        ValueError: with fewer than two samples in a set or mismatched dimensions.
    """
    a, b = as_feature_matrix(features_a, "features_a"), as_feature_matrix(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    size = min(subset_size, a.shape[0], b.shape[0])
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {a.shape[0]} and {b.shape[0]}")
    rng = np.random.default_rng(seed)
    # Small sets: compute each kernel matrix once and index it per subset (far fewer flops than
    # 100 subsets of 1000 recomputed); large sets would need too much memory for that.
    full = max(a.shape[0], b.shape[0]) <= PRECOMPUTE_LIMIT
    if full:
        kaa, kbb, kab = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
    values = np.empty(num_subsets, dtype=np.float64)
    for i in range(num_subsets):
        ia = rng.choice(a.shape[0], size, replace=False)
        ib = rng.choice(b.shape[0], size, replace=False)
        if full:
            values[i] = mmd2_unbiased(kaa[np.ix_(ia, ia)], kbb[np.ix_(ib, ib)], kab[np.ix_(ia, ib)])
        else:
            x, y = a[ia], b[ib]
            values[i] = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))
    return float(values.mean()), float(values.std())
