"""Exponential moving average of generator weights (Karras et al.; Yazıcı et al. 2019)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``shadow``, an averaged copy of a module, updated after each optimiser step.

    Floating-point parameters are averaged; buffers (batch-norm running statistics) are copied,
    because averaging statistics of different weights means nothing.
    """

    def __init__(self, module: nn.Module, decay: float, start_step: int = 0) -> None:
        self.decay = decay
        self.start_step = start_step
        self.shadow = copy.deepcopy(module).eval()
        for parameter in self.shadow.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        """Blend ``module``'s weights into the shadow (a plain copy before ``start_step``)."""
        decay = 0.0 if step < self.start_step else self.decay
        for shadow, live in zip(self.shadow.parameters(), module.parameters()):
            if decay == 0.0:
                shadow.copy_(live)
            else:
                shadow.lerp_(live, 1.0 - decay)
        for shadow, live in zip(self.shadow.buffers(), module.buffers()):
            shadow.copy_(live)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The shadow module's weights."""
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the shadow module's weights."""
        self.shadow.load_state_dict(state)
