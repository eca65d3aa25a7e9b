"""The reference data of an evaluation: the real samples metrics compare against."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

from cgan_core.errors import UsageError
from cgan_core.plugins import Registry, get_registry
from cgan_core.specs import DataRequest
from cgan_core.storage import open_local_or_url

if TYPE_CHECKING:  # pragma: no cover - typing only
    from cgan_core.session import ResolvedRun


@dataclass
class ReferenceSet:
    """Reference samples in the modality's tensor format.

    Attributes:
        samples: A stacked tensor, or a list of per-sample tensors when they differ in shape.
        labels: Integer labels aligned with ``samples`` (or ``None``).
        key: Identifies exactly these samples in feature-cache keys.
        description: Where they came from (dataset name or path, and its fingerprint).
    """

    samples: Any
    labels: Optional[torch.Tensor]
    key: str
    description: str

    def __len__(self) -> int:
        return len(self.samples)


def stack_samples(dataset: Any) -> Any:
    """All items of a map-style dataset as one tensor (a list when shapes differ)."""
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, torch.Tensor) and len(samples) == len(dataset):
        return samples
    items = [dataset[i] for i in range(len(dataset))]
    if items and all(isinstance(item, torch.Tensor) for item in items) and \
            len({tuple(item.shape) for item in items}) == 1:
        return torch.stack(items)
    return items


def _subset(samples: Any, indices: torch.Tensor) -> Any:
    if isinstance(samples, torch.Tensor):
        return samples[indices]
    return [samples[int(i)] for i in indices]


def reference_from_loaded(data: Any, n_real: Optional[int] = None, seed: int = 0) -> ReferenceSet:
    """Turn :class:`~cgan_core.data.LoadedData` into a reference set (a seeded subset when ``n_real``).

    Raises:
        UsageError: if ``n_real`` is not positive.
    """
    from cgan_core.data import tensor_fingerprint

    samples = stack_samples(data.dataset)
    labels = data.labels
    indices_note = ""
    if n_real is not None and n_real <= 0:
        raise UsageError(f"--n-real must be positive, got {n_real}")
    if n_real is not None and n_real < len(samples):
        indices = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))[:n_real].sort().values
        samples = _subset(samples, indices)
        labels = labels[indices] if labels is not None else None
        indices_note = hashlib.sha256(indices.numpy().tobytes()).hexdigest()[:12]
    if isinstance(samples, torch.Tensor):
        key = tensor_fingerprint(samples)
    else:
        key = f"{data.fingerprint or data.source}:{len(samples)}:{indices_note}"
    description = f"{data.source or 'reference'} ({len(samples)} items, fingerprint {data.fingerprint or key})"
    return ReferenceSet(samples, labels, f"{data.source}|{key}", description)


def load_reference(resolved: "ResolvedRun", reference: Optional[str] = None, n_real: Optional[int] = None,
                   seed: int = 0, cache_dir: Optional[Path] = None, registry: Optional[Registry] = None) -> ReferenceSet:
    """The run's reference split, or ``reference`` (a dataset name or a path/URL) read with the run's data config.

    Raises:
        UsageError: unreadable or empty reference data (from the loaders).
    """
    from cgan_core.session import load_data

    if reference is None:
        data = load_data(resolved, split="reference", cache_dir=cache_dir)
    else:
        registry = registry or get_registry()
        modality = resolved.config.modality
        spec = registry.datasets(modality).get(reference)
        request = DataRequest(source=str(reference), config=resolved.config.data, split="reference", cache_dir=cache_dir)
        data = spec.load(request) if spec is not None else open_local_or_url(resolved.modality.open_source, request)
        if len(data) == 0:
            raise UsageError(f"reference '{reference}' has no usable items")
        data.source = data.source or str(reference)
    return reference_from_loaded(data, n_real, seed)
