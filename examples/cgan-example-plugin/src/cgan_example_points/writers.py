"""Writing points: a CSV or .npy file per batch, and a scatter-plot PNG preview.

Files depend only on the samples and the :class:`cgan_core.SampleInfo`, so the same run,
checkpoint and seed always give byte-identical content (``cgan generate`` relies on it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from cgan_core import SampleInfo, UsageError

CANVAS = 512
POINT_COLOUR = (31, 119, 180)
MODE_COLOUR = (214, 39, 40)


def _file_name(info: SampleInfo, fmt: str) -> str:
    prefix = f"seed{info.seed}-" if info.seed is not None else ""
    return f"{prefix}points-{info.start_index:06d}.{fmt}"


def write_point_samples(samples: torch.Tensor, out_dir: Path, info: SampleInfo,
                        data_info: Mapping[str, Any], fmt: str = "csv") -> list[Path]:
    """Write a batch of (N, 2) points as one ``.csv`` (``x,y`` rows) or ``.npy`` file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    points = samples.detach().float().cpu().numpy()
    path = out_dir / _file_name(info, fmt)
    if fmt == "csv":
        # 9 significant digits represent every float32 exactly, so reading back is lossless.
        lines = ["x,y"] + [f"{x:.9g},{y:.9g}" for x, y in points]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "npy":
        np.save(path, points.astype(np.float32), allow_pickle=False)
    else:
        raise UsageError(f"points are written as csv or npy, not '{fmt}'")
    return [path]


def _bounds(points: np.ndarray, modes: Optional[np.ndarray]) -> float:
    reference = modes if modes is not None and len(modes) else points
    if not len(reference):
        return 1.0
    return float(np.abs(reference).max()) * 1.25 + 0.25


def scatter_image(points: torch.Tensor, data_info: Mapping[str, Any], size: int = CANVAS) -> np.ndarray:
    """Draw points (blue) and, when known, each mode's high-quality disc (red); returns (H, W, 3) uint8."""
    from PIL import Image, ImageDraw

    from cgan_example_points.mixtures import HIGH_QUALITY_STDS

    coords = points.detach().float().cpu().numpy().reshape(-1, 2)
    modes = np.asarray(data_info["modes"], dtype=np.float32) if "modes" in data_info else None
    half = _bounds(coords, modes)
    scale = (size - 1) / (2 * half)

    def pixel(x: float, y: float) -> tuple[float, float]:
        return (x + half) * scale, (half - y) * scale  # y grows upwards in the plot

    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for x, y in coords:
        if abs(x) <= half and abs(y) <= half:
            cx, cy = pixel(float(x), float(y))
            draw.rectangle([cx - 1, cy - 1, cx + 1, cy + 1], fill=POINT_COLOUR)
    if modes is not None:  # drawn last, so a covered mode's disc stays visible over its points
        radius = max(2.0, HIGH_QUALITY_STDS * float(data_info.get("std", 0.0)) * scale)
        for x, y in modes:
            cx, cy = pixel(float(x), float(y))
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=MODE_COLOUR, width=2)
    return np.asarray(image)


def write_points_preview(samples: torch.Tensor, path: Path, data_info: Mapping[str, Any]) -> Path:
    """Write a scatter-plot PNG of ``samples`` at ``path`` (``.png`` is added when missing)."""
    from PIL import Image

    path = Path(path)
    if path.suffix != ".png":
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scatter_image(samples, data_info)).save(path, format="PNG", optimize=False, compress_level=6)
    return path


def log_points_preview(writer: Any, tag: str, samples: torch.Tensor, step: int, data_info: Mapping[str, Any]) -> None:
    """Add the scatter plot to TensorBoard."""
    writer.add_image(tag, scatter_image(samples, data_info, size=256), step, dataformats="HWC")
