"""The modality-free metric maths, checked against independent computations and known cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.neighbors import NearestNeighbors

from cgan_core.metrics import (
    classifier_score,
    density_coverage,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_stats,
    kernel_inception_distance,
    knn_radii,
    precision_recall,
)


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's general matrix square root (as pytorch-fid does)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def test_frechet_matches_scipy_sqrtm_on_random_data():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8))
    b = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 1.5
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a, b), rel=1e-8)


def test_frechet_of_known_gaussians_has_closed_form():
    # N(0, I) vs N(m, 4I) in d dims: |m|^2 + d*(1 + 4 - 2*2) = |m|^2 + d.
    d = 5
    mu = np.arange(d, dtype=float)
    value = frechet_distance_from_stats(np.zeros(d), np.eye(d), mu, 4 * np.eye(d))
    assert value == pytest.approx(float(mu @ mu) + d, rel=1e-12)


def test_frechet_identical_sets_is_zero_and_shifted_sets_add_squared_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 16))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.full(16, 0.5)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_frechet_is_stable_with_fewer_samples_than_dimensions_and_accepts_tensors():
    rng = np.random.default_rng(2)
    a = torch.tensor(rng.normal(size=(20, 64)), dtype=torch.float32)
    b = torch.tensor(rng.normal(size=(20, 64)), dtype=torch.float32)
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-5)


def test_frechet_rejects_bad_input():
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        feature_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3)))


def naive_kid_subset(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda u, v: (u @ v / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_kid_single_full_subset_matches_naive_double_loop():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 0.7
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=30)
    assert mean == pytest.approx(naive_kid_subset(x, y), rel=1e-10)
    assert std == 0.0


def test_kid_is_unbiased_near_zero_for_same_distribution_and_positive_for_different():
    rng = np.random.default_rng(4)
    same = kernel_inception_distance(rng.normal(size=(500, 8)), rng.normal(size=(500, 8)),
                                     num_subsets=20, subset_size=200, seed=1)
    different = kernel_inception_distance(rng.normal(size=(500, 8)), rng.normal(size=(500, 8)) + 1.0,
                                          num_subsets=20, subset_size=200, seed=1)
    assert abs(same[0]) < 3 * same[1] + 1e-3  # unbiased: centred on zero
    assert different[0] > 10 * max(same[1], 1e-4)
    again = kernel_inception_distance(rng.normal(size=(50, 8)), rng.normal(size=(50, 8)), 5, 20, seed=7)
    assert len(again) == 2


def test_kid_precomputed_kernels_equal_per_subset_kernels(monkeypatch):
    import cgan_core.metrics.kid as kid_module

    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(120, 5)), rng.normal(size=(90, 5)) + 0.3
    precomputed = kernel_inception_distance(x, y, 8, 40, seed=2)
    monkeypatch.setattr(kid_module, "PRECOMPUTE_LIMIT", 10)
    assert kernel_inception_distance(x, y, 8, 40, seed=2) == pytest.approx(precomputed, rel=1e-10)


def test_kid_is_deterministic_for_a_seed():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(100, 6)), rng.normal(size=(80, 6))
    assert kernel_inception_distance(x, y, 10, 50, seed=3) == kernel_inception_distance(x, y, 10, 50, seed=3)
    assert kernel_inception_distance(x, y, 10, 50, seed=3) != kernel_inception_distance(x, y, 10, 50, seed=4)


def sklearn_radii(x: np.ndarray, k: int) -> np.ndarray:
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return distances[:, k]


def test_knn_radii_match_sklearn():
    x = np.random.default_rng(6).normal(size=(150, 5))
    np.testing.assert_allclose(knn_radii(x, 3), sklearn_radii(x, 3), rtol=1e-8)


def brute_force_manifold(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> tuple[float, ...]:
    dist = np.linalg.norm(fake[:, None, :] - real[None, :, :], axis=-1)  # fake x real
    r_real, r_fake = sklearn_radii(real, k_pr), sklearn_radii(fake, k_pr)
    precision = np.mean([(dist[j] <= r_real).any() for j in range(len(fake))])
    recall = np.mean([(dist[:, i] <= r_fake).any() for i in range(len(real))])
    r_real_dc = sklearn_radii(real, k_dc)
    density = sum((dist[j] <= r_real_dc).sum() for j in range(len(fake))) / (k_dc * len(fake))
    coverage = np.mean([(dist[:, i] <= r_real_dc[i]).any() for i in range(len(real))])
    return precision, recall, density, coverage


def test_precision_recall_density_coverage_match_brute_force():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(120, 3))
    fake = rng.normal(size=(90, 3)) * 1.4 + 0.6
    precision, recall = precision_recall(real, fake, k=3)
    density, coverage = density_coverage(real, fake, k=5)
    expected = brute_force_manifold(real, fake, 3, 5)
    assert (precision, recall, density, coverage) == pytest.approx(expected, rel=1e-12)
    assert 0 < precision < 1 and 0 < recall < 1 and 0 < coverage < 1


def test_manifold_metrics_known_cases():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(200, 4))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    density, coverage = density_coverage(real, real.copy())
    assert coverage == 1.0 and density == pytest.approx(1.0, abs=0.25)
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    assert density_coverage(real, far) == (0.0, 0.0)
    # Mode collapse: every fake sample sits on one real point -> high precision, low recall.
    collapsed = np.repeat(real[:1], 200, axis=0) + rng.normal(scale=1e-6, size=(200, 4))
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.1
    assert density_coverage(real, collapsed)[1] < 0.05


def test_manifold_metrics_need_more_samples_than_k():
    with pytest.raises(ValueError, match="more than 3 samples"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))


def test_classifier_score_known_cases():
    classes = 10
    confident_balanced = np.eye(classes)[np.arange(1000) % classes]
    mean, std = classifier_score(confident_balanced, splits=10)
    assert mean == pytest.approx(classes, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    one_class = np.eye(classes)[np.zeros(1000, dtype=int)]
    assert classifier_score(one_class)[0] == pytest.approx(1.0, abs=1e-6)
    uniform = np.full((1000, classes), 1.0 / classes)
    assert classifier_score(uniform)[0] == pytest.approx(1.0, abs=1e-6)


def test_classifier_score_matches_direct_formula():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(60, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    py = p.mean(0)
    expected = np.exp(np.mean([np.sum(row * np.log(row / py)) for row in p]))
    assert classifier_score(p, splits=1)[0] == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="probability vectors"):
        classifier_score(logits, splits=1)
