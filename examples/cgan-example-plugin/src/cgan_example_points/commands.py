"""``cgan points ...``: the command group this plugin adds to the ``cgan`` CLI.

Plugin commands are loaded by every ``cgan`` invocation (for ``--help`` and completion), so
this module imports only Typer and ``cgan_core``; torch is imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cgan_core import UsageError, reports_errors

points_app = typer.Typer(help="Commands of the points plugin (2-D Gaussian mixtures).", no_args_is_help=True)


@points_app.command("plot")
@reports_errors
def plot_command(
    run_dir: Path = typer.Argument(..., help="A run directory of a points model."),
    n: int = typer.Option(2000, "-n", "--n", help="Points to generate."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="latest (default), best, step-N or N."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="PNG to write (default: RUN/points-plot.png)."),
) -> None:
    """Scatter-plot generated points over the data's modes and report mode coverage."""
    import torch

    from cgan_core import load_run

    from cgan_example_points.mixtures import mode_statistics
    from cgan_example_points.writers import write_points_preview

    if n <= 0:
        raise UsageError(f"-n must be a positive number of points, got {n}")
    loaded = load_run(run_dir, checkpoint)
    if loaded.resolved.config.modality != "points":
        raise UsageError(f"'{run_dir}' is a run of modality '{loaded.resolved.config.modality}', not points")
    points = loaded.model.sample(n, generator=torch.Generator().manual_seed(seed),
                                 generator_module=loaded.sample_generator)
    path = write_points_preview(points, out or loaded.run.path / "points-plot.png", loaded.data_info)
    message = f"wrote {path} ({n} points from checkpoint {loaded.checkpoint})"
    if "modes" in loaded.data_info:
        stats = mode_statistics(points, torch.tensor(loaded.data_info["modes"]), float(loaded.data_info["std"]))
        message += (f"; modes covered {stats.covered}/{stats.total}, "
                    f"high-quality fraction {stats.high_quality_fraction:.3f}")
    typer.echo(message)
