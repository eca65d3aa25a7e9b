"""``cgan content``: browse, export, remove and check the generated content repository."""

from __future__ import annotations

from typing import Any, List, Optional

import typer

from cgan_core.cli.common import print_json, reports_errors
from cgan_core.cli.generate import DB_OPTION_HELP
from cgan_core.errors import UsageError

content_app = typer.Typer(help="Generated content registered in the metadata database.", no_args_is_help=True)

RUN_HELP = "Only content of this run (id, name or directory)."


def _store(db_url: Optional[str]) -> Any:
    """An open content store, after finishing the work of any killed writer on this host."""
    from cgan_core.content import ContentStore
    from cgan_core.db import Database

    store = ContentStore(Database(db_url))
    report = store.reconcile()
    if report.recovered_writers:
        typer.echo(f"recovered {report.recovered_writers} interrupted writer(s): {report.completed} file(s) "
                   f"completed, {report.dropped} dropped, {report.deleted} deletion(s) finished", err=True)
    return store


@content_app.command("list")
@reports_errors
def list_command(
    run: Optional[str] = typer.Option(None, "--run", help=RUN_HELP),
    modality: Optional[str] = typer.Option(None, "--modality", help="Only this modality."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Only content from this checkpoint."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Only content generated with this seed."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many rows."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
) -> None:
    """List content files (finishing first what an interrupted 'cgan generate' left)."""
    store = _store(db)
    try:
        items = store.list(run=run, modality=modality, checkpoint=checkpoint, seed=seed, limit=limit)
    finally:
        store.db.close()
    if json_output:
        print_json([item.to_dict() for item in items])
        return
    if not items:
        typer.echo("no content matches")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cgan content ({len(items)})")
    for column in ("id", "run", "checkpoint", "seed", "index", "modality", "format", "bytes", "path"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(str(item.id), item.run or "-", item.checkpoint or "-", str(item.seed),
                      "-" if item.sample_index is None else str(item.sample_index), item.modality, item.format,
                      str(item.size), item.path)
    Console(width=200).print(table)


def _select(store: Any, ids: List[int], run: Optional[str], modality: Optional[str], everything: bool) -> list[Any]:
    if not (ids or run or modality or everything):
        raise UsageError("say which content: content ids, --run, --modality, or --all")
    items = store.list(run=run, modality=modality, ids=ids)
    if ids:
        unknown = sorted(set(ids) - {item.id for item in items})
        if unknown:
            raise UsageError(f"no content with id {', '.join(map(str, unknown))}"
                             + (" matching the filters" if run or modality else "") + "; see 'cgan content list'")
    return items


@content_app.command("export")
@reports_errors
def export_command(
    dest: str = typer.Argument(..., help="A folder or an fsspec URL (file://, memory://, s3://, gs://, ...)."),
    ids: List[int] = typer.Option([], "--id", help="Only these content ids (repeatable)."),
    run: Optional[str] = typer.Option(None, "--run", help=RUN_HELP),
    modality: Optional[str] = typer.Option(None, "--modality", help="Only this modality."),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
) -> None:
    """Copy content (all by default) to DEST as RUN/CHECKPOINT/FILE plus manifest.jsonl."""
    store = _store(db)
    try:
        items = store.list(run=run, modality=modality, ids=ids)
        if not items:
            raise UsageError("no content matches; nothing to export (see 'cgan content list')")
        summary = store.export(items, dest)
    finally:
        store.db.close()
    if json_output:
        print_json(summary)
        return
    typer.echo(f"exported {summary['files']} file(s), {summary['bytes']} bytes, to {dest} "
               f"(manifest: {summary['manifest']})")


@content_app.command("rm")
@reports_errors
def rm_command(
    ids: List[int] = typer.Argument(None, help="Content ids to remove."),
    run: Optional[str] = typer.Option(None, "--run", help=RUN_HELP),
    modality: Optional[str] = typer.Option(None, "--modality", help="Only this modality."),
    everything: bool = typer.Option(False, "--all", help="Remove all content (with the filters, all that match)."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
) -> None:
    """Remove content files and their rows together."""
    store = _store(db)
    try:
        items = _select(store, list(ids or []), run, modality, everything)
        removed = store.remove(items)
    finally:
        store.db.close()
    typer.echo(f"removed {removed} file(s) and their rows")


@content_app.command("fsck")
@reports_errors
def fsck_command(
    verify: bool = typer.Option(False, "--verify", help="Also compare every file's sha256 with its row."),
    repair: bool = typer.Option(False, "--repair", help="Drop rows of missing files, remove corrupt files with "
                                                        "their rows and stale staging directories."),
    remove_untracked: bool = typer.Option(False, "--remove-untracked",
                                          help="With --repair, also delete files in content directories that "
                                               "have no row."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
) -> None:
    """Check that every row has its file and every file its row; exit 1 when problems remain."""
    from cgan_core.content import ContentStore
    from cgan_core.db import Database

    if remove_untracked and not repair:
        raise UsageError("--remove-untracked only works with --repair")
    with Database(db) as database:
        report = ContentStore(database).fsck(verify=verify, repair=repair, remove_untracked=remove_untracked)
    if json_output:
        print_json(report.to_dict())
    else:
        typer.echo(f"checked {report.checked} file(s); recovered {report.recovered_writers} interrupted writer(s) "
                   f"({report.completed} completed, {report.dropped} dropped, {report.deleted} deleted)")
        for label, paths in (("missing", report.missing), ("corrupt", report.corrupt),
                             ("untracked", report.untracked), ("stale staging", report.stale_staging)):
            for path in paths:
                typer.echo(f"{label}: {path}")
        if report.other_hosts:
            typer.echo(f"{report.other_hosts} writer(s) on other hosts were left alone")
        typer.echo("repaired" if report.repaired else ("clean" if report.clean else
                                                       "problems found; run with --repair to fix them"))
    # After --repair only untracked files can remain (they may be the user's own, so they stay
    # unless --remove-untracked).
    remaining = (report.untracked and not remove_untracked) if report.repaired else not report.clean
    if remaining:
        raise typer.Exit(1)
