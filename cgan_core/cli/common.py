"""Shared CLI plumbing: one-line errors with exit codes, JSON output, the debug switch."""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable, TypeVar

import typer

from cgan_core.errors import CganError

F = TypeVar("F", bound=Callable[..., Any])


def debug_enabled() -> bool:
    """Whether ``--debug`` (or ``CGAN_DEBUG=1``) asked for tracebacks."""
    return os.environ.get("CGAN_DEBUG", "") not in ("", "0", "false")


def fail(message: str, code: int) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def reports_errors(function: F) -> F:
    """Turn cgan errors (and unexpected ones) into one line on stderr and an exit code.

    Usage errors exit 2, runtime errors 1; ``--debug`` re-raises for the full traceback.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except CganError as exc:
            if debug_enabled():
                raise
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:  # an unexpected failure still gets one line, not a traceback
            if debug_enabled():
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            fail(f"{type(exc).__name__}: {first} (run with --debug for the traceback)", 1)

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    """Print a JSON document on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
