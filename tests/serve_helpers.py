"""Shared pieces of the ``cgan serve`` tests: a tiny trained DCGAN run and a server on loopback."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

API_KEY = "test-key-5f2c"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@functools.lru_cache(maxsize=None)
def tiny_dcgan_run() -> Path:
    """A DCGAN run (base_channels 4, latent 8, 2 steps, EMA) trained once per test process."""
    from typer.testing import CliRunner

    from cgan_core.cli import build_app

    out = Path(tempfile.mkdtemp(prefix="cgan-serve-test-")) / "digits"
    result = CliRunner().invoke(build_app(), [
        "run", "-m", "image", "-p", "dcgan", "--max-steps", "2", "--out", str(out), "--device", "cpu",
        "--no-progress", "--set", "model.base_channels=4", "--set", "model.latent_dim=8",
        "--set", "train.batch_size=8", "--set", "train.ema_decay=0.5", "--set", "train.tensorboard=false",
        "--set", "train.sample_every=0", "--set", "train.n_preview=4",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def start_server(runs: dict[str, Path], keys: Optional[list[str]] = None, backend: Any = None,
                 open_store: bool = True, **settings: Any) -> tuple[Any, Any]:
    """Build the app for ``runs`` (name -> run dir), start it on a free loopback port, wait for
    the models; returns ``(server, app)``. The content repository is the test session's default
    database (``$CGAN_HOME``) with ``settings["content_dir"]`` or the runs' ``generated`` folders."""
    from cgan_core.serve import BackgroundServer, ServedRun, ServeSettings, create_app
    from cgan_core.serve.auth import ApiKeys, hash_key

    config = ServeSettings(runs=[ServedRun(name, str(path)) for name, path in runs.items()], **settings)
    api_keys = ApiKeys([hash_key(k) for k in keys]) if keys else ApiKeys()
    app = create_app(config, keys=api_keys, backend=backend, open_store=open_store)
    server = BackgroundServer(app).start()
    assert app.state.pool.wait_loaded(120)
    return server, app


def environ_without_keys() -> dict[str, str]:
    """The environment minus ``CGAN_API_KEYS`` (tests decide about keys themselves)."""
    return {k: v for k, v in os.environ.items() if k != "CGAN_API_KEYS"}
