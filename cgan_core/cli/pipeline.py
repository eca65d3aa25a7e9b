"""``cgan pipeline run|status``: declared stages (prepare -> train -> evaluate -> generate -> export)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import typer

from cgan_core.cli.common import print_json, reports_errors
from cgan_core.errors import UsageError

pipeline_app = typer.Typer(no_args_is_help=True, help="Run a pipeline of stages, skipping those already up to date.")


def _echo(line: str) -> None:
    typer.echo(line)
    sys.stdout.flush()  # keep our lines in order with the stages' own output


@pipeline_app.command("run")
@reports_errors
def pipeline_run_command(
    file: Path = typer.Argument(..., help="The pipeline file (YAML)."),
    force: bool = typer.Option(False, "--force", help="Run every stage, even those that are up to date."),
    engine: str = typer.Option("local", "--engine", help="local (default) or prefect (a Prefect flow; "
                               "pip install 'cgan[prefect]')."),
    stage: List[str] = typer.Option([], "--stage", help="Run only this stage (repeatable), e.g. one Airflow "
                                    "task per stage."),
) -> None:
    """Run the stages in order; a stage whose inputs and settings did not change is skipped.

    A failed or killed pipeline, run again, starts at the stage that did not finish.
    """
    from cgan_core.pipeline import load_pipeline, prefect_flow, run_pipeline

    pipeline = load_pipeline(file)
    if engine == "local":
        plans = run_pipeline(pipeline, force=force, echo=_echo, only=stage)
    elif stage:
        raise UsageError("--stage runs single stages locally; it cannot be combined with --engine prefect")
    elif engine == "prefect":
        results = prefect_flow(pipeline, force=force)()
        ran = sum(1 for result in results if result["ran"])
        _echo(f"[{pipeline.name}] prefect flow finished: {ran} stage(s) ran, {len(results) - ran} skipped")
        return
    else:
        raise UsageError(f"unknown --engine '{engine}'; valid: local, prefect")
    ran = [plan.stage.name for plan in plans if plan.run]
    _echo(f"[{pipeline.name}] done: {len(ran)} stage(s) ran ({', '.join(ran) or 'none'}), "
          f"{len(plans) - len(ran)} up to date; state in {pipeline.state_path}")


@pipeline_app.command("status")
@reports_errors
def pipeline_status_command(
    file: Path = typer.Argument(..., help="The pipeline file (YAML)."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show each stage's last outcome and whether 'cgan pipeline run' would run it now."""
    from cgan_core.pipeline import load_pipeline, pipeline_status

    pipeline = load_pipeline(file)
    rows = pipeline_status(pipeline)
    if as_json:
        print_json({"pipeline": pipeline.name, "workdir": str(pipeline.workdir), "stages": rows})
        return
    width = max(len(row["stage"]) for row in rows)
    for row in rows:
        action = "would run" if row["would_run"] else "skip"
        typer.echo(f"{row['stage']:<{width}}  {row['status']:<12} {action:<9} {row['reason']}")
