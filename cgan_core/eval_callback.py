"""Evaluation during training: ``--set eval.every=N``.

Every N steps (and at the last step) the :class:`EvaluationCallback` draws ``eval.n_samples``
samples from the sampling generator (the EMA copy when enabled) with a fixed-seed
``torch.Generator``, computes ``eval.metrics`` against the reference data, appends the numbers to
``metrics.jsonl`` (keys ``eval/<metric>``) and TensorBoard, writes ``eval/step-N.json`` with full
provenance, and saves a ``best`` checkpoint whenever ``eval.best_metric`` improves.

Evaluation restores every global RNG state and the model's train/eval modes, so a run with
evaluation follows exactly the same trajectory as one without, and resuming stays bit-identical.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from cgan_core.callbacks import Callback, TensorBoardLogger
from cgan_core.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.evaluation import EvalReport, ReferenceSet
    from cgan_core.plugins import Registry
    from cgan_core.session import ResolvedRun
    from cgan_core.trainer import Trainer


class EvaluationCallback(Callback):
    """Runs the evaluation metrics every ``every`` steps and keeps the ``best`` checkpoint.

    Args:
        resolved: The run's resolved config and specs.
        every: Steps between evaluations (> 0).
        metrics: Metric names (default: ``eval.metrics``, then the modality's defaults).
        n_samples: Generated samples per evaluation (default: ``eval.n_samples``, then the modality's).
        best_metric: Reported metric that selects ``best`` (default: ``eval.best_metric``, then the first).
        seed: Seed of the evaluation samples: the same latent codes at every evaluation.
        cache_dir: Feature cache (default: :func:`cgan_core.evaluation.default_cache_dir`).
        options: Metric options (default: the ``eval.options`` config key).
        reference: Reference set (default: loaded from the run's dataset on first use).
        registry: Plugin registry.

    Raises:
        UsageError: unknown metrics (here), or a ``best_metric`` that no metric reports (at the
            first evaluation).
    """

    name = "evaluation"

    def __init__(
        self,
        resolved: "ResolvedRun",
        every: int,
        metrics: Optional[Sequence[str]] = None,
        n_samples: Optional[int] = None,
        best_metric: Optional[str] = None,
        seed: int = 0,
        cache_dir: Optional[Path] = None,
        options: Optional[Mapping[str, Any]] = None,
        reference: Optional["ReferenceSet"] = None,
        registry: Optional["Registry"] = None,
    ) -> None:
        from cgan_core.evaluation import (default_cache_dir, parse_metric_options, resolve_metric_specs,
                                          split_metric_names)

        if every <= 0:
            raise UsageError(f"eval.every must be positive to evaluate during training, got {every}")
        eval_config = resolved.config.eval
        self.resolved = resolved
        self.every = every
        self.metric_names = split_metric_names(metrics) or list(eval_config.metrics)
        self.specs, _ = resolve_metric_specs(resolved.modality, self.metric_names, registry)
        self.n_samples = n_samples or eval_config.n_samples or resolved.modality.default_eval_samples
        self.best_metric = best_metric or eval_config.best_metric or self.specs[0].name
        # A metric may report several numbers under its own names; the direction of the best
        # metric is then taken from its first report.
        spec = next((s for s in self.specs if s.name == self.best_metric), None)
        self.higher_is_better: Optional[bool] = spec.higher_is_better if spec is not None else None
        self.seed = seed
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.options = dict(options) if options is not None else parse_metric_options(eval_config.options)
        self.reference = reference
        self.registry = registry
        self.best_value: Optional[float] = None
        self.best_step: Optional[int] = None
        self.last_step: Optional[int] = None
        self.last_report: Optional["EvalReport"] = None

    @classmethod
    def from_config(cls, resolved: "ResolvedRun", **kwargs: Any) -> "EvaluationCallback":
        """Build from the run's ``eval`` section (``every``, ``metrics``, ``n_samples``, ``best_metric``, ``options``)."""
        return cls(resolved, resolved.config.eval.every, **kwargs)

    # --- the hook ----------------------------------------------------------------------------
    def on_step_end(self, trainer: "Trainer", logs: Mapping[str, float]) -> None:
        if not trainer.is_main or trainer.step == self.last_step:
            return
        if trainer.step % self.every and not trainer.is_last_step:
            return
        self.evaluate(trainer)

    def evaluate(self, trainer: "Trainer") -> "EvalReport":
        """Evaluate the trainer's sampling generator now; log, and save ``best`` when it improved."""
        from cgan_core.evaluation import evaluate_model, load_reference, write_report

        run = trainer.run
        if self.reference is None:
            self.reference = load_reference(self.resolved, None, None, self.seed,
                                            cache_dir=run.path / "cache" if run is not None else None,
                                            registry=self.registry)
        data = trainer.data
        report = evaluate_model(
            trainer.model, self.resolved, data.info, self.reference, self.metric_names,
            sample_generator=trainer.sample_generator, n_samples=self.n_samples, seed=self.seed,
            device=trainer.device, cache_dir=self.cache_dir, options=self.options,
            checkpoint=f"step-{trainer.step:08d}", step=trainer.step,
            run=str(run.path) if run is not None else None,
            load_split=lambda split: data if split == "train" else None, registry=self.registry,
        )
        self.last_step = trainer.step
        self.last_report = report
        values = report.values()
        self._log(trainer, values)
        if run is not None:
            write_report(run.eval_dir, report, name=f"step-{trainer.step:08d}")
        value = values.get(self.best_metric)
        if value is None:
            raise UsageError(f"eval.best_metric '{self.best_metric}' was not reported by the metrics "
                             f"{', '.join(self.metric_names) or 'evaluated'} (they reported: {', '.join(values)})")
        if self.higher_is_better is None:
            self.higher_is_better = report.result(self.best_metric).higher_is_better
        if math.isfinite(value) and math.isfinite(value) and self._improves(value):
            self.best_value, self.best_step = value, trainer.step
            # The state above is saved inside the checkpoint, so a run resumed from it knows its best.
            trainer.save_checkpoint("best", metrics={f"eval/{k}": v for k, v in values.items()})
        return report

    def _improves(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.higher_is_better else value < self.best_value

    def _log(self, trainer: "Trainer", values: Mapping[str, float]) -> None:
        record: dict[str, Any] = {"step": trainer.step, "phase": trainer.phase_name}
        record.update({f"eval/{name}": value if math.isfinite(value) else str(value) for name, value in values.items()})
        if trainer.run is not None:
            import json

            with open(trainer.run.metrics_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        for callback in trainer.callbacks:
            if isinstance(callback, TensorBoardLogger):
                for name, value in values.items():
                    callback.writer.add_scalar(f"eval/{name}", float(value), trainer.step)

    # --- checkpointed state ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"best_metric": self.best_metric, "best_value": self.best_value, "best_step": self.best_step,
                "last_step": self.last_step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("best_metric") == self.best_metric:
            self.best_value = state.get("best_value")
            self.best_step = state.get("best_step")
        self.last_step = state.get("last_step")
