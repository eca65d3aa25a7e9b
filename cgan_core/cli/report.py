"""``cgan report``: write a run's self-contained ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cgan_core.cli.common import reports_errors


@reports_errors
def report_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'cgan run'."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the page (default: RUN/report.html)."),
) -> None:
    """Write RUN/report.html: config, samples over training, curves and evaluations, all inline."""
    from cgan_core.report import write_report

    path = write_report(run_dir, out)
    typer.echo(f"report written to {path}")
