"""Training callbacks: per run, stateful, checkpointed.

The core ships the JSONL metrics logger and the TensorBoard writer; the CLI adds a progress bar
and evaluation adds its own. A callback's ``state_dict`` goes into every checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.trainer import Trainer


class Callback:
    """Base class; every hook is optional."""

    name = "callback"

    def on_train_start(self, trainer: "Trainer") -> None:
        """Training (or a resumed run) starts."""

    def on_phase_start(self, trainer: "Trainer", phase: str, steps: int) -> None:
        """A phase starts (or resumes)."""

    def on_step_end(self, trainer: "Trainer", logs: Mapping[str, float]) -> None:
        """A step finished; ``trainer.step`` is the number of steps done."""

    def on_samples(self, trainer: "Trainer", samples: Any, path: Optional[Path]) -> None:
        """Preview samples were generated (and written to ``path``)."""

    def on_checkpoint(self, trainer: "Trainer", name: str) -> None:
        """A checkpoint was written."""

    def on_train_end(self, trainer: "Trainer") -> None:
        """Training ended normally."""

    def on_close(self, trainer: "Trainer") -> None:
        """Training stopped for any reason (normal end, error, interruption)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state to checkpoint."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


def _finite(value: float) -> Any:
    return value if math.isfinite(value) else str(value)


class MetricsLogger(Callback):
    """Appends ``{"step", "phase", ...logs}`` lines to ``metrics.jsonl`` every ``every`` steps."""

    name = "metrics"

    def __init__(self, path: Path, every: int) -> None:
        self.path = Path(path)
        self.every = max(1, every)
        self._started = time.perf_counter()
        self._last_step = 0

    def on_train_start(self, trainer: "Trainer") -> None:
        self._started = time.perf_counter()
        self._last_step = trainer.step

    def on_step_end(self, trainer: "Trainer", logs: Mapping[str, float]) -> None:
        if trainer.step % self.every and not trainer.is_last_step:
            return
        elapsed = time.perf_counter() - self._started
        record = {"step": trainer.step, "phase": trainer.phase_name}
        record.update({k: _finite(float(v)) for k, v in logs.items()})
        record["steps_per_s"] = round((trainer.step - self._last_step) / elapsed, 4) if elapsed > 0 else None
        self.write(record)
        self._started = time.perf_counter()
        self._last_step = trainer.step

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one JSON line."""
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def truncate_jsonl_after(path: Path, step: int) -> None:
    """Drop lines logged after ``step`` (a resumed run will log those steps again)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if int(record.get("step", 0)) <= step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


class TensorBoardLogger(Callback):
    """Scalars every ``every`` steps and preview samples into TensorBoard event files."""

    name = "tensorboard"

    def __init__(self, log_dir: Path, every: int, log_preview: Any = None, data_info: Any = None) -> None:
        self.log_dir = Path(log_dir)
        self.every = max(1, every)
        self.log_preview = log_preview
        self.data_info = data_info or {}
        self._writer: Any = None

    @property
    def writer(self) -> Any:
        """The SummaryWriter, created on first use (tensorboard is imported lazily)."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        return self._writer

    def on_step_end(self, trainer: "Trainer", logs: Mapping[str, float]) -> None:
        if trainer.step % self.every and not trainer.is_last_step:
            return
        for key, value in logs.items():
            self.writer.add_scalar(f"{trainer.phase_name}/{key}", float(value), trainer.step)

    def on_samples(self, trainer: "Trainer", samples: Any, path: Optional[Path]) -> None:
        if self.log_preview is not None:
            self.log_preview(self.writer, "samples", samples, trainer.step, self.data_info)

    def on_close(self, trainer: "Trainer") -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


class StepTimer(Callback):
    """Wall and CPU time from the end of ``warmup`` steps to the last step (for benchmarks).

    ``end - start`` is the wall time of the timed steps, ``cpu_end - cpu_start`` this process's
    CPU time over them (steadier than wall time on a shared machine).
    """

    name = "step-timer"

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = self.cpu_start = self.cpu_end = 0.0

    def on_step_end(self, trainer: "Trainer", logs: Mapping[str, float]) -> None:
        if trainer.step == self.warmup:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()
        self.end, self.cpu_end = time.perf_counter(), time.process_time()
