"""Scores computed from a classifier's class probabilities (Inception Score and its relatives)."""

from __future__ import annotations

from typing import Any

import numpy as np


def classifier_score(probabilities: Any, splits: int = 10, eps: float = 1e-12) -> tuple[float, float]:
    """Inception-Score-style ``exp(E_x KL(p(y|x) || p(y)))``: mean and std over ``splits`` parts.

    High when each sample is classified confidently (low conditional entropy) and the classes
    are used evenly (high marginal entropy); it ranges from 1 to the number of classes.

    Args:
        probabilities: (N, C) rows of class probabilities (each row sums to 1).
        splits: Number of equal parts the score is computed on (Salimans et al. used 10).
        eps: Floor inside the logarithms.

    Raises:
        ValueError: if the rows are not probability vectors or there are fewer samples than splits.
    """
    if hasattr(probabilities, "detach"):
        probabilities = probabilities.detach().cpu().double().numpy()
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("classifier_score needs an (N, C) matrix whose rows are probability vectors")
    if p.shape[0] < splits:
        raise ValueError(f"classifier_score needs at least {splits} samples for {splits} splits, got {p.shape[0]}")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + eps) - np.log(marginal + eps))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
