"""``cgan serve``: a REST API (FastAPI under uvicorn) generating content from trained runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List, Optional

import typer

from cgan_core.cli.common import reports_errors
from cgan_core.errors import MissingDependencyError, UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_run_arguments(values: List[str], checkpoint: Optional[str]) -> list:
    """``DIR`` or ``NAME=DIR`` arguments -> :class:`~cgan_core.serve.settings.ServedRun` list.

    Raises:
        UsageError: a directory is not a run, a name is malformed or used twice.
    """
    from cgan_core.runs import RunDir
    from cgan_core.serve.settings import ServedRun

    runs: list = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).resolve().name, value
        if not _NAME.match(name):
            raise UsageError(f"model name '{name}' (from '{value}') must be 1-64 letters, digits, '.', '_' or '-' "
                             "starting with a letter or digit; pass NAME=RUN_DIR to choose one")
        RunDir.open(Path(path))
        if any(run.name == name for run in runs):
            raise UsageError(f"two runs would be served as '{name}'; name them with NAME=RUN_DIR")
        runs.append(ServedRun(name=name, path=str(Path(path).resolve()), checkpoint=checkpoint))
    return runs


def _positive(value: float, flag: str) -> None:
    if value <= 0:
        raise UsageError(f"{flag} must be positive, got {value:g}")


@reports_errors
def serve_command(
    runs: Optional[List[str]] = typer.Argument(None, help="Run directories to serve; NAME=RUN_DIR sets the model "
                                                         "name (default: the directory name)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (each loads every model)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="latest (default), best, step-N or N."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Serve the live generator instead of its EMA."),
    max_n: int = typer.Option(64, "--max-n", help="Most samples one request may ask for."),
    max_body_bytes: int = typer.Option(16 * 1024, "--max-body-bytes", help="Largest request body (413 above)."),
    timeout: float = typer.Option(30.0, "--timeout", help="Per-request timeout in seconds (504 after)."),
    batching: bool = typer.Option(True, "--batching/--no-batching",
                                  help="Gather concurrent requests for a model into one generator call."),
    max_batch_size: int = typer.Option(64, "--max-batch-size", help="Most samples in one batched generator call."),
    max_wait_ms: float = typer.Option(2.0, "--max-wait-ms", help="How long a batch waits for more requests."),
    api_keys_file: Optional[Path] = typer.Option(None, "--api-keys-file",
                                                 help="File of SHA-256 hex digests of API keys, one per line "
                                                      "(plain keys can also come from CGAN_API_KEYS)."),
    insecure_no_auth: bool = typer.Option(False, "--insecure-no-auth",
                                          help="Serve without API keys on a non-loopback host."),
    public_gallery: bool = typer.Option(False, "--public-gallery",
                                        help="Leave /gallery and /v1/content open when API keys are required."),
    content_dir: Optional[Path] = typer.Option(None, "--content-dir", help="Content repository for store: true."),
    db: Optional[str] = typer.Option(None, "--db", help="Metadata database URL (default: CGAN_DB_URL or the "
                                                        "default SQLite file)."),
    torch_threads: Optional[int] = typer.Option(None, "--torch-threads",
                                                help="Intra-op threads of generator calls (default: torch's)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    hash_key: Optional[str] = typer.Option(None, "--hash-key",
                                           help="Print the SHA-256 digest of KEY ('-' reads stdin) for an API "
                                                "keys file, and exit."),
) -> None:
    """Serve trained runs over HTTP: cgan serve runs/digits [--port 8000]."""
    from cgan_core.serve.auth import ApiKeys, check_listen_policy
    from cgan_core.serve.auth import hash_key as digest_of

    if hash_key is not None:
        key = sys.stdin.readline().rstrip("\r\n") if hash_key == "-" else hash_key
        if not key:
            raise UsageError("--hash-key needs a non-empty key")
        typer.echo(digest_of(key))
        return
    if not runs:
        raise UsageError("cgan serve needs at least one RUN_DIR (a directory written by 'cgan run')")
    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn")):
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(package, "cgan serve", "serve") from None
    for value, flag in ((max_n, "--max-n"), (max_body_bytes, "--max-body-bytes"), (timeout, "--timeout"),
                        (max_batch_size, "--max-batch-size"), (workers, "--workers")):
        _positive(value, flag)
    if torch_threads is not None:
        _positive(torch_threads, "--torch-threads")
    if max_wait_ms < 0:
        raise UsageError(f"--max-wait-ms must be 0 or more, got {max_wait_ms:g}")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {port}")
    from cgan_core.serve.server import serve_forever
    from cgan_core.serve.settings import ServeSettings
    from cgan_core.trainer import resolve_device

    resolve_device(device)  # an unusable device is a usage error now, not a failed model later

    settings = ServeSettings(
        runs=parse_run_arguments(runs, checkpoint), device=device, use_ema=not no_ema, max_n=max_n,
        max_body_bytes=max_body_bytes, request_timeout_s=timeout, batching=batching,
        max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
        api_keys_file=str(api_keys_file) if api_keys_file else None, insecure_no_auth=insecure_no_auth,
        public_gallery=public_gallery, content_dir=str(content_dir) if content_dir else None, db_url=db,
        torch_threads=torch_threads,
    )
    keys = ApiKeys.load(settings.api_keys_file)
    check_listen_policy(host, keys, insecure_no_auth)
    if not keys.enabled:
        typer.echo(f"no API keys configured: anyone who can reach {host}:{port} can generate", err=True)
    serve_forever(settings, host, port, workers=workers, log_level=log_level)
