"""Published network weights that metrics need: found locally, else downloaded once.

Standard metrics (FID's Inception-v3, FVD's I3D, ...) need weight files that cgan does not ship.
:func:`find_weights_file` looks in the places a user would put one (an explicit path from an
option or environment variable, the evaluation cache, torch hub's checkpoint folder) and
downloads the file into the cache only when none holds it. Offline (no network, or
``CGAN_OFFLINE=1``) the failure is one usage error that says where to get the file and how to
pass it.
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cgan_core.errors import UsageError

DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class WeightsSource:
    """Where a weights file comes from and how a user supplies it.

    Attributes:
        file_name: File name in the cache and in torch hub's checkpoint folder.
        url: Download address.
        option: The ``--option`` key that takes a path (``inception.weights``).
        env: The environment variable that takes a path (``CGAN_INCEPTION_WEIGHTS``).
        purpose: What needs the file, for error messages ("the FID Inception-v3 metrics").
        alternative: What works offline instead, for error messages.
    """

    file_name: str
    url: str
    option: str
    env: str
    purpose: str
    alternative: str = ""


def _torch_hub_checkpoints() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def candidate_paths(source: WeightsSource, explicit: Optional[str], cache_dir: Optional[Path]) -> list[Path]:
    """Places the file is looked for, most specific first."""
    paths = [Path(str(given)).expanduser() for given in (explicit, os.environ.get(source.env)) if given]
    if cache_dir is not None:
        paths.append(Path(cache_dir) / "weights" / source.file_name)
    paths.append(_torch_hub_checkpoints() / source.file_name)
    return paths


def download(url: str, target: Path) -> Optional[str]:
    """Download ``url`` to ``target`` through a ``.part`` file; returns an error text instead of raising."""
    if os.environ.get("CGAN_OFFLINE", "") not in ("", "0", "false"):
        return "CGAN_OFFLINE is set"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as handle:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                handle.write(chunk)
        partial.replace(target)  # a killed download never looks complete
        return None
    except Exception as exc:  # any network or disk failure becomes one line for the user
        partial.unlink(missing_ok=True)
        return f"{type(exc).__name__}: {exc}"


def find_weights_file(source: WeightsSource, explicit: Optional[str] = None,
                      cache_dir: Optional[Path] = None) -> Path:
    """The weights file: a given path, a cached or torch hub copy, else a fresh download.

    Args:
        source: The file and how it is supplied.
        explicit: A path given with ``--option`` (takes precedence over the environment).
        cache_dir: The evaluation cache; downloads go to ``cache_dir/weights``.

    Raises:
        UsageError: a given path does not exist, or no copy exists and the download failed.
    """
    given = explicit or os.environ.get(source.env)
    if given and not Path(str(given)).expanduser().is_file():
        raise UsageError(f"weights file '{given}' for {source.purpose} does not exist; pass the {source.file_name} file")
    for path in candidate_paths(source, explicit, cache_dir):
        if path.is_file():
            return path
    base = Path(cache_dir) if cache_dir is not None else _torch_hub_checkpoints()
    target = base / "weights" / source.file_name
    error = download(source.url, target)
    if error is not None:
        instead = f", or use {source.alternative}" if source.alternative else ""
        raise UsageError(
            f"{source.file_name} for {source.purpose} could not be downloaded ({error}); fetch "
            f"{source.url} on a connected machine and pass --option {source.option}=PATH or set "
            f"{source.env}=PATH{instead}"
        )
    return target
