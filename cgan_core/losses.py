"""Adversarial losses and discriminator penalties (the maths).

All losses take discriminator *logits* (unbounded scores) and return scalar means over the
batch. :mod:`cgan_core.core_plugin` registers them through ``register_losses``, the same hook a
third party uses, so ``cgan list losses`` shows them with the provenance ``core``.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F


Critic = Callable[[torch.Tensor], torch.Tensor]


# --- loss pairs ---------------------------------------------------------------------------------
def bce_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logits) (Goodfellow et al. 2014)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def non_saturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): the non-saturating generator loss."""
    return F.softplus(-fake_logits).mean()


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """log(1 - D(G(z))): the original minimax generator loss (saturates early in training)."""
    return -F.softplus(fake_logits).mean()


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """max(0, 1 - D(x)) + max(0, 1 + D(G(z))) (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def critic_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-D(G(z)): generator loss of hinge and Wasserstein GANs."""
    return -fake_logits.mean()


def wasserstein_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D(G(z)) - D(x): the critic loss of WGAN (Arjovsky et al. 2017)."""
    return fake_logits.mean() - real_logits.mean()


def least_squares_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """0.5 (D(x) - 1)^2 + 0.5 D(G(z))^2 (Mao et al. 2017, a=0, b=c=1)."""
    return 0.5 * ((real_logits - 1.0) ** 2).mean() + 0.5 * (fake_logits**2).mean()


def least_squares_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """0.5 (D(G(z)) - 1)^2."""
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()


# --- penalties ----------------------------------------------------------------------------------
def _mix(real: torch.Tensor, fake: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)
    return alpha * real + (1.0 - alpha) * fake


def gradient_penalty(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """WGAN-GP: E[(||grad D(x_hat)||_2 - 1)^2] at random interpolates x_hat (Gulrajani et al. 2017)."""
    mixed = _mix(real.detach(), fake.detach(), generator).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def r1_penalty(
    critic: Critic,
    real: torch.Tensor,
    fake: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """R1: 0.5 E[||grad D(x)||^2] on real data (Mescheder et al. 2018)."""
    real = real.detach().requires_grad_(True)
    scores = critic(real)
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return 0.5 * grad.flatten(1).pow(2).sum(dim=1).mean()


PENALTIES: dict[str, Optional[Callable[..., torch.Tensor]]] = {
    "none": None,
    "gp": gradient_penalty,
    "r1": r1_penalty,
}
