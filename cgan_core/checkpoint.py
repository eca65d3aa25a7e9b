"""Atomic checkpoints of the whole training state: safetensors for tensors, JSON for the rest.

A checkpoint is a directory ``checkpoints/step-00000060/`` holding ``tensors.safetensors`` and
``state.json``. Nested state (optimiser states, RNG states, callback states) is flattened: every
tensor goes to safetensors under a path-like key and is replaced in the JSON by a reference, so
loading never unpickles anything and a checkpoint from a stranger cannot run code.

Writes are atomic: files go to a hidden temporary directory, are fsynced, and the directory is
renamed into place; ``latest`` is a small text file replaced atomically. ``state.json`` records
the sha256 of the tensor file, so a truncated or corrupted checkpoint is detected on load and
the loader falls back to the newest good one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_file, save_file

from cgan_core.errors import CganRuntimeError
from cgan_core.fileio import fsync_dir, fsync_file, atomic_write_text, sha256_file

TENSOR_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
LATEST_FILE = "latest"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d+)$")


# --- flattening ---------------------------------------------------------------------------------
def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor inside ``obj`` with ``{"__tensor__": key}``, collecting the tensors.

    Dict keys are stored as strings with their type so integer keys (optimiser state) survive.
    """
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            items.append([k if isinstance(k, (str, int)) else str(k), flatten_state(v, f"{prefix}/{k}", tensors)])
        return {"__dict__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at '{prefix}' in a checkpoint")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: unflatten_state(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        if "__float__" in obj:
            return float(obj["__float__"])
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


# --- checkpoints --------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A loaded checkpoint: its name, JSON state and tensors."""

    name: str
    path: Path
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    def restore(self) -> dict[str, Any]:
        """The nested training state with tensors put back in place."""
        return unflatten_state(self.state["payload"], self.tensors)

    @property
    def step(self) -> int:
        """Global step the checkpoint was taken at."""
        return int(self.state.get("step", 0))


def step_dir_name(step: int) -> str:
    """Directory name of the checkpoint taken at ``step``."""
    return f"step-{step:08d}"


def write_checkpoint(directory: Path, name: str, payload: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``payload`` (nested dicts/lists/tensors/scalars) atomically as ``directory/name``.

    Args:
        directory: The run's ``checkpoints/`` directory.
        name: Checkpoint directory name, e.g. ``step-00000060`` or ``best``.
        payload: The training state.
        meta: Small JSON facts stored beside it (step, phase, metrics, config hash).

    Returns:
        The checkpoint directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    flat = flatten_state(payload, "s", tensors)
    tmp = directory / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    tensor_path = tmp / TENSOR_FILE
    save_file(tensors, str(tensor_path), metadata={"format": "cgan-checkpoint"})
    fsync_file(tensor_path)
    state = dict(meta)
    state.update({"format_version": FORMAT_VERSION, "tensor_sha256": sha256_file(tensor_path), "payload": flat})
    state_path = tmp / STATE_FILE
    with open(state_path, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    fsync_dir(tmp)
    final = directory / name
    if final.exists():
        # Replace an existing checkpoint of the same name (e.g. ``best``) without a window in
        # which neither exists: move the old one aside first, then drop it.
        old = directory / f".old-{name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(directory)
    return final


def set_latest(directory: Path, name: str) -> None:
    """Point ``checkpoints/latest`` at a checkpoint name."""
    atomic_write_text(Path(directory) / LATEST_FILE, name + "\n")


def read_checkpoint(path: Path) -> Checkpoint:
    """Load and verify one checkpoint directory.

    Raises:
        CganRuntimeError: if a file is missing, truncated or does not match its recorded hash.
    """
    path = Path(path)
    state_path, tensor_path = path / STATE_FILE, path / TENSOR_FILE
    if not state_path.is_file() or not tensor_path.is_file():
        raise CganRuntimeError(f"checkpoint '{path}' is incomplete (missing {STATE_FILE} or {TENSOR_FILE})")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CganRuntimeError(f"checkpoint '{path}' has a corrupt {STATE_FILE}: {exc}") from None
    expected = state.get("tensor_sha256")
    if expected and sha256_file(tensor_path) != expected:
        raise CganRuntimeError(f"checkpoint '{path}' is corrupt: {TENSOR_FILE} does not match its sha256")
    try:
        tensors = load_file(str(tensor_path))
    except Exception as exc:
        raise CganRuntimeError(f"checkpoint '{path}' cannot be read: {exc}") from None
    return Checkpoint(path.name, path, state, tensors)


def list_step_checkpoints(directory: Path) -> list[Path]:
    """Step checkpoints in a directory, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_name(directory: Path) -> Optional[str]:
    """The name ``latest`` points at, if any."""
    pointer = Path(directory) / LATEST_FILE
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    return name or None


def load_latest_good(directory: Path, warn: bool = True) -> Optional[Checkpoint]:
    """Load the checkpoint ``latest`` points at, falling back to older good ones if it is bad.

    Returns:
        The newest loadable checkpoint, or ``None`` when the directory holds none.

    Raises:
        CganRuntimeError: when checkpoints exist but none of them can be loaded.
    """
    directory = Path(directory)
    candidates = list(reversed(list_step_checkpoints(directory)))
    pointed = latest_name(directory)
    if pointed and (directory / pointed).is_dir():
        candidates = [directory / pointed] + [c for c in candidates if c.name != pointed]
    errors = []
    for candidate in candidates:
        try:
            checkpoint = read_checkpoint(candidate)
        except CganRuntimeError as exc:
            errors.append(str(exc))
            if warn:
                print(f"warning: {exc}; trying an older checkpoint", file=sys.stderr)
            continue
        return checkpoint
    if errors:
        raise CganRuntimeError(f"no loadable checkpoint in '{directory}': {errors[0]}")
    return None


def resolve_checkpoint(directory: Path, name: Optional[str]) -> Checkpoint:
    """Load a checkpoint by name (``latest``, ``best``, ``step-N`` or a number), verified.

    Raises:
        CganRuntimeError: if the run has no checkpoint or the named one is unusable.
    """
    directory = Path(directory)
    if name in (None, "", "latest"):
        checkpoint = load_latest_good(directory)
        if checkpoint is None:
            raise CganRuntimeError(f"'{directory}' holds no checkpoint yet; train first with 'cgan run'")
        return checkpoint
    if name.isdigit():
        name = step_dir_name(int(name))
    path = directory / name
    if not path.is_dir():
        names = [p.name for p in list_step_checkpoints(directory)] + (["best"] if (directory / "best").is_dir() else [])
        raise CganRuntimeError(f"no checkpoint '{name}' in '{directory}'; available: {', '.join(names) or 'none'}")
    return read_checkpoint(path)


def prune_checkpoints(directory: Path, keep_last: int) -> None:
    """Delete the oldest step checkpoints beyond ``keep_last`` (never the one ``latest`` names)."""
    if keep_last <= 0:
        return
    steps = list_step_checkpoints(directory)
    pointed = latest_name(directory)
    for path in steps[: max(0, len(steps) - keep_last)]:
        if path.name != pointed:
            shutil.rmtree(path, ignore_errors=True)


def clean_temporaries(directory: Path) -> None:
    """Remove half-written temporary checkpoints left by a killed process."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.name.startswith((".tmp-", ".old-")):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
