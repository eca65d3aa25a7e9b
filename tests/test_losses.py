"""Every loss and penalty against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from cgan_core import losses
from cgan_core.plugins import get_registry

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def mean(values):
    return sum(values) / len(values)


def test_bce_pair():
    expected_d = mean([softplus(-2.0), softplus(1.0)]) + mean([softplus(0.5), softplus(-3.0)])
    assert losses.bce_discriminator_loss(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert losses.non_saturating_generator_loss(FAKE).item() == pytest.approx(mean([softplus(-0.5), softplus(3.0)]), rel=1e-6)
    # log(1 - sigmoid(x)) = -softplus(x)
    assert losses.minimax_generator_loss(FAKE).item() == pytest.approx(-mean([softplus(0.5), softplus(-3.0)]), rel=1e-6)


def test_hinge_pair():
    expected = mean([max(0, 1 - 2.0), max(0, 1 + 1.0)]) + mean([max(0, 1 + 0.5), max(0, 1 - 3.0)])
    assert losses.hinge_discriminator_loss(REAL, FAKE).item() == pytest.approx(expected)
    assert losses.critic_generator_loss(FAKE).item() == pytest.approx(-mean([0.5, -3.0]))


def test_wasserstein_pair():
    assert losses.wasserstein_discriminator_loss(REAL, FAKE).item() == pytest.approx(mean([0.5, -3.0]) - mean([2.0, -1.0]))


def test_least_squares_pair():
    expected = 0.5 * mean([(2 - 1) ** 2, (-1 - 1) ** 2]) + 0.5 * mean([0.25, 9.0])
    assert losses.least_squares_discriminator_loss(REAL, FAKE).item() == pytest.approx(expected)
    assert losses.least_squares_generator_loss(FAKE).item() == pytest.approx(0.5 * mean([0.25, 16.0]))


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = w . x has gradient w everywhere: penalty = (|w| - 1)^2 exactly.
    w = torch.tensor([3.0, 4.0])
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx((5.0 - 1.0) ** 2)


def test_r1_penalty_of_a_quadratic_critic():
    # D(x) = sum x^2 has gradient 2x: R1 = 0.5 * mean ||2x||^2.
    critic = lambda x: (x**2).sum(dim=1)  # noqa: E731
    real = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    expected = 0.5 * mean([4 * (1 + 4), 4 * (0 + 1)])
    assert losses.r1_penalty(critic, real).item() == pytest.approx(expected)


def test_penalties_keep_the_graph_for_the_critic_update():
    layer = torch.nn.Linear(2, 1)
    critic = lambda x: layer(x).squeeze(1)  # noqa: E731
    penalty = losses.gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 2))
    penalty.backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def test_losses_are_registered_through_the_hook_with_core_provenance():
    registry = get_registry()
    assert {"bce", "minimax", "hinge", "wasserstein", "wgan-gp", "lsgan"} <= set(registry.losses)
    assert registry.owner("losses", "hinge") == "core"
    spec = registry.loss("wgan-gp")
    assert spec.penalty is not None and spec.default_penalty_weight == 10.0
    assert spec.discriminator_loss(REAL, FAKE).item() == pytest.approx(losses.wasserstein_discriminator_loss(REAL, FAKE).item())
