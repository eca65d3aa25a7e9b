"""``cgan evaluate``: score a run's checkpoint against reference data, with provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from cgan_core.cli.common import print_json, reports_errors
from cgan_core.errors import UsageError


def format_table(report: Any) -> str:
    """A plain-text table: metric, value, direction, extractor, samples."""
    rows = [("metric", "value", "better", "extractor", "n_real", "n_fake")]
    for result in report.results:
        std = result.details.get("std")
        value = f"{result.value:.6g}" + (f" ± {std:.2g}" if isinstance(std, float) else "")
        rows.append((result.metric, value, "higher" if result.higher_is_better else "lower",
                     result.extractor or "-", str(result.n_real), str(result.n_fake)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for name, reason in report.skipped.items():
        lines.append(f"skipped {name}: {reason}")
    return "\n".join(lines)


@reports_errors
def evaluate_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'cgan run'."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="latest (default), best, step-N or N."),
    metric: List[str] = typer.Option([], "--metric",
                                     help="Metric name, repeatable or comma-separated (default: the modality's)."),
    n_samples: Optional[int] = typer.Option(None, "--n-samples", "-n", help="Generated samples (default: per modality)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated samples."),
    reference: Optional[str] = typer.Option(None, "--reference",
                                            help="Dataset name or path to compare with (default: the run's dataset)."),
    n_real: Optional[int] = typer.Option(None, "--n-real", help="Use a seeded subset of this many reference samples."),
    option: List[str] = typer.Option([], "--option",
                                     help="Metric option KEY=VALUE, e.g. effnet-lite0.image_size=128."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the live generator instead of its EMA."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir",
                                             help="Feature/extractor cache (default: $CGAN_CACHE_DIR/eval, $CGAN_HOME/cache/eval or ~/.cache/cgan/eval)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report (with provenance) as JSON."),
    list_metrics: bool = typer.Option(False, "--list", help="List the metrics that fit this run's modality and exit."),
) -> None:
    """Evaluate a checkpoint: generate N samples and compare them with the reference data.

    Writes RUN/eval/<checkpoint>.json; every number carries its extractor, weights sha256,
    sample counts, seed, preprocessing and cgan version.
    """
    from cgan_core.evaluation import evaluate_run, parse_metric_options

    if list_metrics:
        _print_metric_list(run_dir, as_json)
        return
    if n_samples is not None and n_samples < 2:
        raise UsageError(f"--n-samples must be at least 2, got {n_samples}")
    report = evaluate_run(run_dir, metric, checkpoint=checkpoint, n_samples=n_samples, seed=seed,
                          reference=reference, n_real=n_real, device=device, use_ema=not no_ema,
                          cache_dir=cache_dir, options=parse_metric_options(option, "--option"))
    from cgan_core.db.callback import record_evaluation_results

    record_evaluation_results(run_dir)  # metric rows in the metadata database (a warning if it is unreachable)
    if as_json:
        print_json(report.to_dict())
        return
    typer.echo(f"{report.run} checkpoint {report.checkpoint} (step {report.step}), seed {report.seed}, "
               f"reference: {report.reference}")
    typer.echo(format_table(report))
    typer.echo(f"written to {Path(report.run or run_dir) / 'eval' / (str(report.checkpoint) + '.json')} "
               f"({report.seconds:.1f} s)")


def _print_metric_list(run_dir: Path, as_json: bool) -> None:
    from cgan_core.plugins import get_registry
    from cgan_core.runs import RunDir
    from cgan_core.session import resolve_from_run

    resolved = resolve_from_run(RunDir.open(run_dir))
    metrics = get_registry().metrics(resolved.config.modality)
    defaults = set(resolved.modality.default_metrics)
    if as_json:
        print_json([{"metric": name, "higher_is_better": spec.higher_is_better, "extractor": spec.extractor,
                     "default": name in defaults, "description": spec.description}
                    for name, spec in sorted(metrics.items())])
        return
    for name, spec in sorted(metrics.items()):
        marker = "*" if name in defaults else " "
        typer.echo(f"{marker} {name:28s} {'higher' if spec.higher_is_better else 'lower'} is better  {spec.description}")
