"""Writing image samples: one PNG per sample, a grid PNG preview, TensorBoard images."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from cgan_core import SampleInfo


def to_uint8(samples: torch.Tensor) -> np.ndarray:
    """(N,C,H,W) samples in [-1, 1] to (N,H,W,C) uint8 pixels."""
    pixels = ((samples.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy()


def _save_png(pixels: np.ndarray, path: Path) -> None:
    from PIL import Image

    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    # A fixed PNG encoder setting keeps the bytes identical for identical pixels.
    image.save(path, format="PNG", optimize=False, compress_level=6)


def write_image_samples(samples: torch.Tensor, out_dir: Path, info: SampleInfo,
                        data_info: Mapping[str, Any], fmt: str = "png") -> list[Path]:
    """Write each sample as ``out_dir/sample-NNNNNN.png``; returns the paths in order."""
    if fmt != "png":
        raise ValueError(f"image samples are written as png, not '{fmt}'")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    prefix = f"seed{info.seed}-" if info.seed is not None else ""
    for offset, pixels in enumerate(to_uint8(samples)):
        path = out_dir / f"{prefix}sample-{info.start_index + offset:06d}.png"
        _save_png(pixels, path)
        paths.append(path)
    return paths


def grid(samples: torch.Tensor, padding: int = 2) -> np.ndarray:
    """Arrange samples in a near-square grid; returns (H,W,C) uint8."""
    from torchvision.utils import make_grid

    n = samples.shape[0]
    columns = int(np.ceil(np.sqrt(n)))
    image = make_grid(samples.detach().float().cpu().clamp(-1, 1), nrow=columns, padding=padding,
                      normalize=True, value_range=(-1, 1), pad_value=1.0)
    return (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def write_image_preview(samples: torch.Tensor, path: Path, data_info: Mapping[str, Any]) -> Path:
    """Write a grid PNG of ``samples`` at ``path`` (``.png`` is added when missing)."""
    path = Path(path)
    if path.suffix != ".png":
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_png(grid(samples), path)
    return path


def log_image_preview(writer: Any, tag: str, samples: torch.Tensor, step: int, data_info: Mapping[str, Any]) -> None:
    """Add the preview grid to TensorBoard."""
    writer.add_image(tag, grid(samples), step, dataformats="HWC")
