"""torch.distributed for cgan: set-up from torchrun's environment and the collectives training needs.

``cgan run`` works unchanged under ``torchrun``: :func:`init_distributed` reads the variables
torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), picks
NCCL for CUDA devices and gloo for the CPU (``CGAN_DIST_BACKEND`` overrides the choice), and pins
each process to its local GPU. The rest of this module is what the trainer uses to keep the ranks
in step:

- :func:`rank_seed`: rank 0 keeps the run's seed (so a 1-process run is an ordinary run); the
  other ranks get distinct, reproducible seeds so their latent noise differs.
- :class:`GradientSync`: gradients are averaged across ranks before every optimiser step. The
  DDP-wrapped modules average them during the backward pass (overlapping communication); a
  model's own step function that calls the bare modules (SeqGAN's policy gradient) is caught by
  an optimiser pre-step hook, so no step function can leave the ranks apart.
- :func:`reduce_logs`: one all-reduce per step averages the logged values and sums control flags
  (a stop signal that reached one rank), so the NaN guard and interruption act on every rank at
  the same step.
- :func:`average_buffers` / :func:`broadcast_module`: batch-norm statistics and weights changed
  outside optimiser steps (word vectors copied into embeddings) are made equal across ranks.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypeVar

import torch
from torch import nn

from cgan_core.errors import CganRuntimeError, UsageError

T = TypeVar("T")
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) job.

    Attributes:
        rank: Global rank (0 = the process that writes).
        world_size: Number of processes.
        local_rank: Rank on this node (selects the GPU).
        backend: ``"gloo"``, ``"nccl"`` or ``None`` without a process group.
        device: The device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Whether this process writes run files, checkpoints and database rows."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1


def launched_by_torchrun(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether the process was started by ``torchrun`` (or another launcher setting its variables)."""
    environ = os.environ if environ is None else environ
    return all(name in environ for name in TORCHRUN_VARIABLES)


def env_position(environ: Optional[Mapping[str, str]] = None) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the launcher's variables (``(0, 1, 0)`` without one).

    Raises:
        UsageError: the variables are present but not integers, or the rank is out of range.
    """
    environ = os.environ if environ is None else environ
    if not launched_by_torchrun(environ):
        return 0, 1, 0
    try:
        rank, world, local = (int(environ[name]) for name in TORCHRUN_VARIABLES)
    except ValueError:
        raise UsageError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (they are set by torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise UsageError(f"RANK={rank} is not within WORLD_SIZE={world}; start the job with torchrun")
    return rank, world, local


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return (torch.distributed.is_available() and torch.distributed.is_initialized()
            and torch.distributed.get_world_size() > 1)


def current_position() -> tuple[int, int]:
    """``(rank, world_size)`` of the active process group, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _device_for(name: str, local_rank: int, distributed: bool) -> torch.device:
    from cgan_core.trainer import resolve_device

    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        # One GPU per process: torchrun's LOCAL_RANK picks it (a 1-process run keeps cuda:0).
        device = torch.device("cuda", local_rank if distributed else torch.cuda.current_device())
    return device


def init_distributed(device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> DistributedContext:
    """Join the process group torchrun prepared, or describe a single process.

    Args:
        device: ``auto|cpu|cuda|cuda:N``; under torchrun ``auto``/``cuda`` mean the local rank's GPU.
        timeout_s: How long a collective may wait for a missing rank before failing.

    Returns:
        This process's :class:`DistributedContext` (rank 0 of 1 when not launched by torchrun).

    Raises:
        UsageError: a CUDA device was asked for and there are fewer GPUs than local ranks.
    """
    rank, world, local = env_position()
    distributed = world > 1
    resolved = _device_for(device, local, distributed)
    if not distributed:
        return DistributedContext(device=resolved)
    if resolved.type == "cuda":
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UsageError(f"local rank {local} needs GPU {resolved.index} but this node has "
                             f"{torch.cuda.device_count()}; lower --nproc-per-node")
        torch.cuda.set_device(resolved)
    _stop_with_launcher()
    backend = os.environ.get("CGAN_DIST_BACKEND") or ("nccl" if resolved.type == "cuda" else "gloo")
    if not torch.distributed.is_initialized():
        kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(seconds=timeout_s)}
        if backend == "nccl":
            kwargs["device_id"] = resolved  # binds the communicator eagerly (no first-collective hang)
        torch.distributed.init_process_group(**kwargs)
    return DistributedContext(rank, world, local, backend, resolved)


