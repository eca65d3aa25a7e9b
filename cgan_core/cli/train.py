"""``cgan run``: train a model of a modality on a dataset into a run directory."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from cgan_core.cli.common import reports_errors
from cgan_core.config import diff_configs, read_run_config_dict
from cgan_core.errors import UsageError
from cgan_core.runs import RunDir

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.distributed import DistributedContext


def _flag_overrides(max_steps: Optional[int], seed: Optional[int], device: Optional[str],
                    deterministic: bool) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if max_steps is not None:
        overrides["train.max_steps"] = max_steps
    if seed is not None:
        overrides["train.seed"] = seed
    if device is not None:
        overrides["train.device"] = device
    if deterministic:
        overrides["train.deterministic"] = True
    return overrides


def torchrun_arguments(ctx: typer.Context, nproc: int) -> list[str]:
    """The command that re-runs this ``cgan run`` under torchrun with ``nproc`` local processes.

    Only the options the user gave are passed on (``--nproc`` itself is dropped), read from the
    command's context so the command stays in step with the options ``run`` has.
    """
    args: list[str] = []
    for param in ctx.command.params:
        if param.name == "nproc" or param.param_type_name != "option" or param.name is None:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[param.name]
        if getattr(param, "is_flag", False):
            if value:
                args.append(param.opts[0])
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
        elif param.multiple:
            for item in value:
                args += [param.opts[0], str(item)]
        elif value is not None:
            args += [param.opts[0], str(value)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "cgan_core.cli", "run", *args]


@reports_errors
def run_command(
    ctx: typer.Context,
    modality: Optional[str] = typer.Option(None, "--modality", "-m", help="Modality, e.g. image, text, video."),
    plugin: Optional[str] = typer.Option(None, "--plugin", "-p", help="Model name, e.g. dcgan, seqgan, tgan."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset name or path (default: the modality's)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    set_options: List[str] = typer.Option([], "--set", "-s", help="Override a config key: section.key=value."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Training steps (train.max_steps)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: runs/PLUGIN-TIME)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (train.seed)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    deterministic: bool = typer.Option(False, "--deterministic", help="Deterministic kernels."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint."),
    auto_resume: bool = typer.Option(False, "--auto-resume", help="Continue the run in --out if it holds one, "
                                     "else start it (for jobs that restart: Kubernetes, pipelines)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
    force: bool = typer.Option(False, "--force", help="With --resume, accept a config that differs."),
    strict_data: bool = typer.Option(False, "--strict-data", help="Fail on the first unreadable data item."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    db: Optional[str] = typer.Option(None, "--db", help="Metadata database URL (default: $CGAN_DB_URL or the "
                                     "SQLite file under $CGAN_HOME; 'none' records nothing)."),
    nproc: Optional[int] = typer.Option(None, "--nproc", help="Train with N local processes (re-runs this command "
                                        "under torchrun; gloo on CPU, NCCL on GPUs)."),
) -> None:
    """Train a GAN: cgan run --modality image --plugin dcgan [--dataset digits]."""
    from cgan_core import distributed

    if nproc is not None and nproc != 1:
        if nproc < 1:
            raise UsageError(f"--nproc must be 1 or more, got {nproc}")
        if distributed.launched_by_torchrun():
            raise UsageError("--nproc cannot be used under torchrun; torchrun's --nproc-per-node sets the processes")
        raise typer.Exit(subprocess.call(torchrun_arguments(ctx, nproc)))
    from cgan_core.plugins import get_registry
    from cgan_core.session import resolve_run

    if auto_resume:
        if out is None or resume or overwrite:
            raise UsageError("--auto-resume needs --out and excludes --resume and --overwrite")
        resume = RunDir(out).exists()
    if resume and out is None:
        raise UsageError("--resume needs --out pointing at the run to continue")
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    frozen: Optional[dict[str, Any]] = None
    if resume and RunDir(out).exists():  # type: ignore[arg-type]
        frozen = read_run_config_dict(RunDir(out).config_path)  # type: ignore[arg-type]
        modality = modality or frozen["modality"]
        plugin = plugin or frozen["plugin"]
        dataset = dataset or frozen["dataset"]
    if not modality or not plugin:
        raise UsageError("cgan run needs --modality and --plugin (see 'cgan list models')")
    registry = get_registry()
    overrides = _flag_overrides(max_steps, seed, device, deterministic)
    resolved = resolve_run(modality, plugin, dataset, config, set_options, overrides, registry, base=frozen)
    run_config = resolved.config
    dist = distributed.init_distributed(run_config.train.device)  # under torchrun: join the process group
    try:
        _train(resolved, run_config, registry, frozen, dist, out, plugin, config, set_options, overrides, resume,
               overwrite, force, strict_data, progress, db)
    finally:
        if dist.enabled:
            distributed.teardown_distributed()


def _train(resolved: Any, run_config: Any, registry: Any, frozen: Optional[dict[str, Any]],
           dist: "DistributedContext", out: Optional[Path], plugin: str, config: Optional[Path],
           set_options: List[str], overrides: dict[str, Any], resume: bool, overwrite: bool, force: bool,
           strict_data: bool, progress: bool, db: Optional[str]) -> None:
    """The body of ``cgan run`` once the config is resolved; rank 0 alone writes files."""
    from cgan_core import distributed
    from cgan_core.cli.progress import ProgressCallback
    from cgan_core.db.callback import run_record_callbacks
    from cgan_core.session import build_model, load_data
    from cgan_core.trainer import Trainer, seed_everything

    if out is None:
        out = distributed.broadcast_object(Path("runs") / f"{plugin}-{time.strftime('%Y%m%d-%H%M%S')}")
    run = RunDir(out)
    if frozen is not None and not force:
        base = frozen if (config is None and not set_options and not overrides) else None
        if base is None:
            differences = diff_configs(frozen, run_config.to_dict())
            if differences:
                raise UsageError("the config differs from the run being resumed: " + "; ".join(differences)
                                 + " (pass --force to resume anyway)")
    distributed.run_on_main(lambda: run.prepare(resume=resume, overwrite=overwrite))
    if frozen is not None and not force:
        from cgan_core.session import resolve_from_run

        resolved = resolve_from_run(run, registry)  # continue with exactly the frozen config
        run_config = resolved.config

    train = run_config.train
    seed_everything(train.seed, train.deterministic)
    # Rank 0 loads first (filling any cache in the run), then the others read the same data.
    data = distributed.run_on_main(lambda: load_data(resolved, strict=strict_data, cache_dir=run.path / "cache"))
    if data is None:
        data = load_data(resolved, strict=strict_data, cache_dir=run.path / "cache")
    if data.skipped.count and dist.is_main:
        typer.echo(f"skipped {data.skipped.count} unreadable item(s) of '{run_config.dataset}'; first: "
                   f"{data.skipped.reasons[0]}", err=True)
    distributed.run_on_main(lambda: _write_run_files(run, run_config, data, frozen is None or force))
    model = build_model(resolved, data.info)
    loss = registry.loss(train.loss)
    callbacks = [ProgressCallback()] if progress and dist.is_main else []
    if run_config.eval.every > 0:  # evaluation during training (--set eval.every=N)
        from cgan_core.eval_callback import EvaluationCallback

        callbacks.append(EvaluationCallback.from_config(resolved, registry=registry))
    callbacks += run_record_callbacks(run, db)
    trainer = Trainer(model, data, run_config, loss, run=run, modality=resolved.modality, callbacks=callbacks,
                      device=dist.device)
    logs = trainer.fit(resume=resume)
    if not dist.is_main:
        return
    summary = " ".join(f"{k}={v:.4g}" for k, v in logs.items())
    typer.echo(f"run written to {run.path} (step {trainer.step}, checkpoint {trainer.last_checkpoint}) {summary}")
    latest = run.latest_sample()
    if latest is not None:
        typer.echo(f"latest samples: {latest}")


def _write_run_files(run: RunDir, run_config: Any, data: Any, write_config: bool) -> None:
    if write_config:
        from cgan_core.fileio import atomic_write_text

        atomic_write_text(run.config_path, run_config.to_yaml())
    run.write_data_info(data.info)
    run.update_info(modality=run_config.modality, plugin=run_config.plugin, dataset=run_config.dataset,
                    data={"items": len(data), "skipped": data.skipped.count, "fingerprint": data.fingerprint,
                          "source": data.source})
