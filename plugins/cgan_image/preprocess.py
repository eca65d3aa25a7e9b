"""Turning decoded pixel arrays into training tensors: channels, crop, resize, scale to [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_nchw_float(array: np.ndarray) -> torch.Tensor:
    """Convert (N,H,W), (N,H,W,C) or (N,C,H,W) arrays of uint8 or floats to float (N,C,H,W) in [0, 1].

    Integer arrays are divided by their dtype's maximum; float arrays are taken as [0, 1] unless
    their maximum exceeds 1, in which case they are divided by it (e.g. digits' 0..16 scale).
    """
    tensor = torch.from_numpy(np.array(array, copy=True))  # decoded buffers may be read-only
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    elif tensor.dim() == 4 and tensor.shape[-1] in (1, 3, 4) and tensor.shape[1] not in (1, 3, 4):
        tensor = tensor.permute(0, 3, 1, 2)
    elif tensor.dim() != 4:
        raise ValueError(f"expected images shaped (N,H,W), (N,H,W,C) or (N,C,H,W), got {tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255.0
    elif not tensor.is_floating_point():
        tensor = tensor.float() / float(torch.iinfo(tensor.dtype).max)
    else:
        tensor = tensor.float()
        peak = float(tensor.max()) if tensor.numel() else 1.0
        if peak > 1.0:
            tensor = tensor / peak
    return tensor.clamp_(0.0, 1.0)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert (N,C,H,W) images to 1 (luma) or 3 channels; an alpha channel is dropped."""
    if images.shape[1] == 4:
        images = images[:, :3]
    if images.shape[1] == channels:
        return images
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True)
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def center_crop_square(images: torch.Tensor) -> torch.Tensor:
    """Crop (N,C,H,W) images to a centred square."""
    height, width = images.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return images[..., top : top + side, left : left + side]


def resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize (N,C,H,W) images to resolution x resolution (antialiased when shrinking)."""
    if tuple(images.shape[-2:]) == (resolution, resolution):
        return images
    shrinking = images.shape[-1] > resolution
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear",
                         align_corners=False, antialias=shrinking).clamp_(0.0, 1.0)


def prepare_images(array: np.ndarray | torch.Tensor, resolution: int, channels: int, crop: str) -> torch.Tensor:
    """The whole pipeline: to float, channels, crop, resize, scale to [-1, 1]."""
    images = to_nchw_float(array if isinstance(array, np.ndarray) else array.numpy())
    images = convert_channels(images, channels)
    if crop == "center":
        images = center_crop_square(images)
    elif crop != "none":
        raise ValueError(f"data.crop must be 'center' or 'none', got '{crop}'")
    images = resize(images, resolution)
    return images * 2.0 - 1.0
