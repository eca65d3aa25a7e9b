"""``cgan generate``: write content files from a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cgan_core.cli.common import reports_errors
from cgan_core.errors import UsageError


@reports_errors
def generate_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'cgan run'."),
    n: int = typer.Option(16, "-n", "--n", help="Number of samples."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same run, checkpoint and seed give the same content."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="latest (default), best, step-N or N."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: RUN/generated)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Content format (default: the modality's first)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the live generator instead of its EMA."),
) -> None:
    """Generate N samples from a run's checkpoint into content files."""
    import torch

    from cgan_core.session import load_run
    from cgan_core.specs import SampleInfo

    if n <= 0:
        raise UsageError(f"-n must be a positive number of samples, got {n}")
    loaded = load_run(run_dir, checkpoint, device=device, use_ema=not no_ema)
    modality = loaded.resolved.modality
    formats = list(modality.content_formats) or [None]
    fmt = fmt or formats[0]
    if fmt not in formats:
        raise UsageError(f"format '{fmt}' is not written by modality '{modality.name}'; valid: {', '.join(map(str, formats))}")
    out = out or loaded.run.path / "generated"
    generator = torch.Generator().manual_seed(seed)
    samples = loaded.model.sample(n, generator=generator, generator_module=loaded.sample_generator)
    info = SampleInfo(seed=seed, start_index=0, run=str(loaded.run.path), checkpoint=loaded.checkpoint)
    kwargs = {"fmt": fmt} if fmt else {}
    paths = modality.write_samples(samples, out, info, loaded.data_info, **kwargs)
    typer.echo(f"wrote {len(paths)} file(s) to {out} from checkpoint {loaded.checkpoint}")
