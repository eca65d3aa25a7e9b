"""``cgan runs``: list, show, compare and record training runs from the metadata database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from cgan_core.cli.common import print_json, reports_errors
from cgan_core.cli.generate import DB_OPTION_HELP
from cgan_core.errors import UsageError

runs_app = typer.Typer(help="Training runs recorded in the metadata database.", no_args_is_help=True)


def _open(db_url: Optional[str]) -> Any:
    from cgan_core.db import Database

    return Database(db_url)


def _resolve(db: Any, refs: List[str]) -> list[str]:
    """Ids of the runs named by id, name or path; a run directory is recorded (again) first, so
    that what is shown includes its latest checkpoints, log lines and evaluation results."""
    from cgan_core.db.queries import find_run
    from cgan_core.db.records import sync_run
    from cgan_core.runs import RunDir

    ids = []
    for ref in refs:
        if RunDir(Path(ref)).exists():
            ids.append(db.write(lambda session: sync_run(session, RunDir(Path(ref)))))
        else:
            ids.append(db.read(lambda session: find_run(session, ref).id))
    return ids


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value) if not isinstance(value, (dict, list)) else json.dumps(value)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[_value(v) for v in row])
    Console(width=180).print(table)


@runs_app.command("list")
@reports_errors
def list_command(
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
) -> None:
    """List recorded runs, newest first."""
    from cgan_core.db.queries import list_runs

    with _open(db) as database:
        rows = database.read(list_runs)
    if json_output:
        print_json(rows)
        return
    if not rows:
        typer.echo("no runs recorded yet (train with 'cgan run', or record a run with 'cgan runs sync DIR')")
        return
    columns = ["id", "name", "status", "modality", "plugin", "dataset", "step", "latest_checkpoint", "contents",
               "updated_at"]
    _table("cgan runs", columns, [[r[c] for c in columns] for r in rows])


@runs_app.command("show")
@reports_errors
def show_command(
    run: str = typer.Argument(..., help="Run id, name or directory."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
) -> None:
    """Show a run: facts, dataset, checkpoints, latest metrics and evaluations."""
    from cgan_core.db.queries import find_run, run_details

    with _open(db) as database:
        run_id = _resolve(database, [run])[0]
        details = database.read(lambda session: run_details(session, find_run(session, run_id)))
    if json_output:
        print_json(details)
        return
    for key in ("id", "name", "path", "status", "modality", "plugin", "dataset", "step", "latest_checkpoint",
                "contents", "created_at", "finished_at", "host", "cgan_version"):
        typer.echo(f"{key}: {_value(details[key])}")
    if details["dataset_record"]:
        record = details["dataset_record"]
        typer.echo(f"data: {record['items']} items, {record['skipped']} skipped, fingerprint {record['fingerprint']}")
    if details["checkpoints"]:
        _table("checkpoints", ["name", "step", "phase", "created_at"],
               [[c["name"], c["step"], c["phase"], c["created_at"]] for c in details["checkpoints"]])
    if details["metrics"]:
        _table("metrics (last value)", ["metric", "source", "value", "step", "checkpoint"],
               [[m["name"], m["source"], m["value"], m["step"], m["checkpoint"]] for m in details["metrics"].values()])


@runs_app.command("compare")
@reports_errors
def compare_command(
    runs: List[str] = typer.Argument(..., help="Two or more run ids, names or directories."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
) -> None:
    """Compare runs: the config keys that differ and the metrics side by side."""
    from cgan_core.db.queries import compare_runs, find_run

    if len(runs) < 2:
        raise UsageError("cgan runs compare needs at least two runs")
    with _open(db) as database:
        ids = _resolve(database, runs)
        comparison = database.read(lambda session: compare_runs(session, [find_run(session, i) for i in ids]))
    if json_output:
        print_json(comparison)
        return
    names = [f"{name} ({run_id})" for name, run_id in zip(comparison["runs"], comparison["ids"])]
    _table("config differences", ["key", *names], [[k, *v] for k, v in comparison["config_diff"].items()]
           or [["(identical configs)", *[""] * len(names)]])
    _table("metrics", ["metric", *names], [[k, *v] for k, v in comparison["metrics"].items()])


@runs_app.command("sync")
@reports_errors
def sync_command(
    run_dirs: List[Path] = typer.Argument(..., help="Run directories to record."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
) -> None:
    """Record run directories (trained without a database, or elsewhere) in the database."""
    from cgan_core.db.records import sync_run
    from cgan_core.runs import RunDir

    with _open(db) as database:
        for path in run_dirs:
            run = RunDir.open(path)
            run_id = database.write(lambda session: sync_run(session, run))
            typer.echo(f"recorded {path} as run {run_id}")
