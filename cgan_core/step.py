"""What a phase's step function sees (:class:`StepContext`) and the core's default step.

The default adversarial step is the classic alternation: ``train.n_critic`` discriminator
updates on fresh real batches, then one generator update, with the loss pair and penalty taken
from the registry. Models that need something else (SeqGAN's policy gradient) write their own
step function against the same context.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator, Mapping, Optional

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.config import RunConfig, TrainConfig
    from cgan_core.data import LoadedData
    from cgan_core.distributed import GradientSync
    from cgan_core.model import GANModel
    from cgan_core.specs import LossSpec


class StepContext:
    """Everything a step function needs, owned by the trainer.

    Attributes:
        model: The (unwrapped) GAN model.
        config: The whole run config.
        loss: The selected loss pair.
        optimizers: Optimiser name -> optimiser (``generator``, ``discriminator``, ...).
        device: Training device.
        data: The training data.
        batches: Iterator of real batches in the seeded, resumable order.
        step: Global step about to run (0-based).
        phase: Current phase name.
        phase_step: Step within the phase (0-based).
        state: A per-run dict a step function may keep JSON-able state in; it is checkpointed.
        penalty: Discriminator penalty ``penalty(critic, real, fake)`` or ``None``.
        penalty_weight: Its weight.
        world_size: Number of DDP processes (1 without DDP).
        rank: This process's rank (0 without DDP); step functions that draw their own samples
            mix it into their seeds so that ranks do not repeat each other's work.
        gradient_sync: The trainer's :class:`~cgan_core.distributed.GradientSync` under DDP,
            else ``None``; :meth:`optimize` uses it to average gradients before clipping.
    """

    def __init__(
        self,
        model: "GANModel",
        config: "RunConfig",
        loss: "LossSpec",
        optimizers: dict[str, torch.optim.Optimizer],
        device: torch.device,
        data: "LoadedData",
        batches: Iterator[Any],
        amp_dtype: Optional[torch.dtype] = None,
        penalty: Optional[Callable[..., torch.Tensor]] = None,
        penalty_weight: float = 0.0,
        wrapped: Optional[Mapping[str, nn.Module]] = None,
        world_size: int = 1,
        rank: int = 0,
        gradient_sync: Optional["GradientSync"] = None,
    ) -> None:
        self.model = model
        self.config = config
        self.loss = loss
        self.optimizers = optimizers
        self.device = device
        self.data = data
        self.batches = batches
        self.amp_dtype = amp_dtype
        self.penalty = penalty
        self.penalty_weight = penalty_weight
        self.wrapped = dict(wrapped or {})
        self.world_size = world_size
        self.rank = rank
        self.gradient_sync = gradient_sync
        self.step = 0
        self.phase = ""
        self.phase_step = 0
        self.state: dict[str, Any] = {}

    @property
    def train(self) -> "TrainConfig":
        """The ``train`` config section."""
        return self.config.train

    @property
    def generator(self) -> nn.Module:
        """The generator as it should be called in training (DDP-wrapped when distributed)."""
        return self.wrapped.get("generator", self.model.generator)

    @property
    def discriminator(self) -> nn.Module:
        """The discriminator as it should be called in training (DDP-wrapped when distributed)."""
        return self.wrapped.get("discriminator", self.model.discriminator)

    def next_batch(self) -> torch.Tensor:
        """The next real batch, prepared by the model and moved to the device."""
        batch = next(self.batches)
        batch = _to_device(batch, self.device)
        return self.model.prepare_batch(batch)

    def autocast(self) -> ContextManager[Any]:
        """Mixed-precision context when AMP is active, else a no-op."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def optimize(self, name: str, loss: torch.Tensor, retain_graph: bool = False,
                 clip: Optional[float] = None) -> None:
        """Zero the named optimiser's gradients, back-propagate ``loss``, clip and step.

        Under DDP the gradients are averaged over ranks before clipping, so the clipped norm is
        the norm of the job's gradient (as in one process), not of this rank's share.

        Args:
            name: Optimiser name.
            loss: Scalar loss to back-propagate.
            retain_graph: Keep the autograd graph for another backward pass.
            clip: Maximum gradient norm; ``None`` uses ``train.grad_clip``, 0 disables clipping.
        """
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward(retain_graph=retain_graph)
        if self.gradient_sync is not None:
            self.gradient_sync.sync(optimizer)
        limit = self.train.grad_clip if clip is None else clip
        if limit and limit > 0:
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, limit)
        optimizer.step()


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients into ``module``'s parameters (saves the D backward in G steps)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def adversarial_step(ctx: StepContext) -> dict[str, float]:
    """The default GAN step: ``n_critic`` discriminator updates, then one generator update."""
    model = ctx.model
    generator, discriminator = ctx.generator, ctx.discriminator
    logs: dict[str, float] = {}
    for _ in range(max(1, ctx.train.n_critic)):
        real = ctx.next_batch()
        batch_size = real.shape[0]
        with torch.no_grad():
            latent = model.sample_latent(batch_size)
            with ctx.autocast():
                fake = model.generate(latent, generator_module=generator)
        with ctx.autocast():
            real_logits = discriminator(real)
            fake_logits = discriminator(fake)
            loss_d = ctx.loss.discriminator_loss(real_logits.float(), fake_logits.float())
        total_d = loss_d
        if ctx.penalty is not None and ctx.penalty_weight > 0:
            penalty = ctx.penalty(discriminator, real, fake.float())
            total_d = loss_d + ctx.penalty_weight * penalty
            logs["penalty"] = float(penalty.detach())
        ctx.optimize("discriminator", total_d)
        model.after_discriminator_step(ctx.step)
    latent = model.sample_latent(ctx.train.batch_size)
    with frozen(model.discriminator), ctx.autocast():
        fake_logits_g = discriminator(model.generate(latent, generator_module=generator))
        if getattr(ctx.loss, "generator_needs_real", False):
            # Relativistic losses score fakes against the critic's view of real data; the last
            # critic batch is reused, as in Jolicoeur-Martineau's reference code, so the data
            # order is the same as for every other loss.
            loss_g = ctx.loss.generator_loss(fake_logits_g.float(), discriminator(real).float())
        else:
            loss_g = ctx.loss.generator_loss(fake_logits_g.float())
    ctx.optimize("generator", loss_g)
    logs.update({
        "loss_d": float(loss_d.detach()),
        "loss_g": float(loss_g.detach()),
        "d_real": float(real_logits.detach().float().mean()),
        "d_fake": float(fake_logits.detach().float().mean()),
    })
    return logs
