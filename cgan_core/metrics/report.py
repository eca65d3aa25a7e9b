"""The result of an evaluation: every reported number with its provenance, and its JSON file."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from cgan_core.version import __version__


@dataclass
class MetricResult:
    """One reported number and where it came from.

    Attributes:
        metric: Reported name (``fid@effnet-lite0``); the extractor is part of it.
        value: The number.
        higher_is_better: Direction.
        extractor: Feature extractor name (``None`` for metrics without one).
        weights_sha256: sha256 of the extractor's weights file.
        preprocessing: What was done to the samples before the extractor.
        n_real: Reference samples compared against.
        n_fake: Generated samples.
        seed: Seed of the generated samples (and of random subsets).
        checkpoint: Checkpoint the samples came from (``None`` for bare samples).
        step: Training step of that checkpoint.
        reference: Which data the reference set is (dataset name or path, and fingerprint).
        modality: Modality name.
        cgan_version: Version of cgan that computed it.
        seconds: Time spent in this metric (the first metric of an extractor pays for features).
        details: Further provenance the metric recorded (KID std, k of k-NN, classifier accuracy).
    """

    metric: str
    value: float
    higher_is_better: bool
    extractor: Optional[str]
    weights_sha256: Optional[str]
    preprocessing: Optional[str]
    n_real: int
    n_fake: int
    seed: int
    checkpoint: Optional[str]
    step: Optional[int]
    reference: str
    modality: str
    cgan_version: str = __version__
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (non-finite values become strings)."""
        record = asdict(self)
        if not math.isfinite(self.value):
            record["value"] = str(self.value)
        return record


@dataclass
class EvalReport:
    """The results of one evaluation.

    Attributes:
        results: One :class:`MetricResult` per reported number, in the order asked for.
        skipped: Default metrics that do not apply to this data -> why.
        modality: Modality name.
        run: Run directory, when a run was evaluated.
        checkpoint: Checkpoint name.
        step: Training step.
        seed: Sample seed.
        n_real: Reference samples.
        n_fake: Generated samples.
        reference: Reference data description.
        created_at: ISO time of the evaluation.
        seconds: Wall time of the whole evaluation (generation included).
    """

    results: list[MetricResult]
    skipped: dict[str, str]
    modality: str
    run: Optional[str]
    checkpoint: Optional[str]
    step: Optional[int]
    seed: int
    n_real: int
    n_fake: int
    reference: str
    created_at: str = ""
    seconds: float = 0.0

    def values(self) -> dict[str, float]:
        """Reported name -> value."""
        return {result.metric: result.value for result in self.results}

    def result(self, metric: str) -> MetricResult:
        """The result of one reported metric.

        Raises:
            KeyError: if it was not computed.
        """
        for result in self.results:
            if result.metric == metric:
                return result
        raise KeyError(metric)

    def to_dict(self) -> dict[str, Any]:
        """The report as written to ``eval/<checkpoint>.json`` and printed by ``--json``."""
        return {
            "run": self.run, "checkpoint": self.checkpoint, "step": self.step, "modality": self.modality,
            "seed": self.seed, "n_real": self.n_real, "n_fake": self.n_fake, "reference": self.reference,
            "cgan_version": __version__, "created_at": self.created_at, "seconds": round(self.seconds, 3),
            "metrics": [result.to_dict() for result in self.results],
            "skipped": dict(self.skipped),
        }


def write_report(eval_dir: Path, report: EvalReport, name: Optional[str] = None) -> Path:
    """Write ``eval_dir/<checkpoint>.json`` atomically, keeping results of other metrics already there."""
    from cgan_core.checkpoint import atomic_write_text  # torch-free, but keeps this module light

    eval_dir = Path(eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    path = eval_dir / f"{name or report.checkpoint or 'samples'}.json"
    document = report.to_dict()
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = {}
        fresh = {entry["metric"] for entry in document["metrics"]}
        kept = [entry for entry in previous.get("metrics", []) if entry.get("metric") not in fresh]
        document["metrics"] = kept + document["metrics"]
    atomic_write_text(path, json.dumps(document, indent=2, default=str))
    return path
