"""The Trainer: runs a model's phases and owns devices, optimisers, EMA, AMP, checkpoints.

It guarantees that a run killed at any point and resumed from its latest checkpoint ends with
the same weights as an uninterrupted run on the same machine: the checkpoint holds the weights,
optimiser states, EMA, phase and step, every RNG state and the position in the data order.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from cgan_core import checkpoint as ckpt
from cgan_core import distributed
from cgan_core.callbacks import Callback, MetricsLogger, TensorBoardLogger, truncate_jsonl_after
from cgan_core.config import RunConfig
from cgan_core.data import BatchStream, LoadedData, SeededBatchOrder
from cgan_core.ema import EMA
from cgan_core.errors import CganRuntimeError, UsageError
from cgan_core.losses import PENALTIES
from cgan_core.model import GANModel, Phase
from cgan_core.runs import RunDir
from cgan_core.specs import LossSpec, ModalitySpec
from cgan_core.step import StepContext, adversarial_step
from cgan_core.version import __version__


class TrainingInterrupted(CganRuntimeError):
    """SIGINT/SIGTERM stopped training after a checkpoint was written."""

    exit_code = 130


class TrainingDiverged(CganRuntimeError):
    """A loss became NaN or infinite; the last good checkpoint was left intact."""


def resolve_device(name: str) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a device, with a clear error if unavailable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device '{name}' was asked for but CUDA is not available; use --device cpu or auto")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def rng_state() -> dict[str, Any]:
    """Every global RNG state, in checkpointable form."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], [int(v) for v in np_state[1]], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def config_fingerprint(config: RunConfig) -> str:
    """Hash of the parts of the config that change the training trajectory."""
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def build_optimizer(kind: str, params: Iterable[nn.Parameter], lr: float, train: Any) -> torch.optim.Optimizer:
    """Create an optimiser from the ``train`` section's settings."""
    params = list(params)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(train.betas), weight_decay=train.weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(train.betas), weight_decay=train.weight_decay)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=train.weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=train.weight_decay)
    raise UsageError(f"unknown optimizer '{kind}'; valid: adam, adamw, rmsprop, sgd")


