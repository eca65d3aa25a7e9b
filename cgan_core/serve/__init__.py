"""``cgan serve``: a FastAPI app that generates content from trained runs.

Pieces, one job each: :mod:`~cgan_core.serve.settings` (configuration),
:mod:`~cgan_core.serve.pool` (loaded models), :mod:`~cgan_core.serve.generation` (seeded noise,
generator calls, writers), :mod:`~cgan_core.serve.batcher` (request batching),
:mod:`~cgan_core.serve.auth` (API keys), :mod:`~cgan_core.serve.limits` (body size),
:mod:`~cgan_core.serve.storage` (content repository), :mod:`~cgan_core.serve.gallery` (HTML page),
:mod:`~cgan_core.serve.app` (routes) and :mod:`~cgan_core.serve.server` (uvicorn).

FastAPI and uvicorn are the ``serve`` extra: ``pip install 'cgan[serve]'``.
"""

from __future__ import annotations

from cgan_core.serve.settings import ServedRun, ServeSettings

__all__ = ["ServeSettings", "ServedRun", "create_app", "BackgroundServer"]


def __getattr__(name: str):  # FastAPI/uvicorn are imported only when the app is built
    if name == "create_app":
        from cgan_core.serve.app import create_app

        return create_app
    if name == "BackgroundServer":
        from cgan_core.serve.server import BackgroundServer

        return BackgroundServer
    raise AttributeError(f"module 'cgan_core.serve' has no attribute '{name}'")
