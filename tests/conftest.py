"""Shared fixtures: an isolated cgan home per test session and a fresh plugin registry per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CGAN = [sys.executable, "-m", "cgan_core.cli"]


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep databases, caches and content of the tests out of the user's home."""
    home = tmp_path_factory.mktemp("cgan-home")
    os.environ["CGAN_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Each test sees the plugins as its own environment selects them."""
    from cgan_core.plugins import reset_registry

    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def cli():
    """Invoke the cgan CLI in-process: ``cli("list", "models")`` -> click Result."""
    from typer.testing import CliRunner

    from cgan_core.cli import build_app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(build_app(), list(args), catch_exceptions=False)

    return invoke


TINY_DCGAN = ["--set", "model.base_channels=8", "--set", "model.latent_dim=16", "--set", "train.batch_size=16"]
