"""Run directories: where a run's frozen config, checkpoints, samples and logs live.

Layout::

    RUN/
      config.yaml        resolved config, frozen at the start
      data_info.json     what the dataset said about itself (lets generate rebuild the model)
      run.json           status, step, times, data statistics
      checkpoints/       step-XXXXXXXX/ (atomic), best/, latest
      samples/           previews every train.sample_every steps
      metrics.jsonl      training logs
      tb/                TensorBoard event files
      eval/              evaluation results per checkpoint
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from cgan_core.fileio import atomic_write_text
from cgan_core.errors import UsageError


class RunDir:
    """Paths and small files of one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.yaml", doc="Frozen config.")
    data_info_path = property(lambda self: self.path / "data_info.json", doc="Dataset facts.")
    info_path = property(lambda self: self.path / "run.json", doc="Status and statistics.")
    checkpoints = property(lambda self: self.path / "checkpoints", doc="Checkpoint directory.")
    samples = property(lambda self: self.path / "samples", doc="Preview samples.")
    metrics_path = property(lambda self: self.path / "metrics.jsonl", doc="Training log.")
    tensorboard = property(lambda self: self.path / "tb", doc="TensorBoard logs.")
    eval_dir = property(lambda self: self.path / "eval", doc="Evaluation results.")

    def exists(self) -> bool:
        """Whether this directory already holds a run."""
        return self.config_path.is_file()

    @classmethod
    def open(cls, path: Path) -> "RunDir":
        """Open an existing run, or raise a usage error naming the path."""
        run = cls(path)
        if not run.path.is_dir():
            raise UsageError(f"run directory '{path}' does not exist")
        if not run.exists():
            raise UsageError(f"'{path}' is not a cgan run directory (no config.yaml); pass the --out of a 'cgan run'")
        return run

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Create the directory tree, refusing to clobber a run unless asked to.

        Raises:
            UsageError: if the directory holds a run and neither ``resume`` nor ``overwrite``.
        """
        if self.exists() and not (resume or overwrite):
            raise UsageError(
                f"'{self.path}' already holds a run; use --resume to continue it, "
                "--overwrite to replace it, or another --out"
            )
        if resume and not self.exists():
            raise UsageError(f"cannot --resume: '{self.path}' holds no run")
        if overwrite and self.exists() and not resume:
            for child in self.path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"--out '{self.path}' is a file, not a directory")
        for directory in (self.path, self.checkpoints, self.samples, self.eval_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def read_info(self) -> dict[str, Any]:
        """Contents of ``run.json`` (empty if absent)."""
        if not self.info_path.is_file():
            return {}
        try:
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}

    def update_info(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into ``run.json`` atomically (an id and timestamps are kept up to date)."""
        info = self.read_info()
        info.setdefault("id", uuid.uuid4().hex[:12])
        info.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        info.update(fields)
        info["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_text(self.info_path, json.dumps(info, indent=2))
        return info

    def write_data_info(self, data_info: dict[str, Any]) -> None:
        """Store the dataset facts the model was built from."""
        atomic_write_text(self.data_info_path, json.dumps(data_info))

    def read_data_info(self) -> dict[str, Any]:
        """Load the dataset facts the model was built from."""
        if not self.data_info_path.is_file():
            raise UsageError(f"run '{self.path}' has no data_info.json; it was not started by 'cgan run'")
        return json.loads(self.data_info_path.read_text(encoding="utf-8"))

    def sample_path(self, step: int, suffix: str) -> Path:
        """Path of the preview written at ``step``."""
        return self.samples / f"step-{step:08d}{suffix}"

    def latest_sample(self) -> Optional[Path]:
        """The most recent preview file, if any."""
        files = sorted(p for p in self.samples.glob("step-*") if p.is_file())
        return files[-1] if files else None
