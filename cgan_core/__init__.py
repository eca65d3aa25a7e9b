"""cgan's modality-agnostic core: the public API that plugins build on.

Everything a plugin may use is importable from here. Heavy names (those that need torch) are
imported lazily so that ``cgan --help`` and plugin discovery stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from cgan_core.errors import CganError, CganRuntimeError, MissingDependencyError, UsageError, unknown_name
from cgan_core.hookspecs import hookimpl, hookspec
from cgan_core.lazy import lazy
from cgan_core.specs import DataRequest, DatasetSpec, LossSpec, MetricSpec, ModalitySpec, ModelSpec, SampleInfo
from cgan_core.version import __version__

_LAZY = {
    "GANModel": "cgan_core.model",
    "Phase": "cgan_core.model",
    "StepContext": "cgan_core.step",
    "adversarial_step": "cgan_core.step",
    "frozen": "cgan_core.step",
    "LoadedData": "cgan_core.data",
    "TensorData": "cgan_core.data",
    "SkipLog": "cgan_core.data",
    "tensor_fingerprint": "cgan_core.data",
    "stack_samples": "cgan_core.data",
    "SeededBatchOrder": "cgan_core.data",
    "Trainer": "cgan_core.trainer",
    "Callback": "cgan_core.callbacks",
    "RunConfig": "cgan_core.config",
    "TrainConfig": "cgan_core.config",
    "load_run": "cgan_core.session",
    "reports_errors": "cgan_core.cli.common",
    "get_registry": "cgan_core.plugins",
    "EvalContext": "cgan_core.metrics",
    "MetricUnavailable": "cgan_core.metrics",
    "frechet_distance": "cgan_core.metrics",
    "frechet_distance_from_stats": "cgan_core.metrics",
    "feature_statistics": "cgan_core.metrics",
    "kernel_inception_distance": "cgan_core.metrics",
    "precision_recall": "cgan_core.metrics",
    "density_coverage": "cgan_core.metrics",
    "knn_radii": "cgan_core.metrics",
    "classifier_score": "cgan_core.metrics",
    "evaluate_run": "cgan_core.evaluation",
    "evaluate_loaded": "cgan_core.evaluation",
    "evaluate_samples": "cgan_core.evaluation",
    "EvalReport": "cgan_core.evaluation",
    "Database": "cgan_core.db",
    "ContentStore": "cgan_core.content",
    "ContentItem": "cgan_core.content",
    "StagedFile": "cgan_core.content",
    "materialize_source": "cgan_core.storage",
    "is_url": "cgan_core.storage",
    "open_local_or_url": "cgan_core.storage",
    "sha256_file": "cgan_core.fileio",
    "WeightsSource": "cgan_core.weights",
    "find_weights_file": "cgan_core.weights",
    "ClassifierFit": "cgan_core.metrics.classifier",
    "ClassifierRecipe": "cgan_core.metrics.classifier",
    "labelled_training_samples": "cgan_core.metrics.classifier",
    "heldout_accuracy": "cgan_core.metrics.classifier",
    "fit_classifier": "cgan_core.metrics.classifier",
    "epoch_steps": "cgan_core.metrics.classifier",
    "cache_key": "cgan_core.metrics.classifier",
    "cached_classifier": "cgan_core.metrics.classifier",
}

__all__ = [
    "CganError", "CganRuntimeError", "MissingDependencyError", "UsageError", "unknown_name",
    "hookimpl", "hookspec", "lazy",
    "DataRequest", "DatasetSpec", "LossSpec", "MetricSpec", "ModalitySpec", "ModelSpec", "SampleInfo",
    "__version__", *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cgan_core' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