class Trainer:
    """Trains a :class:`GANModel` through its phases.

    Args:
        model: The model (already built, on any device).
        data: Training data.
        config: The resolved run config.
        loss: Loss pair from the registry.
        run: Run directory to write to (``None``: train in memory only, e.g. in tests).
        modality: Modality spec, for preview writers.
        callbacks: Extra callbacks (progress bars, evaluation, ...).
        device: Training device (default: from ``train.device``).
    """

    def __init__(
        self,
        model: GANModel,
        data: LoadedData,
        config: RunConfig,
        loss: LossSpec,
        run: Optional[RunDir] = None,
        modality: Optional[ModalitySpec] = None,
        callbacks: Sequence[Callback] = (),
        device: Optional[torch.device] = None,
    ) -> None:
        self.config = config
        self.train_config = config.train
        self.device = device or resolve_device(self.train_config.device)
        self.model = model.to(self.device)
        self.data = data
        self.loss = loss
        self.run = run
        self.modality = modality
        self.rank, self.world_size = _distributed_position()
        self.is_main = self.rank == 0
        self.callbacks: list[Callback] = list(callbacks)
        if run is not None and self.is_main:
            self.callbacks.insert(0, MetricsLogger(run.metrics_path, self.train_config.log_every))
            if self.train_config.tensorboard:
                self.callbacks.insert(1, TensorBoardLogger(
                    run.tensorboard, self.train_config.log_every,
                    modality.log_preview if modality else None, data.info))
        self.optimizers = self._build_optimizers()
        self.ema = EMA(model.generator, self.train_config.ema_decay, self.train_config.ema_start) \
            if self.train_config.ema_decay > 0 else None
        self.order = SeededBatchOrder(len(data), self.train_config.batch_size, self.train_config.seed,
                                      rank=self.rank, world_size=self.world_size)
        amp = self.train_config.amp and self.device.type == "cuda"
        penalty, weight = self._penalty()
        self.wrapped = self._wrap_distributed()
        self.gradient_sync = distributed.GradientSync(self.optimizers, self.wrapped) if self.world_size > 1 else None
        if self.rank > 0:  # rank 0 keeps the run's seed; the others draw different noise
            seed_everything(distributed.rank_seed(self.train_config.seed, self.rank), self.train_config.deterministic)
        self._rank_rng: Optional[tuple[int, list[Any]]] = None  # (step, every rank's RNG state)
        self.context = StepContext(
            model=self.model, config=config, loss=loss, optimizers=self.optimizers, device=self.device,
            data=data, batches=BatchStream(data.dataset, self.order),
            amp_dtype=torch.bfloat16 if amp else None, penalty=penalty, penalty_weight=weight,
            wrapped=self.wrapped, world_size=self.world_size, rank=self.rank,
            gradient_sync=self.gradient_sync,
        )
        self.phases: list[Phase] = self.model.phases(self.train_config)
        self.step = 0
        self.phase_index = 0
        self.phase_step = 0
        self.completed_phase_steps = 0  # steps the phase before ``phase_index`` ran when it ended
        self.last_checkpoint: Optional[str] = None
        self.last_logs: dict[str, float] = {}
        self._stop_signal: Optional[int] = None
        self.is_last_step = False

    # --- set-up ------------------------------------------------------------------------------
    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        custom = self.model.configure_optimizers(self.train_config)
        if custom is not None:
            return dict(custom)
        train = self.train_config
        optimizers = {}
        for name, params in self.model.optimizer_groups().items():
            lr = train.lr_d if name == "discriminator" else train.lr_g
            optimizers[name] = build_optimizer(train.optimizer, params, lr, train)
        return optimizers

    def _penalty(self) -> tuple[Any, float]:
        name = self.train_config.penalty
        if name not in PENALTIES:
            raise UsageError(f"unknown penalty '{name}'; valid: {', '.join(PENALTIES)}")
        if PENALTIES[name] is not None:
            return PENALTIES[name], self.train_config.penalty_weight
        if self.loss.penalty is not None:
            return self.loss.penalty, self.loss.default_penalty_weight
        return None, 0.0

    def _wrap_distributed(self) -> dict[str, nn.Module]:
        if self.world_size <= 1:
            return {}
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        wrapped = {}
        for name in ("generator", "discriminator"):
            module = getattr(self.model, name)
            if any(p.requires_grad for p in module.parameters()):
                wrapped[name] = DistributedDataParallel(module, device_ids=device_ids, broadcast_buffers=False)
        if type(self.model).after_discriminator_step is not GANModel.after_discriminator_step:
            # Clipping (TGAN) reads batch-norm statistics, which differ per rank without buffer
            # broadcasts: average them first so every rank clips to the same weights.
            clip = self.model.after_discriminator_step

            def synced_after_discriminator_step(step: int) -> None:
                distributed.average_buffers(self.model.discriminator)
                clip(step)

            self.model.after_discriminator_step = synced_after_discriminator_step  # type: ignore[method-assign]
        return wrapped

    @property
    def phase_name(self) -> str:
        """Name of the phase being run."""
        if self.phase_index < len(self.phases):
            return self.phases[self.phase_index].name
        return self.phases[-1].name if self.phases else ""

    @property
    def total_steps(self) -> int:
        """Steps over all phases, with the ``max_steps`` cap of multi-phase models applied."""
        total = sum(max(0, p.steps) for p in self.phases)
        cap = self.train_config.max_steps
        return min(total, cap) if cap and cap > 0 and len(self.phases) > 1 else total

    @property
    def sample_generator(self) -> nn.Module:
        """The generator used for previews and evaluation (the EMA copy when enabled)."""
        return self.ema.shadow if self.ema is not None else self.model.generator

    # --- state -------------------------------------------------------------------------------
    def state_payload(self) -> dict[str, Any]:
        """The whole training state as nested dicts of tensors and JSON values."""
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "trainer": {
                "step": self.step,
                "phase_index": self.phase_index,
                "phase_step": self.phase_step,
                "completed_phase_steps": self.completed_phase_steps,
                "order": self.order.state_dict(),
                "step_state": self.context.state,
            },
            "rng": rng_state(),
            "rng_ranks": self._rank_rng[1] if self._rank_rng is not None and self._rank_rng[0] == self.step else None,
            "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks},
            "extra": self.model.extra_state_tensors(),
        }

    def load_payload(self, payload: Mapping[str, Any]) -> None:
        """Restore :meth:`state_payload` output."""
        self.model.load_state_dict(payload["model"])
        if self.ema is not None and payload.get("ema") is not None:
            self.ema.load_state_dict(payload["ema"])
        for name, state in payload["optimizers"].items():
            if name in self.optimizers:
                self.optimizers[name].load_state_dict(state)
        trainer = payload["trainer"]
        self.step = int(trainer["step"])
        self.phase_index = int(trainer["phase_index"])
        self.phase_step = int(trainer["phase_step"])
        self._reopen_lengthened_phase(trainer)
        self.order.load_state_dict(trainer["order"])
        self.context.state = dict(trainer.get("step_state") or {})
        callback_states = payload.get("callbacks") or {}
        for cb in self.callbacks:
            if cb.name in callback_states:
                cb.load_state_dict(callback_states[cb.name])
        if payload.get("extra"):
            self.model.load_extra_state_tensors(payload["extra"])
        self._restore_rng(payload)

    def _reopen_lengthened_phase(self, trainer: Mapping[str, Any]) -> None:
        # A run resumed with a longer last phase (--resume --force --max-steps N, or more
        # adversarial iterations) continues that phase rather than finding every phase done.
        if self.phase_step or not self.phase_index or "completed_phase_steps" not in trainer:
            return
        previous = self.phase_index - 1
        done = int(trainer["completed_phase_steps"])
        if previous < len(self.phases) and done < self.phases[previous].steps:
            self.phase_index, self.phase_step = previous, done

    def _restore_rng(self, payload: Mapping[str, Any]) -> None:
        # Each rank continues its own random stream when the number of processes is unchanged;
        # a rank that did not exist when the checkpoint was taken gets a seed derived from the
        # run's seed, its rank and the step.
        ranks = payload.get("rng_ranks") or [payload["rng"]]
        if self.rank < len(ranks):
            set_rng_state(ranks[self.rank])
        else:
            seed_everything(distributed.rank_seed(self.train_config.seed + self.step, self.rank))

    def sync_for_checkpoint(self) -> None:
        """Collective part of a checkpoint, run by every rank just before :meth:`save_checkpoint`:
        batch-norm statistics are averaged over ranks and every rank's RNG state is gathered."""
        if self.world_size <= 1:
            return
        distributed.average_buffers(self.model)
        if self.ema is not None:
            distributed.average_buffers(self.ema.shadow)
        self._rank_rng = (self.step, distributed.all_gather_object(rng_state()))

    def save_checkpoint(self, name: Optional[str] = None, metrics: Optional[Mapping[str, float]] = None) -> Optional[str]:
        """Write a checkpoint (rank 0 only) and point ``latest`` at it."""
        if self.run is None or not self.is_main:
            return None
        name = name or ckpt.step_dir_name(self.step)
        meta = {
            "step": self.step, "phase": self.phase_name, "cgan_version": __version__,
            "config_fingerprint": config_fingerprint(self.config),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "metrics": {k: float(v) for k, v in (metrics or self.last_logs).items() if math.isfinite(float(v))},
            "has_ema": self.ema is not None,
        }
        ckpt.write_checkpoint(self.run.checkpoints, name, self.state_payload(), meta)
        if name.startswith("step-"):
            ckpt.set_latest(self.run.checkpoints, name)
            ckpt.prune_checkpoints(self.run.checkpoints, self.train_config.keep_last)
            self.last_checkpoint = name
            self.run.update_info(step=self.step, phase=self.phase_name, latest_checkpoint=name)
        for cb in self.callbacks:
            cb.on_checkpoint(self, name)
        return name

    def resume(self) -> Optional[str]:
        """Load the newest good checkpoint of the run; return its name (``None`` if there is none)."""
        if self.run is None:
            return None
        if self.is_main:  # the other ranks only read
            ckpt.clean_temporaries(self.run.checkpoints)
        checkpoint = ckpt.load_latest_good(self.run.checkpoints)
        if checkpoint is None:
            return None
        self.load_payload(checkpoint.restore())
        self.last_checkpoint = checkpoint.name
        if self.is_main:
            truncate_jsonl_after(self.run.metrics_path, self.step)
        return checkpoint.name

    # --- samples -----------------------------------------------------------------------------
    def preview_samples(self) -> torch.Tensor:
        """Samples from a fixed seed, so previews over training are comparable."""
        generator = torch.Generator().manual_seed(self.train_config.seed + 7919)
        return self.model.sample(self.train_config.n_preview, generator=generator,
                                 generator_module=self.sample_generator)

    def write_preview(self) -> Optional[Path]:
        """Write the preview for the current step into ``samples/``."""
        if not self.is_main:
            return None
        samples = self.preview_samples()
        path = None
        if self.run is not None and self.modality is not None:
            path = self.modality.write_preview(samples, self.run.sample_path(self.step, ""), self.data.info)
        for cb in self.callbacks:
            cb.on_samples(self, samples, path)
        return path

    # --- the loop ----------------------------------------------------------------------------
    def _handle_signal(self, signum: int, _frame: Any) -> None:
        self._stop_signal = signum

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self._handle_signal)
        return previous

    def fit(self, resume: bool = False) -> dict[str, float]:
        """Run every remaining phase; returns the last step's logs.

        Raises:
            TrainingDiverged: a loss became NaN/Inf (the last good checkpoint is kept).
            TrainingInterrupted: SIGINT/SIGTERM arrived (a checkpoint was written first).
        """
        if resume:
            self.resume()
        previous = self._install_signal_handlers()
        try:
            if self.run is not None and self.is_main:
                self.run.update_info(status="running", pid=os.getpid())
            for cb in self.callbacks:
                cb.on_train_start(self)
            self._run_phases()
            self.sync_for_checkpoint()
            if self.is_main:
                self.write_preview()
                self.save_checkpoint()
                for cb in self.callbacks:
                    cb.on_train_end(self)
                if self.run is not None:
                    self.run.update_info(status="completed", step=self.step)
            distributed.barrier()
            return self.last_logs
        except TrainingInterrupted:
            if self.run is not None and self.is_main:
                self.run.update_info(status="interrupted", step=self.step)
            raise
        except TrainingDiverged:
            if self.run is not None and self.is_main:
                self.run.update_info(status="diverged", step=self.step)
            raise
        except BaseException:
            if self.run is not None and self.is_main:
                self.run.update_info(status="failed", step=self.step)
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for cb in self.callbacks:
                cb.on_close(self)
            self._release_distributed()

    def _release_distributed(self) -> None:
        # DDP's reducer holds threads of the process group; one that outlives the group's
        # teardown can abort the process at exit ("terminate called without an active exception").
        if self.world_size <= 1:
            return
        if self.gradient_sync is not None:
            self.gradient_sync.remove()
        self.wrapped = {}
        self.context.wrapped = {}

    def _run_phases(self) -> None:
        train = self.train_config
        total = self.total_steps
        while self.phase_index < len(self.phases):
            phase = self.phases[self.phase_index]
            step_fn = phase.step or adversarial_step
            self.context.phase = phase.name
            if self.world_size > 1:  # weights changed outside optimiser steps must agree across ranks
                distributed.broadcast_module(self.model)
            for cb in self.callbacks:
                cb.on_phase_start(self, phase.name, phase.steps)
            while self.phase_step < phase.steps and self.step < total:
                self.context.step = self.step
                self.context.phase_step = self.phase_step
                logs = dict(step_fn(self.context))
                stop_requested = self._stop_signal is not None
                if self.world_size > 1:  # one all-reduce: mean logs, and a stop that reached any rank
                    logs, (stops,) = distributed.reduce_logs(logs, [float(stop_requested)])
                    stop_requested = stops > 0
                self._check_finite(logs)
                self.step += 1
                self.phase_step += 1
                if self.ema is not None and phase.step is None:
                    self.ema.update(self.model.generator, self.step)
                self.last_logs = logs
                self.is_last_step = self.step >= total
                for cb in self.callbacks:
                    cb.on_step_end(self, logs)
                if self.is_last_step:
                    break
                if train.sample_every and self.step % train.sample_every == 0:
                    self.write_preview()
                if train.checkpoint_every and self.step % train.checkpoint_every == 0:
                    self.sync_for_checkpoint()
                    self.save_checkpoint()
                if stop_requested:
                    self.sync_for_checkpoint()
                    name = self.save_checkpoint()
                    distributed.barrier()  # no rank exits (and makes torchrun stop the job) mid-write
                    raise TrainingInterrupted(
                        f"stopped by signal {self._stop_signal or 'on another rank'} at step {self.step}; checkpoint "
                        f"'{name}' written; continue with --resume"
                    )
            if self.step >= total and self.phase_step < phase.steps:
                break
            self.completed_phase_steps = self.phase_step
            self.phase_index += 1
            self.phase_step = 0

    def _check_finite(self, logs: Mapping[str, float]) -> None:
        bad = {k: v for k, v in logs.items() if not math.isfinite(float(v))}
        if bad:
            key, value = next(iter(bad.items()))
            where = f"the last good checkpoint '{self.last_checkpoint}' is intact" if self.last_checkpoint \
                else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"training diverged at step {self.step + 1} of phase '{self.phase_name}' ({key}={value}); "
                f"{where}; lower train.lr_g/train.lr_d or try --set train.loss=hinge"
            )


def _distributed_position() -> tuple[int, int]:
    return distributed.current_position()
