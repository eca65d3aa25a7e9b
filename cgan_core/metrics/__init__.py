"""Modality-free metric maths and the evaluation context."""

from cgan_core.metrics.context import EvalContext

__all__ = ["EvalContext"]
