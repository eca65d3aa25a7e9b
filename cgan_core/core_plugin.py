"""The core's own plugin: registers the built-in losses through the public ``register_losses`` hook.

The loss functions live in :mod:`cgan_core.losses` (torch); they are referenced lazily so that
loading this plugin, which every ``cgan`` invocation does, does not import torch.
"""

from __future__ import annotations

from typing import Callable

from cgan_core.hookspecs import hookimpl
from cgan_core.lazy import lazy
from cgan_core.specs import LossSpec

_L = "cgan_core.losses"

BUILTIN_LOSSES = (
    LossSpec("bce", lazy(_L, "bce_discriminator_loss"), lazy(_L, "non_saturating_generator_loss"),
             description="non-saturating binary cross-entropy (DCGAN)"),
    LossSpec("minimax", lazy(_L, "bce_discriminator_loss"), lazy(_L, "minimax_generator_loss"),
             description="original minimax binary cross-entropy"),
    LossSpec("hinge", lazy(_L, "hinge_discriminator_loss"), lazy(_L, "critic_generator_loss"),
             description="hinge loss"),
    LossSpec("wasserstein", lazy(_L, "wasserstein_discriminator_loss"), lazy(_L, "critic_generator_loss"),
             description="Wasserstein critic loss (pair with clipping or a penalty)"),
    LossSpec("wgan-gp", lazy(_L, "wasserstein_discriminator_loss"), lazy(_L, "critic_generator_loss"),
             penalty=lazy(_L, "gradient_penalty"), default_penalty_weight=10.0,
             description="Wasserstein loss with gradient penalty (lambda 10)"),
    LossSpec("lsgan", lazy(_L, "least_squares_discriminator_loss"), lazy(_L, "least_squares_generator_loss"),
             description="least-squares GAN"),
)


@hookimpl
def register_losses(register: Callable[[LossSpec], None]) -> None:
    """Register the core's losses."""
    for spec in BUILTIN_LOSSES:
        register(spec)
