"""Progress display for ``cgan run``: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional

from cgan_core.callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.trainer import Trainer


def _format_logs(logs: Mapping[str, float], keys: int = 4) -> str:
    return " ".join(f"{k}={float(v):.4g}" for k, v in list(logs.items())[:keys])


class ProgressCallback(Callback):
    """Shows step, total, losses and steps/s."""

    name = "progress"

    def __init__(self, interactive: Optional[bool] = None, every: int = 50) -> None:
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.every = max(1, every)
        self._progress: Any = None
        self._task: Any = None
        self._started = 0.0
        self._first_step = 0

    def on_train_start(self, trainer: "Trainer") -> None:
        self._started = time.perf_counter()
        self._first_step = trainer.step
        if self.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.fields[phase]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[logs]}"), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=trainer.total_steps, completed=trainer.step,
                                                 phase=trainer.phase_name, logs="", rate="")

    def _rate(self, trainer: "Trainer") -> float:
        elapsed = time.perf_counter() - self._started
        return (trainer.step - self._first_step) / elapsed if elapsed > 0 else 0.0

    def on_step_end(self, trainer: "Trainer", logs: Mapping[str, float]) -> None:
        rate = self._rate(trainer)
        if self._progress is not None:
            self._progress.update(self._task, completed=trainer.step, phase=trainer.phase_name,
                                  logs=_format_logs(logs), rate=f"{rate:.2f} steps/s")
        elif trainer.step % self.every == 0 or trainer.is_last_step:
            print(f"[{trainer.phase_name}] step {trainer.step}/{trainer.total_steps} {_format_logs(logs)} "
                  f"{rate:.2f} steps/s", file=sys.stderr, flush=True)

    def on_close(self, trainer: "Trainer") -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
