"""Datasets as the trainer sees them, and a resumable, seeded batch order.

A loader (a modality's ``open_source`` or a dataset's ``load``) returns :class:`LoadedData`: a
map-style torch dataset whose items are single samples in the modality's tensor format, plus
what the model needs to know about the data (``info``) and what was skipped on the way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import torch
from torch.utils.data import Dataset


@dataclass
class SkipLog:
    """Counts items a loader skipped and keeps the first few reasons for the log."""

    count: int = 0
    reasons: list[str] = field(default_factory=list)
    max_reasons: int = 20

    def add(self, reason: str) -> None:
        """Record one skipped item."""
        self.count += 1
        if len(self.reasons) < self.max_reasons:
            self.reasons.append(reason)


@dataclass
class LoadedData:
    """A training dataset and what is known about it.

    Attributes:
        dataset: Map-style dataset; ``dataset[i]`` is one sample tensor.
        info: Facts for ``ModelSpec.build`` and writers (``shape``, ``vocab_size``, ...). Must be
            JSON-serialisable: it is stored in the run so ``cgan generate`` can rebuild the model
            without loading the data.
        labels: Optional integer labels aligned with ``dataset`` (for classifier metrics).
        skipped: Items skipped as unreadable, with reasons.
        source: Where the data came from (dataset name or path).
        fingerprint: A content hash identifying the data, for metric caches and the database.
    """

    dataset: Dataset
    info: dict[str, Any]
    labels: Optional[torch.Tensor] = None
    skipped: SkipLog = field(default_factory=SkipLog)
    source: str = ""
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]


class TensorData(Dataset):
    """An in-memory dataset over the first dimension of one tensor."""

    def __init__(self, samples: torch.Tensor) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return self.samples.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.samples[index]


def stack_samples(dataset: Any) -> torch.Tensor:
    """Every item of a dataset as one tensor (a :class:`TensorData`'s own tensor, without copying)."""
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, torch.Tensor):
        return samples
    return torch.stack([dataset[i] for i in range(len(dataset))])


def tensor_fingerprint(tensor: torch.Tensor) -> str:
    """Return a short sha256 of a tensor's bytes (shape and dtype included)."""
    digest = hashlib.sha256()
    digest.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class SeededBatchOrder:
    """An endless stream of index batches, reshuffled each epoch, that can resume exactly.

    The permutation of epoch ``e`` depends only on ``(seed, e)``, so the state is two integers
    (epoch and position) and a resumed run sees the same batches as an uninterrupted one.
    Under DDP each rank takes every ``world_size``-th index of the same permutation.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        seed: int,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if length <= 0:
            raise ValueError("cannot iterate over an empty dataset")
        self.length = length
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last and length // world_size >= batch_size
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0

    def _epoch_indices(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.length, generator=generator)
        usable = (self.length // self.world_size) * self.world_size
        return order[:usable][self.rank :: self.world_size]

    def batches_per_epoch(self) -> int:
        """Number of batches in one pass over this rank's share of the data."""
        per_rank = self.length // self.world_size
        full, rest = divmod(per_rank, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def next_indices(self) -> torch.Tensor:
        """Return the next batch of indices, starting a new epoch when one is used up."""
        indices = self._epoch_indices(self.epoch)
        end = self.position + self.batch_size
        if end > len(indices) and (self.drop_last or self.position >= len(indices)):
            self.epoch += 1
            self.position = 0
            indices = self._epoch_indices(self.epoch)
            end = self.batch_size
        batch = indices[self.position : end]
        self.position = end
        return batch

    def state_dict(self) -> dict[str, int]:
        """Serialisable position in the stream.

        The position is global: how many indices of the epoch's permutation all ranks together
        have used (this rank's position times ``world_size``), so a run can resume with another
        number of processes.
        """
        return {"epoch": self.epoch, "position": self.position * self.world_size, "seed": self.seed,
                "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a saved position (taken with any number of processes).

        With a different number of processes, a global position that does not divide evenly is
        rounded up: at most ``world_size - 1`` indices of that epoch are skipped, none repeated.
        """
        self.epoch = int(state["epoch"])
        self.position = -(-int(state["position"]) // self.world_size)
        self.seed = int(state.get("seed", self.seed))


def collate(items: list[Any]) -> Any:
    """Stack a list of sample tensors (or tuples/dicts of tensors) into a batch."""
    first = items[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(items)
    if isinstance(first, dict):
        return {key: collate([item[key] for item in items]) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(collate(list(group)) for group in zip(*items))
    return torch.as_tensor(items)


class BatchStream:
    """Draws batches from a dataset in :class:`SeededBatchOrder`.

    In-memory :class:`TensorData` is indexed in one go; other datasets are read item by item
    (and could be moved to a ``DataLoader`` with workers by the modality if decoding is slow).
    """

    def __init__(self, dataset: Dataset, order: SeededBatchOrder) -> None:
        self.dataset = dataset
        self.order = order

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        indices = self.order.next_indices()
        if isinstance(self.dataset, TensorData):
            return self.dataset.samples[indices]
        return collate([self.dataset[int(i)] for i in indices])
