"""Evaluating generated samples against reference data, with every number's provenance.

Layers, each usable on its own:

* :func:`evaluate_samples` — real and fake tensors in, :class:`EvalReport` out (any modality:
  it only calls the registered :class:`~cgan_core.specs.MetricSpec` s on an
  :class:`~cgan_core.metrics.EvalContext`).
* :func:`evaluate_model` — draws ``n`` samples from a model with a seeded ``torch.Generator``
  and evaluates them (used by evaluation during training).
* :func:`evaluate_loaded` / :func:`evaluate_run` — a trained run (``cgan evaluate``, the REST
  server, the database helper): rebuild it, load its reference data, evaluate, write
  ``eval/<checkpoint>.json``.

Evaluation leaves every global random number generator as it found it, so evaluating during
training does not change the training trajectory.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

from cgan_core.errors import CganRuntimeError, UsageError
from cgan_core.metrics.context import EvalContext, MetricUnavailable
from cgan_core.metrics.reference import ReferenceSet, load_reference, reference_from_loaded, stack_samples
from cgan_core.metrics.report import EvalReport, MetricResult, write_report
from cgan_core.plugins import Registry, get_registry
from cgan_core.specs import MetricSpec, ModalitySpec

if TYPE_CHECKING:  # pragma: no cover - typing only
    from cgan_core.session import LoadedRun, ResolvedRun


# --- side-effect-free evaluation ------------------------------------------------------------------
@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Restore the Python, NumPy and torch (CPU and CUDA) RNG states on exit.

    Metrics may draw random numbers (subsets, initialisations); training must not notice.
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda_devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


# --- metric selection -----------------------------------------------------------------------------
def split_metric_names(names: Optional[Sequence[str]]) -> list[str]:
    """Flatten ``["fid@classifier,kid@classifier", "recall@classifier"]`` into single names."""
    flat: list[str] = []
    for name in names or ():
        flat.extend(part.strip() for part in str(name).split(",") if part.strip())
    return list(dict.fromkeys(flat))


def resolve_metric_specs(modality: ModalitySpec, names: Optional[Sequence[str]] = None,
                         registry: Optional[Registry] = None) -> tuple[list[MetricSpec], bool]:
    """Look the metrics up; ``names`` empty means the modality's defaults.

    Returns:
        The specs, and whether they were named explicitly (explicit metrics that do not apply
        are errors; default ones are skipped with a note).

    Raises:
        UsageError: for an unknown metric or one of another modality (listing the valid ones),
            or a modality without default metrics when none are named.
    """
    registry = registry or get_registry()
    wanted = split_metric_names(names)
    explicit = bool(wanted)
    if not wanted:
        wanted = list(modality.default_metrics)
        if not wanted:
            valid = ", ".join(sorted(registry.metrics(modality.name))) or "(none registered)"
            raise UsageError(f"modality '{modality.name}' declares no default metrics; pass --metric NAME "
                             f"or set eval.metrics (valid: {valid})")
    return [registry.metric(modality.name, name) for name in wanted], explicit


def default_cache_dir() -> Path:
    """Where reference features and trained extractors are cached.

    ``$CGAN_CACHE_DIR/eval``, else ``$CGAN_HOME/cache/eval``, else ``$XDG_CACHE_HOME/cgan/eval``
    (``~/.cache/cgan/eval``).
    """
    if os.environ.get("CGAN_CACHE_DIR"):
        return Path(os.environ["CGAN_CACHE_DIR"]) / "eval"
    if os.environ.get("CGAN_HOME"):
        return Path(os.environ["CGAN_HOME"]) / "cache" / "eval"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "cgan" / "eval"


# --- computing -------------------------------------------------------------------------------------
def _provenance_for(ctx: EvalContext, reported: str, spec: MetricSpec) -> dict[str, Any]:
    fields = dict(ctx.provenance.get(spec.name, {}))
    fields.update(ctx.provenance.get(reported, {}))
    return fields


def compute_metrics(specs: Sequence[MetricSpec], ctx: EvalContext, explicit: bool = True,
                    checkpoint: Optional[str] = None, step: Optional[int] = None,
                    reference: str = "") -> tuple[list[MetricResult], dict[str, str]]:
    """Call each spec's ``compute(ctx)`` and attach provenance to every number it returns.

    Raises:
        MetricUnavailable: for an explicitly named metric that does not apply.
        CganRuntimeError: when a metric returns something that is not ``{name: number}``.
    """
    results: list[MetricResult] = []
    skipped: dict[str, str] = {}
    n_real, n_fake = len(ctx.real), len(ctx.fake)
    for spec in specs:
        started = time.perf_counter()
        try:
            values = spec.compute(ctx)
        except MetricUnavailable as exc:
            if explicit:
                raise
            skipped[spec.name] = str(exc)
            continue
        except ValueError as exc:  # the maths refuses its input: too few samples, NaN features ...
            raise UsageError(f"metric '{spec.name}' cannot be computed on these samples: {exc}") from exc
        elapsed = time.perf_counter() - started
        if not isinstance(values, Mapping) or not values:
            raise CganRuntimeError(f"metric '{spec.name}' returned {type(values).__name__}, expected {{name: number}}")
        for reported, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise CganRuntimeError(f"metric '{spec.name}' returned a non-number for '{reported}': {value!r}") from None
            fields = _provenance_for(ctx, reported, spec)
            results.append(MetricResult(
                metric=str(reported), value=number, higher_is_better=spec.higher_is_better,
                extractor=fields.pop("extractor", spec.extractor),
                weights_sha256=fields.pop("weights_sha256", None),
                preprocessing=fields.pop("preprocessing", None),
                n_real=n_real, n_fake=n_fake, seed=ctx.seed, checkpoint=checkpoint, step=step,
                reference=reference, modality=ctx.modality, seconds=round(elapsed, 3),
                details={k: v for k, v in fields.items()},
            ))
    return results, skipped


def evaluate_samples(
    modality: str,
    real: Any,
    fake: Any,
    metrics: Optional[Sequence[str]] = None,
    *,
    real_labels: Optional[torch.Tensor] = None,
    data_info: Optional[Mapping[str, Any]] = None,
    config: Any = None,
    model: Any = None,
    sample_generator: Any = None,
    device: Optional[torch.device] = None,
    seed: int = 0,
    cache_dir: Optional[Path] = None,
    dataset_key: str = "",
    options: Optional[Mapping[str, Any]] = None,
    load_split: Optional[Callable[[str], Any]] = None,
    checkpoint: Optional[str] = None,
    step: Optional[int] = None,
    reference: str = "",
    run: Optional[str] = None,
    registry: Optional[Registry] = None,
) -> EvalReport:
    """Evaluate ``fake`` against ``real`` (both in the modality's tensor format) with registered metrics.

    Args:
        modality: Modality name; the metrics must belong to it.
        real: Reference samples.
        fake: Generated samples (or a second real set, for a real-vs-real baseline).
        metrics: Metric names (``None``/empty: the modality's defaults).
        real_labels: Labels of ``real`` (classifier metrics use them when no training split is known).
        data_info: Dataset facts (shape, classes, vocabulary ...).
        config: The run's config.
        model: The model (likelihood metrics use it).
        sample_generator: The generator module that produced ``fake``.
        device: Where features are computed (default CPU).
        seed: Seed of ``fake`` and of random subsets inside metrics.
        cache_dir: Where reference features and trained extractors are cached (``None``: no cache).
        dataset_key: Identifies ``real`` in cache keys (default: a fingerprint of ``real``).
        options: Metric options (``--option key=value``).
        load_split: Loads a split of the run's dataset (``"train"``), for metrics that learn.
        checkpoint: Checkpoint name, for provenance.
        step: Training step, for provenance.
        reference: Description of the reference data, for provenance.
        run: Run directory, for provenance.
        registry: Plugin registry (default: the process-wide one).

    Raises:
        UsageError: unknown metrics, metrics of another modality, too few samples, or input a
            metric's maths refuses (NaN features, fewer samples than its k).
    """
    registry = registry or get_registry()
    modality_spec = registry.modality(modality)
    specs, explicit = resolve_metric_specs(modality_spec, metrics, registry)
    if len(real) < 2 or len(fake) < 2:
        raise UsageError(f"evaluation needs at least 2 real and 2 generated samples, got {len(real)} and {len(fake)}")
    if not dataset_key:
        from cgan_core.data import tensor_fingerprint

        dataset_key = tensor_fingerprint(real) if isinstance(real, torch.Tensor) else f"{len(real)}-items"
    ctx = EvalContext(
        modality=modality, real=real, fake=fake, real_labels=real_labels, data_info=dict(data_info or {}),
        config=config, model=model, sample_generator=sample_generator, device=device or torch.device("cpu"),
        seed=seed, cache_dir=Path(cache_dir) if cache_dir is not None else None, dataset_key=dataset_key,
        options=dict(options or {}), load_split=load_split,
    )
    started = time.perf_counter()
    with preserved_rng_state():
        results, skipped = compute_metrics(specs, ctx, explicit, checkpoint, step, reference or dataset_key)
    return EvalReport(
        results=results, skipped=skipped, modality=modality, run=run, checkpoint=checkpoint, step=step, seed=seed,
        n_real=len(real), n_fake=len(fake), reference=reference or dataset_key,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=time.perf_counter() - started,
    )


def generate_samples(model: Any, n: int, seed: int, sample_generator: Any = None) -> Any:
    """``n`` samples from ``model`` drawn with a ``torch.Generator`` seeded by ``seed``.

    The same model, seed and ``n`` give the same samples, and no global RNG is consumed.

    Raises:
        UsageError: if ``n`` is not positive.
    """
    if n <= 0:
        raise UsageError(f"the number of samples must be positive, got {n}")
    generator = torch.Generator().manual_seed(int(seed))
    with preserved_rng_state():
        return model.sample(n, generator=generator, generator_module=sample_generator)


def evaluate_model(
    model: Any,
    resolved: "ResolvedRun",
    data_info: Mapping[str, Any],
    reference: ReferenceSet,
    metrics: Optional[Sequence[str]] = None,
    *,
    sample_generator: Any = None,
    n_samples: Optional[int] = None,
    seed: int = 0,
    device: Optional[torch.device] = None,
    cache_dir: Optional[Path] = None,
    options: Optional[Mapping[str, Any]] = None,
    checkpoint: Optional[str] = None,
    step: Optional[int] = None,
    run: Optional[str] = None,
    load_split: Optional[Callable[[str], Any]] = None,
    registry: Optional[Registry] = None,
) -> EvalReport:
    """Generate ``n_samples`` with a seeded generator and evaluate them against ``reference``.

    ``n_samples`` defaults to ``eval.n_samples`` of the run's config, then the modality's
    ``default_eval_samples``; ``metrics`` to ``eval.metrics``, then the modality's defaults.
    The model is put in eval mode while it is evaluated and restored afterwards.
    """
    from cgan_core.session import load_data

    eval_config = resolved.config.sections.get("eval")
    n = n_samples or (eval_config.n_samples if eval_config is not None else 0) or resolved.modality.default_eval_samples
    names = split_metric_names(metrics) or list(getattr(eval_config, "metrics", ()) or ())
    if load_split is None:
        load_split = _split_loader(resolved, Path(run) / "cache" if run else None, load_data)
    # Each submodule's own mode is restored (a model may keep parts in eval mode on purpose).
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        fake = generate_samples(model, n, seed, sample_generator)
        return evaluate_samples(
            resolved.config.modality, reference.samples, fake, names, real_labels=reference.labels,
            data_info=data_info, config=resolved.config, model=model, sample_generator=sample_generator,
            device=device, seed=seed, cache_dir=cache_dir, dataset_key=reference.key, options=options,
            load_split=load_split, checkpoint=checkpoint, step=step, reference=reference.description, run=run,
            registry=registry,
        )
    finally:
        for module, training in modes:
            module.training = training


def _split_loader(resolved: "ResolvedRun", data_cache: Optional[Path],
                  load_data: Callable[..., Any]) -> Callable[[str], Any]:
    """A ``load_split(split)`` over the run's dataset; a loader failure means "not available" (``None``)."""

    def load_split(split: str) -> Any:
        try:
            return load_data(resolved, split=split, cache_dir=data_cache)
        except UsageError:
            return None

    return load_split


def evaluate_loaded(
    loaded: "LoadedRun",
    metrics: Optional[Sequence[str]] = None,
    *,
    n_samples: Optional[int] = None,
    seed: int = 0,
    reference: Optional[str] = None,
    n_real: Optional[int] = None,
    device: Optional[torch.device] = None,
    cache_dir: Optional[Path] = None,
    options: Optional[Mapping[str, Any]] = None,
    registry: Optional[Registry] = None,
) -> EvalReport:
    """Evaluate a run rebuilt with :func:`cgan_core.session.load_run`.

    Args:
        loaded: The rebuilt run (model, sample generator, checkpoint).
        metrics: Metric names (default: the run's ``eval.metrics``, then the modality's defaults).
        n_samples: Generated samples (default: ``eval.n_samples``, then the modality's default).
        seed: Seed of the generated samples.
        reference: A dataset name or path to compare with instead of the run's reference split.
        n_real: Use a seeded subset of this many reference samples (default: all).
        device: Feature device (default: the model's).
        cache_dir: Feature cache (default :func:`default_cache_dir`).
        options: Metric options.
        registry: Plugin registry.
    """
    registry = registry or get_registry()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    # Fail on a bad metric name before the (slow) data loading and sampling.
    names = split_metric_names(metrics) or list(getattr(loaded.resolved.config.sections.get("eval"), "metrics", ()) or ())
    resolve_metric_specs(loaded.resolved.modality, names, registry)
    ref = load_reference(loaded.resolved, reference, n_real, seed, cache_dir=loaded.run.path / "cache", registry=registry)
    device = device or _module_device(loaded.model)
    return evaluate_model(
        loaded.model, loaded.resolved, loaded.data_info, ref, names, sample_generator=loaded.sample_generator,
        n_samples=n_samples, seed=seed, device=device, cache_dir=cache_dir, options=options,
        checkpoint=loaded.checkpoint, step=loaded.checkpoint_step, run=str(loaded.run.path), registry=registry,
    )


def _module_device(module: Any) -> torch.device:
    try:
        return next(module.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def evaluate_run(
    run_path: Path,
    metrics: Optional[Sequence[str]] = None,
    *,
    checkpoint: Optional[str] = None,
    n_samples: Optional[int] = None,
    seed: int = 0,
    reference: Optional[str] = None,
    n_real: Optional[int] = None,
    device: str = "cpu",
    use_ema: bool = True,
    cache_dir: Optional[Path] = None,
    options: Optional[Mapping[str, Any]] = None,
    write: bool = True,
    registry: Optional[Registry] = None,
) -> EvalReport:
    """Rebuild a run from its directory, evaluate a checkpoint, and write ``eval/<checkpoint>.json``.

    Raises:
        UsageError: not a run, unknown metric or checkpoint. CganRuntimeError: no usable checkpoint.
    """
    from cgan_core.session import load_run

    loaded = load_run(Path(run_path), checkpoint, device=device, use_ema=use_ema, registry=registry)
    report = evaluate_loaded(loaded, metrics, n_samples=n_samples, seed=seed, reference=reference, n_real=n_real,
                             cache_dir=cache_dir, options=options, registry=registry)
    if write:
        write_report(loaded.run.eval_dir, report)
    return report


__all__ = [
    "EvalReport", "MetricResult", "ReferenceSet", "compute_metrics", "default_cache_dir", "evaluate_loaded",
    "evaluate_model", "evaluate_run", "evaluate_samples", "generate_samples", "load_reference",
    "preserved_rng_state", "reference_from_loaded", "resolve_metric_specs", "split_metric_names", "stack_samples",
    "write_report",
]


def parse_metric_options(pairs: Sequence[str], where: str = "eval.options") -> dict[str, Any]:
    """``["effnet-lite0.image_size=128"]`` -> ``{"effnet-lite0.image_size": 128}`` (values read as YAML scalars).

    Args:
        pairs: ``KEY=VALUE`` strings.
        where: Where they came from (``--option``, ``eval.options``), for the error message.

    Raises:
        UsageError: for an item without ``=``.
    """
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = str(pair).partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{where} takes KEY=VALUE (e.g. effnet-lite0.image_size=128), got '{pair}'")
        try:
            options[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            options[key.strip()] = raw
    return options
