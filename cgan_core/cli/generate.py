"""``cgan generate``: write content files from a trained run and register them in the content repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from cgan_core.cli.common import reports_errors
from cgan_core.errors import UsageError

DB_OPTION_HELP = "Database URL (default: $CGAN_DB_URL or the SQLite file under $CGAN_HOME)."


def generate_content(run_dir: Path, n: int, seed: int = 0, checkpoint: Optional[str] = None,
                     out: Optional[Path] = None, fmt: Optional[str] = None, device: str = "cpu",
                     use_ema: bool = True, batch_size: int = 256, db_url: Optional[str] = None) -> dict[str, Any]:
    """Generate ``n`` samples from a run's checkpoint into ``out`` and register each file.

    Samples are drawn batch by batch from one ``torch.Generator`` seeded with ``seed``, so the
    same run, checkpoint, seed and batch size give the same bytes; files that are already in
    place with the same bytes keep their rows (no duplicates).

    Returns:
        ``{"out", "checkpoint", "files", "content_ids"}``.
    """
    import torch

    from cgan_core.content import ContentStore
    from cgan_core.db import Database
    from cgan_core.db.records import checkpoint_id, record_checkpoints, record_run
    from cgan_core.session import load_run
    from cgan_core.specs import SampleInfo

    if n <= 0:
        raise UsageError(f"-n must be a positive number of samples, got {n}")
    if batch_size <= 0:
        raise UsageError(f"--batch-size must be positive, got {batch_size}")
    loaded = load_run(run_dir, checkpoint, device=device, use_ema=use_ema)
    modality = loaded.resolved.modality
    formats = list(modality.content_formats) or [None]
    fmt = fmt or formats[0]
    if fmt not in formats:
        raise UsageError(f"format '{fmt}' is not written by modality '{modality.name}'; valid: "
                         f"{', '.join(map(str, formats))}")
    out = Path(out or loaded.run.path / "generated").absolute()
    with Database(db_url) as db:
        def record(session: Any) -> tuple[str, Optional[int]]:
            run_id = record_run(session, loaded.run)
            record_checkpoints(session, run_id, [loaded.run.checkpoints / loaded.checkpoint])
            return run_id, checkpoint_id(session, run_id, loaded.checkpoint)

        run_id, ckpt_id = db.write(record)
        store = ContentStore(db)
        store.reconcile()  # finish what a killed generate left behind before adding to it
        generator = torch.Generator().manual_seed(seed)
        metadata = {"checkpoint_step": loaded.checkpoint_step, "ema": use_ema and loaded.sample_generator
                    is not loaded.model.generator, "batch_size": batch_size, "run_path": str(loaded.run.path.resolve())}
        items = []
        with store.batch(out) as batch:
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                samples = loaded.model.sample(count, generator=generator, generator_module=loaded.sample_generator)
                info = SampleInfo(seed=seed, start_index=start, run=str(loaded.run.path), checkpoint=loaded.checkpoint)
                items += store.add_samples(samples, modality, out, info, loaded.data_info, fmt, run_id=run_id,
                                           checkpoint_id=ckpt_id, metadata=metadata, batch=batch)
    return {"out": str(out), "checkpoint": loaded.checkpoint, "files": [i.path for i in items],
            "content_ids": [i.id for i in items]}


@reports_errors
def generate_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'cgan run'."),
    n: int = typer.Option(16, "-n", "--n", help="Number of samples."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same run, checkpoint and seed give the same content."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="latest (default), best, step-N or N."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Content directory (default: RUN/generated)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Content format (default: the modality's first)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the live generator instead of its EMA."),
    batch_size: int = typer.Option(256, "--batch-size", help="Samples generated and registered per batch."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_OPTION_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the written files and content ids as JSON."),
) -> None:
    """Generate N samples from a run's checkpoint into content files, registered in the database."""
    result = generate_content(run_dir, n, seed, checkpoint, out, fmt, device, not no_ema, batch_size, db)
    if json_output:
        from cgan_core.cli.common import print_json

        print_json(result)
        return
    typer.echo(f"wrote {len(result['files'])} file(s) to {result['out']} from checkpoint {result['checkpoint']}")
