"""What a metric's ``compute`` receives: :class:`EvalContext`.

A metric is registered as a :class:`cgan_core.specs.MetricSpec` whose ``compute(ctx)`` returns
``{reported_name: value}``. The context carries the real (reference) and generated samples in
the modality's tensor format, everything needed to rebuild features, and a place to record
provenance (extractor weights hash, preprocessing) that is reported with every number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np
import torch

from cgan_core.errors import UsageError


class MetricUnavailable(UsageError):
    """A metric cannot be computed for this data (e.g. a classifier metric on unlabelled images).

    ``cgan evaluate`` reports such a metric as skipped when it came from the modality's defaults
    and fails with this message when the user asked for it by name.
    """


@dataclass
class EvalContext:
    """Inputs of one evaluation.

    Attributes:
        modality: Modality name.
        real: Reference samples (modality tensor format, CPU).
        fake: Generated samples (modality tensor format, CPU).
        real_labels: Labels of the reference samples, when the dataset has them.
        data_info: The run's dataset facts (shape, vocabulary, class names, ...).
        config: The run's resolved config (``None`` outside a run).
        model: The trained model (for likelihood metrics such as ``nll-test``), or ``None``.
        sample_generator: The generator module used to make ``fake`` (EMA when present).
        device: Device to compute features on.
        seed: Seed of the generated samples.
        cache_dir: Directory for cached features and trained feature extractors.
        dataset_key: Identifies the reference data in cache keys (dataset name + fingerprint).
        provenance: Metric name -> extra provenance fields recorded by ``compute``.
        options: Metric options (``"extractor.key" -> value``, e.g. ``effnet-lite0.image_size``)
            from ``cgan evaluate --option``; metrics read them with :meth:`option`.
        load_split: Optional ``load_split(split) -> LoadedData`` that loads a split (``"train"``,
            ``"reference"``) of the run's dataset, for metrics that learn from data (a domain
            classifier, a language model); ``None`` outside a run.
        memo: In-memory results shared by the metrics of one evaluation (features of the
            generated samples, k-NN radii), filled through :meth:`memoized`.
    """

    modality: str
    real: Any
    fake: Any
    real_labels: Optional[torch.Tensor] = None
    data_info: Mapping[str, Any] = field(default_factory=dict)
    config: Any = None
    model: Any = None
    sample_generator: Any = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    cache_dir: Optional[Path] = None
    dataset_key: str = ""
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    load_split: Optional[Callable[[str], Any]] = None
    memo: dict[str, Any] = field(default_factory=dict)

    def record(self, metric: str, **fields: Any) -> None:
        """Add provenance fields (e.g. ``weights_sha256=...``, ``preprocessing=...``) to a metric."""
        self.provenance.setdefault(metric, {}).update(fields)

    def option(self, key: str, default: Any = None) -> Any:
        """A metric option given with ``--option key=value`` (or ``default``)."""
        return self.options.get(key, default)

    def memoized(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute a value once per evaluation (e.g. fake features used by FID, KID and precision).

        ``key`` must name everything the value depends on besides the samples themselves.
        """
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def cached_features(self, parts: Mapping[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Features of the *reference* data, cached on disk under a key made of ``parts``.

        ``parts`` must name everything the features depend on: the extractor, its weights hash
        and the preprocessing. The dataset key and number of samples are added here.
        """
        if self.cache_dir is None:
            return compute()
        key_source = dict(parts, dataset=self.dataset_key, n=len(self.real))
        key = hashlib.sha256(json.dumps(key_source, sort_keys=True, default=str).encode()).hexdigest()[:20]
        path = Path(self.cache_dir) / f"features-{key}.npy"
        if path.is_file():
            try:
                return np.load(path, allow_pickle=False)
            except (ValueError, OSError):
                path.unlink(missing_ok=True)  # a cut-off cache file is recomputed
        features = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, features, allow_pickle=False)
        tmp.replace(path)
        (path.with_suffix(".json")).write_text(json.dumps(key_source, default=str))
        return features
