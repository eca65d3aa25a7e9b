"""The mode-collapse metrics ``modes-covered`` and ``high-quality-fraction``.

A metric's ``compute`` receives a :class:`cgan_core.EvalContext` (generated samples in
``ctx.fake``, the dataset's facts in ``ctx.data_info``) and returns ``{reported name: value}``.
"""

from __future__ import annotations

from typing import Any

import torch

from cgan_core import UsageError

from cgan_example_points.mixtures import HIGH_QUALITY_STDS, ModeStatistics, mode_statistics


def _statistics(ctx: Any, metric: str) -> ModeStatistics:
    if "modes" not in ctx.data_info or "std" not in ctx.data_info:
        raise UsageError(f"'{metric}' needs a mixture with known modes (the ring or grid dataset); "
                         f"this run's data '{ctx.dataset_key or 'file'}' has none")
    stats = mode_statistics(torch.as_tensor(ctx.fake), torch.tensor(ctx.data_info["modes"]), float(ctx.data_info["std"]))
    ctx.record(metric, threshold_stds=HIGH_QUALITY_STDS, modes=stats.total, samples=int(len(ctx.fake)))
    return stats


def modes_covered(ctx: Any) -> dict[str, float]:
    """Modes with at least one high-quality sample (out of ``len(data_info['modes'])``)."""
    return {"modes-covered": float(_statistics(ctx, "modes-covered").covered)}


def high_quality_fraction(ctx: Any) -> dict[str, float]:
    """Share of samples within three standard deviations of their nearest mode."""
    return {"high-quality-fraction": _statistics(ctx, "high-quality-fraction").high_quality_fraction}