def _stop_with_launcher() -> None:
    """Ask Linux for SIGTERM when torchrun's agent dies.

    torchrun starts workers in their own sessions, so a killed agent would leave them training on
    as orphans that race a resumed run for the same directory. With the signal they stop at the
    next step like an interrupted run: every rank agrees, rank 0 writes a checkpoint, all exit.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not essential: torchrun still stops healthy workers itself
        return


def teardown_distributed() -> None:
    """Leave the process group, if one was joined (safe to call more than once)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gc.collect()  # free unreachable DDP wrappers while their process group still exists
        torch.distributed.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``: the run's seed on rank 0, a distinct derived seed elsewhere."""
    if rank == 0:
        return int(seed)
    digest = hashlib.sha256(f"cgan-rank:{int(seed)}:{int(rank)}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def _collective_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        torch.distributed.barrier()


def broadcast_object(value: T, src: int = 0) -> T:
    """Rank ``src``'s ``value`` on every rank (picklable values that came from this job only)."""
    if not is_distributed():
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order."""
    if not is_distributed():
        return [value]
    out: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(out, value)
    return out


def run_on_main(function: Callable[[], T]) -> Optional[T]:
    """Run ``function`` on rank 0 only and raise its failure on every rank.

    Used for work with side effects (creating the run directory): the other ranks wait, and if
    rank 0 fails they fail too (a usage error with the same message and exit code) instead of
    waiting at the next collective until the timeout.

    Returns:
        ``function()``'s result on rank 0, ``None`` elsewhere.
    """
    if not is_distributed():
        return function()
    if current_position()[0] == 0:
        try:
            result = function()
        except BaseException as exc:
            kind = "usage" if isinstance(exc, UsageError) else "runtime"
            broadcast_object((kind, str(exc) or type(exc).__name__))
            raise
        broadcast_object(("ok", ""))
        return result
    kind, message = broadcast_object(("", ""))
    if kind == "usage":
        raise UsageError(message)
    if kind == "runtime":
        raise CganRuntimeError(f"rank 0 failed: {message}")
    return None


def reduce_logs(logs: Mapping[str, float], flags: Sequence[float] = ()) -> tuple[dict[str, float], list[float]]:
    """Average logged values over ranks and sum ``flags``, in one all-reduce.

    Keys are taken in sorted order; every rank must log the same keys (they run the same code).
    A NaN on any rank makes the average NaN, so every rank's NaN guard fires at the same step.

    Returns:
        ``(averaged logs, summed flags)``; unchanged in a single process.
    """
    if not is_distributed():
        return dict(logs), [float(f) for f in flags]
    keys = sorted(logs)
    values = [float(logs[k]) for k in keys] + [float(f) for f in flags]
    tensor = torch.tensor(values + [float(len(keys))], dtype=torch.float64, device=_collective_device())
    torch.distributed.all_reduce(tensor)
    world = torch.distributed.get_world_size()
    totals = tensor.cpu().tolist()
    if int(round(totals[-1])) != len(keys) * world:
        raise CganRuntimeError(f"ranks logged different keys at the same step (this rank: {', '.join(keys)}); "
                               "a step function must log the same names on every rank")
    index = {k: i for i, k in enumerate(keys)}
    averaged = {k: totals[index[k]] / world for k in logs}  # the step function's order, for the log
    return averaged, totals[len(keys):-1]


def _float_buffers(module: nn.Module) -> list[torch.Tensor]:
    return [b for b in module.buffers() if torch.is_floating_point(b)]


@torch.no_grad()
def average_buffers(module: nn.Module) -> None:
    """Average ``module``'s floating-point buffers (batch-norm statistics) over ranks, in place."""
    if not is_distributed():
        return
    buffers = _float_buffers(module)
    if not buffers:
        return
    flat = torch.cat([b.detach().reshape(-1).to(torch.float64) for b in buffers])
    torch.distributed.all_reduce(flat)
    flat /= torch.distributed.get_world_size()
    offset = 0
    for buffer in buffers:
        count = buffer.numel()
        buffer.copy_(flat[offset:offset + count].view_as(buffer).to(buffer.dtype))
        offset += count


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every rank's ``module``."""
    if not is_distributed():
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        torch.distributed.broadcast(tensor.data, src=src)


@torch.no_grad()
def average_gradients(parameters: Iterable[nn.Parameter]) -> int:
    """Average the ``.grad`` of ``parameters`` over ranks in one flattened all-reduce.

    Returns:
        How many gradients were averaged.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads or not is_distributed():
        return 0
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= torch.distributed.get_world_size()
    offset = 0
    for grad in grads:
        count = grad.numel()
        grad.copy_(flat[offset:offset + count].view_as(grad))
        offset += count
    return len(grads)


class GradientSync:
    """Makes every optimiser step see gradients averaged over all ranks.

    DDP's communication hook records which parameters it averaged during the backward pass; a
    pre-step hook on each optimiser averages the rest (gradients from a step function that used
    the bare modules, or from a module DDP does not wrap). Every rank takes the same decisions
    because every rank runs the same code on the same model.

    Args:
        optimizers: Optimiser name -> optimiser.
        wrapped: Module name -> DistributedDataParallel wrapper.
    """

    def __init__(self, optimizers: Mapping[str, torch.optim.Optimizer], wrapped: Mapping[str, nn.Module]) -> None:
        self.synced: set[int] = set()
        self.manual_syncs = 0
        self._handles = [opt.register_step_pre_hook(self._before_step) for opt in optimizers.values()]
        for module in wrapped.values():
            module.register_comm_hook(self, GradientSync._ddp_hook)  # type: ignore[operator]

    @staticmethod
    def _ddp_hook(state, bucket):  # type: ignore[no-untyped-def]  # DDP rejects string annotations here
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        state.synced.update(id(p) for p in bucket.parameters())
        return allreduce_hook(None, bucket)  # type: ignore[arg-type]

    def sync(self, optimizer: torch.optim.Optimizer) -> None:
        """Average now the gradients of ``optimizer``'s parameters that DDP has not averaged.

        Called between ``backward`` and gradient clipping (see :meth:`cgan_core.StepContext.optimize`);
        the pre-step hook then finds nothing left to average.
        """
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        pending = [p for p in params if id(p) not in self.synced]
        if pending:
            self.manual_syncs += 1
            average_gradients(pending)
        self.synced.update(id(p) for p in pending)

    def _before_step(self, optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        self.sync(optimizer)
        for group in optimizer.param_groups:
            for p in group["params"]:
                self.synced.discard(id(p))

    def remove(self) -> None:
        """Detach the optimiser hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
