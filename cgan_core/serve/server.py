"""Running the app under uvicorn: in the foreground (``cgan serve``) or in a background thread."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any, Optional

from cgan_core.serve.settings import SETTINGS_ENV, ServeSettings


def serve_forever(settings: ServeSettings, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
    """Run ``cgan serve`` in the foreground until interrupted.

    Worker processes rebuild the app from ``$CGAN_SERVE_SETTINGS`` through
    :func:`cgan_core.serve.app.create_app_from_env`, so one code path serves 1 or N workers.
    """
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    os.environ[SETTINGS_ENV] = settings.to_json()
    # Model and encoder threads hold the GIL for short stretches of Python; a shorter switch
    # interval than the default 5 ms lets the event loop answer in between.
    sys.setswitchinterval(0.0005)
    log_config = copy.deepcopy(LOGGING_CONFIG)  # cgan.serve lines (model ready/failed) like uvicorn's own
    log_config["loggers"]["cgan"] = {"handlers": ["default"], "level": log_level.upper(), "propagate": False}
    uvicorn.run("cgan_core.serve.app:create_app_from_env", factory=True, host=host, port=port,
                workers=max(1, workers), log_level=log_level, log_config=log_config, timeout_graceful_shutdown=10,
                # The request body limit is enforced in the app; uvicorn's h11 limit guards headers.
                h11_max_incomplete_event_size=64 * 1024)


class BackgroundServer:
    """A uvicorn server on a free loopback port in a daemon thread (tests, benchmarks, notebooks).

    Use as a context manager; ``url`` is ``http://127.0.0.1:PORT``.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", log_level: str = "warning") -> None:
        import uvicorn

        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port = self._socket.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        """Start serving and wait until uvicorn accepts connections."""
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]},
                                        name="cgan-serve-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the background server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
