"""Phase shuffle (Donahue et al. 2019, section 3.3): a discriminator regulariser for audio.

Transposed convolutions leave periodic "checkerboard" artefacts at fixed phases, which a
discriminator could use to tell generated audio apart. Shifting each example's activations by a
random -n..n samples (reflect-padding the edges) makes it invariant to that phase.
"""

from __future__ import annotations

import torch
from torch import nn


def phase_shuffle(x: torch.Tensor, radius: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each example of ``x`` (N, C, L) by its own random offset in [-radius, radius].

    Positions that fall off an edge are filled by reflection, so the output has the input's length.
    """
    if radius <= 0:
        return x
    batch, _, length = x.shape
    shifts = torch.randint(-radius, radius + 1, (batch, 1), generator=generator,
                           device="cpu" if generator is not None else x.device).to(x.device)
    positions = torch.arange(length, device=x.device).unsqueeze(0) - shifts  # (N, L)
    # Reflect indices about both edges: -1 -> 1, L -> L-2 (radius is far below L, one fold suffices).
    positions = positions.abs()
    positions = torch.where(positions >= length, 2 * (length - 1) - positions, positions)
    return x.gather(2, positions.unsqueeze(1).expand(-1, x.shape[1], -1))


class PhaseShuffle(nn.Module):
    """:func:`phase_shuffle` as a layer; active in training mode only."""

    def __init__(self, radius: int) -> None:
        super().__init__()
        self.radius = int(radius)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.radius <= 0:
            return x
        return phase_shuffle(x, self.radius)

    def extra_repr(self) -> str:
        return f"radius={self.radius}"
