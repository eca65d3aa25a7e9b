"""The relativistic average GAN loss (Jolicoeur-Martineau, "The relativistic discriminator", ICLR 2019).

Instead of "is x real?", the critic answers "is x more real than the average fake?" (and vice
versa). With C the critic's logits, the discriminator minimises

    -log sigmoid(C(x_r) - mean C(x_f)) - log(1 - sigmoid(C(x_f) - mean C(x_r)))

and the generator the same with the roles of real and fake swapped. The generator's side needs
the critic's logits on real data too, which the spec declares with ``generator_needs_real``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relativistic_average_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """RaSGAN discriminator loss; ``softplus(-t) = -log sigmoid(t)`` keeps it stable."""
    real_vs_fake = real_logits - fake_logits.mean()
    fake_vs_real = fake_logits - real_logits.mean()
    return F.softplus(-real_vs_fake).mean() + F.softplus(fake_vs_real).mean()


def relativistic_average_generator_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """RaSGAN generator loss: fakes should look more real than the average real, and vice versa."""
    real_vs_fake = real_logits - fake_logits.mean()
    fake_vs_real = fake_logits - real_logits.mean()
    return F.softplus(real_vs_fake).mean() + F.softplus(-fake_vs_real).mean()
