"""The ``cgan`` command-line app (Typer). ``main`` is the console-script entry point."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from cgan_core.cli.content import content_app
from cgan_core.cli.evaluate import evaluate_command
from cgan_core.cli.generate import generate_command
from cgan_core.cli.info import env_command, list_command, plugins_command
from cgan_core.cli.pipeline import pipeline_app
from cgan_core.cli.serve import serve_command
from cgan_core.cli.report import report_command
from cgan_core.cli.runs import runs_app
from cgan_core.cli.train import run_command


def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """cgan: a plugin-based multimodal GAN toolkit (images, text, video)."""
    if debug:
        os.environ["CGAN_DEBUG"] = "1"


def build_app(with_plugins: bool = True) -> typer.Typer:
    """Create the Typer app with the core commands and every plugin's commands."""
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=True,
                      context_settings={"help_option_names": ["-h", "--help"]})
    app.callback()(_root)
    app.command("run")(run_command)
    app.command("generate")(generate_command)
    app.command("evaluate")(evaluate_command)
    app.command("plugins")(plugins_command)
    app.command("list")(list_command)
    app.command("env")(env_command)
    app.command("serve")(serve_command)
    app.add_typer(content_app, name="content")
    app.add_typer(runs_app, name="runs")
    app.add_typer(pipeline_app, name="pipeline")
    app.command("report")(report_command)
    if with_plugins:
        from cgan_core.errors import CganError
        from cgan_core.plugins import get_registry

        try:
            get_registry().add_commands(app)
        except CganError as exc:  # CGAN_STRICT_PLUGINS made a plugin failure fatal
            typer.echo(f"error: {exc}", err=True)
            raise SystemExit(exc.exit_code)
    return app


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point."""
    app = build_app()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="cgan")
