"""What ``cgan serve`` is configured with: the runs to serve, limits, batching and access control."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

SETTINGS_ENV = "CGAN_SERVE_SETTINGS"
"""Environment variable that carries the settings (JSON) to uvicorn worker processes."""


@dataclass
class ServedRun:
    """One run directory served under a model name.

    Attributes:
        name: The name clients use in ``/v1/models/{name}/generate``.
        path: The run directory written by ``cgan run``.
        checkpoint: ``latest`` (default), ``best``, ``step-N`` or ``N``.
    """

    name: str
    path: str
    checkpoint: Optional[str] = None


@dataclass
class ServeSettings:
    """Configuration of the REST server.

    Attributes:
        runs: The runs to serve.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        use_ema: Serve the EMA generator weights when the checkpoint has them.
        max_n: Largest ``n`` one request may ask for.
        max_body_bytes: Largest request body accepted (413 above).
        request_timeout_s: A generate request that has no result after this long gets a 504.
        batching: Gather concurrent requests for the same model into one generator call.
        max_batch_size: Most samples in one batched generator call.
        max_wait_ms: How long the first request of a batch waits for company.
        api_keys_file: File of SHA-256 hex digests of accepted API keys, one per line.
        insecure_no_auth: Allow serving without keys on a non-loopback host.
        public_gallery: Leave ``/gallery`` and ``/v1/content/{id}`` open when keys are required
            (browsers cannot send bearer tokens from ``<img>`` tags).
        content_dir: Content repository directory for ``store: true`` (default: the store's own).
        db_url: Metadata database URL for ``store: true`` (default: the store's own).
        gallery_limit: Items shown per model in the gallery.
        torch_threads: Intra-op threads of the generator calls (``None``: torch's default). On a
            small machine, fewer threads than cores leave a core to the HTTP event loop.
    """

    runs: list[ServedRun] = field(default_factory=list)
    device: str = "cpu"
    use_ema: bool = True
    max_n: int = 64
    max_body_bytes: int = 16 * 1024
    request_timeout_s: float = 30.0
    batching: bool = True
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    api_keys_file: Optional[str] = None
    insecure_no_auth: bool = False
    public_gallery: bool = False
    content_dir: Optional[str] = None
    db_url: Optional[str] = None
    gallery_limit: int = 48
    torch_threads: Optional[int] = None

    def to_json(self) -> str:
        """Serialise for :data:`SETTINGS_ENV` (worker processes rebuild the app from it)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        """Inverse of :meth:`to_json`."""
        values: dict[str, Any] = json.loads(text)
        values["runs"] = [ServedRun(**run) for run in values.get("runs", [])]
        return cls(**values)

    @classmethod
    def from_env(cls) -> "ServeSettings":
        """Read the settings a parent ``cgan serve`` process put in :data:`SETTINGS_ENV`."""
        text = os.environ.get(SETTINGS_ENV)
        if not text:
            raise RuntimeError(f"{SETTINGS_ENV} is not set; start the server with 'cgan serve RUN_DIR'")
        return cls.from_json(text)
