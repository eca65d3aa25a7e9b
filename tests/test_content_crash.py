"""Crash safety of the content repository: a writer killed with SIGKILL at any point leaves, after
the next `cgan content list`, no row without its file and no file without its row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_db_support import (  # noqa: F401  (fixtures)
    REPO, assert_consistent, db_url, invoke, sqlite_url, trained_run, visible_files, wait_for,
)

# A writer that registers plain files and kills itself with SIGKILL at a chosen point: after the
# files are staged, at the k-th rename into place, after every rename (at the directory fsync), or
# at the k-th unlink of `content rm`.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import cgan_core.content as content
    from cgan_core.db import Database

    url, out, point, k, payload = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    store = content.ContentStore(Database(url))
    calls = {"n": 0}

    def kill_at(name, original):
        def wrapped(*args, **kwargs):
            if point == name:
                if calls["n"] == k:
                    os.kill(os.getpid(), signal.SIGKILL)
                calls["n"] += 1
            return original(*args, **kwargs)
        return wrapped

    os.replace = kill_at("replace", os.replace)
    content.fsync_dir = kill_at("fsync", content.fsync_dir)
    Path.unlink = kill_at("unlink", Path.unlink)
    if point == "unlink":
        store.remove(store.list())
        sys.exit(0)
    with store.batch(out) as batch:
        staged = []
        for i in range(6):
            path = batch.staging / f"item-{i}.bin"
            path.write_bytes(f"{payload}-{i}".encode())
            staged.append(content.StagedFile(path=path, modality="bytes", seed=0, sample_index=i))
        if point == "staged":
            os.kill(os.getpid(), signal.SIGKILL)
        batch.commit(staged)
""")


def _child(url: str, out: Path, point: str, k: int = 0, payload: str = "v1") -> int:
    return subprocess.run([sys.executable, "-c", CHILD, url, str(out), point, str(k), payload], cwd=REPO,
                          capture_output=True, timeout=120).returncode


@pytest.mark.parametrize("point,k", [("staged", 0), ("replace", 0), ("replace", 3), ("fsync", 0)])
def test_a_writer_killed_anywhere_is_reconciled_by_the_next_list(sqlite_url: str, tmp_path: Path, point: str,
                                                                  k: int) -> None:
    out = tmp_path / "content"
    assert _child(sqlite_url, out, point, k) == -signal.SIGKILL
    result = invoke("content", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = assert_consistent(sqlite_url, out)
    # Files already renamed, or staged and registered, are kept; nothing is kept half-way.
    expected = {"staged": 0, "replace": 6, "fsync": 6}[point]
    assert len(rows) == expected
    assert len(json.loads(result.stdout)) == expected
    assert invoke("content", "list", "--json").stdout == result.stdout  # nothing left to repair
    assert _scalar_writers(sqlite_url) == 0


def test_a_killed_overwrite_and_a_killed_rm_are_finished(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "content"
    assert _child(db_url, out, "none") == 0
    assert_consistent(db_url, out)
    # Killed while replacing the bytes of registered files with new ones: the new bytes win.
    assert _child(db_url, out, "replace", 2, payload="v2") == -signal.SIGKILL
    assert invoke("content", "list").exit_code == 0
    rows = assert_consistent(db_url, out)
    assert sorted(Path(r[1]).read_bytes() for r in rows) == sorted(f"v2-{i}".encode() for i in range(6))
    # Killed half-way through `content rm`: the deletion is finished.
    assert _child(db_url, out, "unlink", 2) == -signal.SIGKILL
    assert invoke("content", "list").exit_code == 0
    assert assert_consistent(db_url, out) == []
    assert visible_files(out) == set()


def _scalar_writers(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM content_writers")).scalar()
    finally:
        engine.dispose()


def test_sigkill_of_cgan_generate_mid_way(sqlite_url: str, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "content"
    process = subprocess.Popen([sys.executable, "-m", "cgan_core.cli", "generate", str(trained_run), "-n", "400",
                                "--batch-size", "2", "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        # Kill once some batches are registered and more are on their way.
        started = wait_for(lambda: out.is_dir() and len([p for p in out.iterdir() if p.suffix == ".png"]) >= 6,
                           timeout=120, interval=0.01)
        assert started, process.stderr.read().decode() if process.poll() is not None else "no content appeared"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert invoke("content", "list").exit_code == 0
    rows = assert_consistent(sqlite_url, out)
    assert 0 < len(rows) < 400
    # Generating again completes the set without duplicating what survived.
    done = invoke("generate", str(trained_run), "-n", "20", "--batch-size", "2", "--out", str(out))
    assert done.exit_code == 0, done.output
    kept = {r[1]: r[0] for r in rows if int(Path(r[1]).stem.rsplit("-", 1)[1]) < 20}
    after = assert_consistent(sqlite_url, out)
    assert len(after) == max(20, len(rows))
    assert {r[1]: r[0] for r in after if r[1] in kept} == kept  # surviving rows keep their ids
