"""Shared helpers of the database, content, runs and report tests (no tests of its own).

- A throwaway PostgreSQL cluster: ``initdb`` into a temp directory owned by the ``postgres`` user
  (PostgreSQL refuses to run as root), started on a free loopback port, stopped at exit. Set
  ``CGAN_TEST_POSTGRES_URL`` to use an existing server instead. Where no server can be started the
  PostgreSQL tests skip with the reason, except in CI (``CI=true`` or ``CGAN_TEST_REQUIRE_SERVICES=1``)
  where they fail.
- One tiny trained DCGAN run per test session, copied for tests that change it.
- Invariant checks of the content repository.

Test modules import the fixtures from here (``from test_db_support import db_url, ...``); the
expensive objects are module-level singletons, so importing the fixtures into several modules
starts one server and trains one run.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_RUN = ["--set", "model.base_channels=8", "--set", "model.latent_dim=16", "--set", "train.batch_size=16",
            "--set", "data.max_items=64", "--set", "train.n_preview=16", "--set", "train.log_every=1",
            "--set", "train.tensorboard=false",
            "--device", "cpu", "--no-progress"]


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, or ``CGAN_TEST_REQUIRE_SERVICES=1`` as ``.ci/run``
    sets), where nothing may be skipped for want of a service."""
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes")
               for name in ("CI", "CGAN_TEST_REQUIRE_SERVICES"))


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason`` on a workstation; fail in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


# --- PostgreSQL ----------------------------------------------------------------------------------
class PostgresServer:
    """A PostgreSQL cluster in a temp directory, on a free loopback port."""

    def __init__(self) -> None:
        self.url: Optional[str] = os.environ.get("CGAN_TEST_POSTGRES_URL")
        self.error: Optional[str] = None
        self.root: Optional[Path] = None
        self.bindir: Optional[Path] = None
        if self.url is None:
            try:
                self._start()
            except Exception as exc:  # reported by the tests that need the server
                self.error = f"cannot start a PostgreSQL server: {exc}"
                self.stop()

    def _as_owner(self, command: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return command
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", "postgres", "--", *command]

    def _start(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = shutil.which("initdb") or (found[-1] if found else None)
        if initdb is None:
            raise RuntimeError("no initdb found (apt-get install postgresql)")
        self.bindir = Path(initdb).parent
        self.root = Path(tempfile.mkdtemp(prefix="cgan-pg-"))
        if os.geteuid() == 0:
            import pwd

            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user to run the server as "
                                   "(apt-get install postgresql creates it)") from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        data = self.root / "data"
        subprocess.run(self._as_owner([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                       "--no-sync"]), check=True, capture_output=True, timeout=120)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        options = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60",
                                       "-l", str(self.root / "server.log"), "start"]),
                       check=True, capture_output=True, timeout=90)
        atexit.register(self.stop)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        """Stop the server and delete its files."""
        if self.root is None:
            return
        if self.bindir is not None and (self.root / "data" / "postmaster.pid").exists():
            subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m",
                                           "immediate", "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def new_database(self) -> str:
        """A fresh, empty database on the server; returns its URL."""
        import psycopg

        assert self.url is not None
        name = f"cgan_test_{uuid.uuid4().hex[:10]}"
        admin = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"


_POSTGRES: Optional[PostgresServer] = None


def postgres_server() -> PostgresServer:
    """The session's PostgreSQL server (started on first use)."""
    global _POSTGRES
    if _POSTGRES is None:
        _POSTGRES = PostgresServer()
    return _POSTGRES


def make_db_url(backend: str, tmp_path: Path) -> str:
    """A fresh empty database of ``backend`` (``sqlite`` or ``postgresql``)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'cgan-test.db'}"
    server = postgres_server()
    if server.error:
        skip_or_fail(server.error)
    return server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database on each backend, also set as ``$CGAN_DB_URL`` (for the CLI and subprocesses)."""
    url = make_db_url(request.param, tmp_path)
    monkeypatch.setenv("CGAN_DB_URL", url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite database, also set as ``$CGAN_DB_URL``."""
    url = make_db_url("sqlite", tmp_path)
    monkeypatch.setenv("CGAN_DB_URL", url)
    return url


# --- a trained run ------------------------------------------------------------------------------
_TRAINED: Optional[Path] = None


def cgan(*args: str, env: Optional[dict] = None, check: bool = True,
         timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the cgan CLI in a subprocess (as a user would)."""
    merged = dict(os.environ, **(env or {}))
    done = subprocess.run([sys.executable, "-m", "cgan_core.cli", *args], capture_output=True, text=True,
                          env=merged, timeout=timeout, cwd=REPO)
    if check and done.returncode != 0:
        raise AssertionError(f"cgan {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def invoke(*args: str):  # type: ignore[no-untyped-def]
    """Run the cgan CLI in-process; returns the click Result (exceptions are not caught)."""
    from typer.testing import CliRunner

    from cgan_core.cli import build_app

    return CliRunner().invoke(build_app(), list(args), catch_exceptions=False)


def trained_run_template() -> Path:
    """A 6-step tiny DCGAN run (checkpoints at 3 and 6), trained once per session without a database."""
    global _TRAINED
    if _TRAINED is None:
        out = Path(tempfile.mkdtemp(prefix="cgan-trained-")) / "tiny"
        atexit.register(shutil.rmtree, out.parent, True)
        previous = os.environ.get("CGAN_DB_URL")
        os.environ["CGAN_DB_URL"] = "none"
        try:
            result = invoke("run", "-m", "image", "-p", "dcgan", "--out", str(out), "--max-steps", "6",
                            "--set", "train.checkpoint_every=3", "--set", "train.sample_every=3", *TINY_RUN)
        finally:
            if previous is None:
                os.environ.pop("CGAN_DB_URL", None)
            else:
                os.environ["CGAN_DB_URL"] = previous
        assert result.exit_code == 0, result.output
        _TRAINED = out
    return _TRAINED


@pytest.fixture
def trained_run(tmp_path: Path) -> Path:
    """A private copy of the session's tiny trained run (tests may write into it)."""
    target = tmp_path / "tiny"
    shutil.copytree(trained_run_template(), target)
    return target


# --- content invariants ---------------------------------------------------------------------------
def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def visible_files(directory: Path) -> set[str]:
    """Regular files under ``directory`` that are not hidden (staging directories are hidden)."""
    found = set()
    for path in Path(directory).rglob("*"):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts):
            found.add(str(path))
    return found


def content_rows(url: str) -> list[tuple]:
    """(id, path, sha256, state) of every contents row."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(
                text("SELECT id, path, sha256, state FROM contents ORDER BY id"))]
    finally:
        engine.dispose()


def assert_consistent(url: str, directory: Path) -> list[tuple]:
    """Every row is ``ok`` with its file holding its bytes, every file in ``directory`` has a row,
    and no staging directory is left; returns the rows of the files in ``directory``."""
    rows = content_rows(url)
    in_dir = [r for r in rows if Path(r[1]).parent == Path(directory)]
    assert all(r[3] == "ok" for r in rows), rows
    assert {r[1] for r in in_dir} == visible_files(directory)
    for _, path, digest, _ in in_dir:
        assert sha256(Path(path)) == digest, path
    assert not [p for p in Path(directory).iterdir() if p.name.startswith(".cgan-staging-")]
    return in_dir


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
