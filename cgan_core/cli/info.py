"""``cgan plugins``, ``cgan list`` and ``cgan env``: what is installed and registered."""

from __future__ import annotations

import platform
import sys
from typing import Any

import typer

from cgan_core.cli.common import print_json, reports_errors
from cgan_core.errors import UsageError
from cgan_core.plugins import get_registry
from cgan_core.version import __version__

LIST_KINDS = ("modalities", "models", "datasets", "losses", "metrics")


@reports_errors
def plugins_command(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List plugin packages with version, status and what each registered."""
    registry = get_registry()
    rows = [
        {"name": r.name, "package": r.package, "version": r.version, "module": r.module, "status": r.status,
         "builtin": r.builtin, "error": r.error, "registered": r.registered}
        for r in registry.plugins
    ]
    if json_output:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cgan plugins")
    for column in ("plugin", "package", "version", "status", "registered / error"):
        table.add_column(column)
    for row in rows:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in row["registered"].items()) if row["status"] == "ok" \
            else (row["error"] or "")
        table.add_row(row["name"], row["package"], row["version"], row["status"], what)
    Console(width=160).print(table)


def _entries(kind: str) -> list[dict[str, Any]]:
    registry = get_registry()
    if kind == "modalities":
        return [{"name": s.name, "default_dataset": s.default_dataset, "plugin": registry.owner("modalities", n),
                 "description": s.description} for n, s in registry.modalities.items()]
    if kind == "models":
        return [{"name": s.name, "modality": s.modality, "plugin": registry.owner("models", n),
                 "description": s.description} for n, s in registry.models.items()]
    if kind == "datasets":
        return [{"name": s.name, "modality": s.modality, "plugin": registry.owner("datasets", k),
                 "description": s.description} for k, s in registry.datasets().items()]
    if kind == "losses":
        return [{"name": s.name, "plugin": registry.owner("losses", n), "description": s.description}
                for n, s in registry.losses.items()]
    return [{"name": s.name, "modality": s.modality, "extractor": s.extractor,
             "higher_is_better": s.higher_is_better, "plugin": registry.owner("metrics", k),
             "description": s.description} for k, s in registry.metrics().items()]


@reports_errors
def list_command(
    kind: str = typer.Argument(..., help="modalities, models, datasets, losses or metrics."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List registered modalities, models, datasets, losses or metrics."""
    if kind not in LIST_KINDS:
        raise UsageError(f"cannot list '{kind}'; valid: {', '.join(LIST_KINDS)}")
    rows = _entries(kind)
    if json_output:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"no {kind} registered")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cgan {kind}")
    columns = list(rows[0])
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if row[c] is None else str(row[c]) for c in columns])
    Console(width=160).print(table)


@reports_errors
def env_command(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Versions, devices and plugin statuses, for bug reports."""
    import torch

    registry = get_registry()
    info: dict[str, Any] = {
        "cgan": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_threads": torch.get_num_threads(),
        "plugins": {r.name: f"{r.package} {r.version} {r.status}" for r in registry.plugins},
    }
    for name in ("torchvision", "torchaudio", "av", "gensim", "transformers", "pluggy", "typer", "safetensors",
                 "sqlalchemy", "numpy"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except Exception as exc:  # a broken optional library is reported, not fatal
            info[name] = f"unavailable ({type(exc).__name__})"
    if json_output:
        print_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key}: {value}")
