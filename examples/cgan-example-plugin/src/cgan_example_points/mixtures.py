"""Mixtures of 2-D Gaussians and the mode-collapse statistics measured on them.

The two classic benchmarks of mode collapse: eight Gaussians on a ring of radius 2 with
standard deviation 0.02 (Metz et al., "Unrolled GANs", 2017), and 25 Gaussians on a 5x5 grid
with spacing 2 and standard deviation 0.05 (Srivastava et al., "VEEGAN", 2017). A generated
point is *high quality* when it lies within three standard deviations of its nearest mode; a
mode is *covered* when at least one high-quality point is nearest to it (VEEGAN; Lin et al.,
"PacGAN", 2018).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RING = {"modes": 8, "radius": 2.0, "std": 0.02}
GRID = {"side": 5, "spacing": 2.0, "std": 0.05}
HIGH_QUALITY_STDS = 3.0


def ring_centres(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """``modes`` centres evenly spaced on a circle; returns (modes, 2)."""
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1).float()


def grid_centres(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """``side`` x ``side`` centres on a square grid centred at the origin; returns (side**2, 2)."""
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def sample_mixture(centres: torch.Tensor, std: float, n: int, seed: int) -> torch.Tensor:
    """``n`` points from an equal-weight mixture of isotropic Gaussians; returns (n, 2) float32."""
    generator = torch.Generator().manual_seed(seed)
    which = torch.randint(len(centres), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator) * std
    return (centres[which] + noise).float()


@dataclass
class ModeStatistics:
    """How well a set of points covers a mixture's modes.

    Attributes:
        covered: Modes with at least one high-quality point.
        total: Modes of the mixture.
        high_quality_fraction: Share of points within ``HIGH_QUALITY_STDS`` std of their nearest mode.
        per_mode: High-quality points per mode.
    """

    covered: int
    total: int
    high_quality_fraction: float
    per_mode: list[int]


def mode_statistics(points: torch.Tensor, centres: torch.Tensor, std: float,
                    threshold: float = HIGH_QUALITY_STDS) -> ModeStatistics:
    """Assign each point to its nearest centre and count the high-quality ones.

    Args:
        points: (N, 2) points.
        centres: (M, 2) mode centres.
        std: Standard deviation of the mixture's Gaussians.
        threshold: A point is high quality within ``threshold * std`` of its nearest centre.
    """
    points = points.detach().float().cpu()
    centres = torch.as_tensor(centres, dtype=torch.float32)
    if len(points) == 0:
        return ModeStatistics(0, len(centres), 0.0, [0] * len(centres))
    distances = torch.cdist(points, centres)
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance <= threshold * std
    per_mode = torch.bincount(nearest[good], minlength=len(centres))
    return ModeStatistics(
        covered=int((per_mode > 0).sum()),
        total=len(centres),
        high_quality_fraction=float(good.float().mean()),
        per_mode=[int(c) for c in per_mode],
    )
