"""Fréchet distance between two sets of features (the maths behind FID, FVD, FAD, FCD ...).

``d² = |mu_a - mu_b|² + Tr(S_a + S_b - 2 (S_a S_b)^½)``, computed in float64. The trace of the
matrix square root is taken from the eigenvalues of the symmetric matrix ``S_a^½ S_b S_a^½``,
which has the same eigenvalues as ``S_a S_b`` but, being symmetric positive semi-definite, needs
no complex arithmetic and no "discard the imaginary part" fix-ups that ``scipy.linalg.sqrtm``
needs on near-singular covariances (e.g. fewer samples than feature dimensions).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_feature_matrix(features: Any, name: str = "features") -> np.ndarray:
    """Turn a tensor or array of shape (N, D) into a float64 NumPy matrix.

    Raises:
        ValueError: if the input is not two-dimensional or holds NaN/Inf.
    """
    if hasattr(features, "detach"):  # a torch tensor; torch is not imported for a duck-typed check
        features = features.detach().cpu().double().numpy()
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a (samples, dimensions) matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return matrix


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and unbiased covariance matrix (ddof=1) of (N, D) features, in float64.

    Raises:
        ValueError: with fewer than two samples (a covariance needs two).
    """
    matrix = as_feature_matrix(features)
    if matrix.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {matrix.shape[0]}")
    return matrix.mean(axis=0), np.cov(matrix, rowvar=False, ddof=1).reshape(matrix.shape[1], matrix.shape[1])


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues -> 0)."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """``Tr((S_a S_b)^½)`` for two covariance matrices, via ``S_a^½ S_b S_a^½``."""
    root_a = _symmetric_sqrt(np.asarray(sigma_a, dtype=np.float64))
    middle = root_a @ np.asarray(sigma_b, dtype=np.float64) @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance_from_stats(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
    """Squared Fréchet distance between two Gaussians given by mean and covariance.

    Raises:
        ValueError: if the shapes do not agree.
    """
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, np.float64)), np.atleast_1d(np.asarray(mu_b, np.float64))
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape != (mu_a.size, mu_a.size):
        raise ValueError(f"statistics do not match: means {mu_a.shape} vs {mu_b.shape}, "
                         f"covariances {sigma_a.shape} vs {sigma_b.shape}")
    mean_term = float(np.sum((mu_a - mu_b) ** 2))
    trace_term = float(np.trace(sigma_a) + np.trace(sigma_b)) - 2.0 * trace_sqrt_product(sigma_a, sigma_b)
    # Rounding can leave a tiny negative number for identical statistics; a distance is >= 0.
    return max(mean_term + trace_term, 0.0)


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Squared Fréchet distance between Gaussians fitted to two (N, D) feature sets.

    Args:
        features_a: Features of one set (e.g. real samples), array or tensor of shape (N, D).
        features_b: Features of the other set, shape (M, D).

    Returns:
        The distance (FID when the features come from Inception-v3's pool layer).
    """
    a, b = as_feature_matrix(features_a, "features_a"), as_feature_matrix(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(*feature_statistics(a), *feature_statistics(b))
