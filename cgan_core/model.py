"""The model side of the training contract: :class:`GANModel` says *what* to train.

A model holds a ``generator`` and a ``discriminator``, knows how to draw latent noise and turn
it into samples in its modality's tensor format, and declares its training :class:`Phase` s.
The :class:`cgan_core.trainer.Trainer` owns *how*: devices, optimisers, AMP, EMA, checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.step import StepContext

StepFunction = Callable[["StepContext"], Mapping[str, float]]


@dataclass
class Phase:
    """One named stage of training.

    Attributes:
        name: Stage name, e.g. ``"adversarial"`` or ``"mle"``.
        steps: Number of steps the stage runs (0 skips it).
        step: ``step(ctx) -> {"loss_name": value}``; ``None`` uses the core's default
            adversarial step (``n_critic`` discriminator updates, then one generator update).
        unit: What one step is, for progress display (``"step"``, ``"batch"``, ``"round"``).
    """

    name: str
    steps: int
    step: Optional[StepFunction] = None
    unit: str = "step"


class GANModel(nn.Module):
    """Base class of every cgan model.

    Subclasses set ``self.generator`` and ``self.discriminator`` and implement
    :meth:`sample_latent` and usually :meth:`generate`. The defaults suit a generator that maps
    a latent tensor straight to samples (DCGAN, TGAN).

    Attributes:
        generator: The generator network.
        discriminator: The discriminator (critic) network.
        data_info: What the dataset said about itself (shape, vocabulary, ...).
        batchable_sampling: Whether ``cgan serve`` may answer concurrent requests with one
            ``generate`` call on their concatenated latents (each drawn from its request's seeded
            generator). ``None`` (default): yes unless the model overrides :meth:`sample`
            (e.g. token-by-token sampling); set ``False`` if ``generate`` couples samples.
    """

    generator: nn.Module
    discriminator: nn.Module
    batchable_sampling: Optional[bool] = None

    def __init__(self, config: Any = None, data_info: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()
        self.config = config
        self.data_info = dict(data_info or {})

    # --- what the trainer calls -------------------------------------------------------------
    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw ``n`` latent vectors on the model's device."""
        raise NotImplementedError

    def generate(self, latent: torch.Tensor, generator_module: Optional[nn.Module] = None) -> torch.Tensor:
        """Map latent vectors to samples with ``generator_module`` (default: the live generator).

        The trainer passes the EMA copy of the generator when sampling for previews and
        evaluation, so subclasses must use ``generator_module`` rather than ``self.generator``.
        """
        module = generator_module if generator_module is not None else self.generator
        return module(latent)

    def discriminate(self, samples: torch.Tensor) -> torch.Tensor:
        """Discriminator scores (logits) for a batch of samples."""
        return self.discriminator(samples)

    def phases(self, train_config: Any) -> list[Phase]:
        """Training stages in order; default: one adversarial phase of ``train.max_steps``."""
        return [Phase("adversarial", int(train_config.max_steps))]

    def prepare_batch(self, batch: Any) -> torch.Tensor:
        """Turn a batch from the data stream into the tensor the discriminator takes."""
        return batch

    def after_discriminator_step(self, step: int) -> None:
        """Called after each discriminator update (weight or singular value clipping)."""

    def randn(self, *shape: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Standard normal noise on the model's device.

        With an explicit ``generator`` the numbers are drawn on the CPU and moved, so a seed gives
        the same samples on every device; without one the device's global RNG is used.
        """
        if generator is not None:
            return torch.randn(*shape, generator=generator).to(self.device)
        return torch.randn(*shape, device=self.device)

    def configure_optimizers(self, train_config: Any) -> Optional[dict[str, torch.optim.Optimizer]]:
        """Return custom optimisers, or ``None`` to let the trainer build them from
        :meth:`optimizer_groups` and the ``train`` section."""
        return None

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimiser name; the trainer builds one optimiser for each."""
        return {
            "generator": [p for p in self.generator.parameters() if p.requires_grad],
            "discriminator": [p for p in self.discriminator.parameters() if p.requires_grad],
        }

    # --- what users call --------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.parameters()).device

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: Optional[torch.Generator] = None,
        generator_module: Optional[nn.Module] = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Generate ``n`` samples in the modality's tensor format, on the CPU.

        Sampling runs the generator in eval mode (batch-norm running statistics) and restores
        its mode afterwards; with the same ``torch.Generator`` seed the result is the same.
        """
        module = generator_module if generator_module is not None else self.generator
        was_training = module.training
        module.eval()
        try:
            chunks = []
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                latent = self.sample_latent(count, generator=generator)
                chunks.append(self.generate(latent, generator_module=module).cpu())
            return torch.cat(chunks) if chunks else torch.empty(0)
        finally:
            module.train(was_training)

    def extra_state_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors outside the modules' state dicts that a checkpoint must keep."""
        return {}

    def load_extra_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Restore what :meth:`extra_state_tensors` returned."""
