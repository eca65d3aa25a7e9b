"""Point data: the generated ``ring`` and ``grid`` mixtures, and the user's own CSV or .npy files.

A loader returns :class:`cgan_core.LoadedData`: the samples in the modality's tensor format
(one float32 (2,) tensor per point) and ``info``, the JSON-able facts the model, the writers and
the metrics need. For the mixtures, ``info`` carries the mode centres and their standard
deviation, which is what the mode-collapse metrics measure against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from cgan_core import CganRuntimeError, DataRequest, LoadedData, SkipLog, TensorData, UsageError, tensor_fingerprint

from cgan_example_points.mixtures import GRID, RING, grid_centres, ring_centres, sample_mixture


def points_data(points: torch.Tensor, source: str, skipped: Optional[SkipLog] = None,
                modes: Optional[torch.Tensor] = None, std: Optional[float] = None) -> LoadedData:
    """Wrap an (N, 2) tensor as :class:`~cgan_core.LoadedData` with its ``info``."""
    info: dict[str, Any] = {"shape": [2], "items": int(points.shape[0])}
    if modes is not None and std is not None:
        info.update(modes=[[float(x), float(y)] for x, y in modes.tolist()], std=float(std))
    return LoadedData(TensorData(points), info, None, skipped or SkipLog(), source, tensor_fingerprint(points))


def _mixture(request: DataRequest, name: str, centres: torch.Tensor, classic_std: float) -> LoadedData:
    config = request.config
    std = config.std or classic_std
    count = config.n_points if not config.max_items else min(config.n_points, config.max_items)
    # "reference" data is a fresh draw of the same mixture: evaluation compares against unseen points.
    seed = config.seed if request.split == "train" else config.seed + 1
    return points_data(sample_mixture(centres, std, count, seed), name, modes=centres, std=std)


def load_ring(request: DataRequest) -> LoadedData:
    """Eight Gaussians on a circle of radius 2 (std 0.02)."""
    return _mixture(request, "ring", ring_centres(RING["modes"], RING["radius"]), RING["std"])


def load_grid(request: DataRequest) -> LoadedData:
    """25 Gaussians on a 5x5 grid with spacing 2 (std 0.05)."""
    return _mixture(request, "grid", grid_centres(GRID["side"], GRID["spacing"]), GRID["std"])


def _read_csv(path: Path, strict: bool, skipped: SkipLog) -> list[tuple[float, float]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = [p.strip() for p in line.strip().split(",")]
            if not line.strip() or (number == 1 and parts[:2] == ["x", "y"]):
                continue
            try:
                x, y = float(parts[0]), float(parts[1])
                if not (np.isfinite(x) and np.isfinite(y)):
                    raise ValueError("not finite")
            except (ValueError, IndexError) as exc:
                if strict:
                    raise CganRuntimeError(f"{path}:{number}: not an 'x,y' row ({exc}) (--strict-data is set)") from None
                skipped.add(f"{path}:{number}: {exc}")
                continue
            rows.append((x, y))
    return rows


def open_points_source(request: DataRequest) -> LoadedData:
    """The modality's ``open_source``: a CSV file of ``x,y`` rows or an (N, 2) ``.npy`` array."""
    path = Path(request.source).expanduser()
    if not path.is_file():
        raise UsageError(f"points source '{path}' is not a file; give a CSV of x,y rows, an (N, 2) .npy file, "
                         "or a dataset name (ring, grid)")
    skipped = SkipLog()
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise UsageError(f"cannot read '{path}' as a NumPy array: {exc}") from None
        if array.ndim != 2 or array.shape[1] != 2:
            raise UsageError(f"'{path}' holds an array shaped {array.shape}; expected (N, 2) points")
        points = torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32))
    elif path.suffix.lower() == ".csv":
        try:
            rows = _read_csv(path, request.strict, skipped)
        except UnicodeDecodeError:
            raise UsageError(f"'{path}' is not a UTF-8 text file of x,y rows") from None
        points = torch.tensor(rows, dtype=torch.float32).reshape(-1, 2)
    else:
        raise UsageError(f"unsupported points source '{path}'; expected a .csv file of x,y rows or an (N, 2) .npy file")
    if request.config.max_items:
        points = points[: request.config.max_items]
    return points_data(points, str(path), skipped)
