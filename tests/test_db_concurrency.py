"""Two `cgan generate` processes and a training run writing to one database at once lose nothing.

On SQLite this takes care (one writer at a time: WAL, BEGIN IMMEDIATE, busy timeout, retries);
on PostgreSQL (a throwaway cluster, see test_db_support) it checks the same rows under its own
row-level concurrency.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from test_db_support import REPO, TINY_RUN, assert_consistent, db_url, trained_run, wait_for  # noqa: F401


def _query(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(sql))]
    finally:
        engine.dispose()


def _checkpoint_recorded(url: str) -> bool:
    try:
        return bool(_query(url, "SELECT id FROM checkpoints"))
    except (OperationalError, ProgrammingError):  # the training run has not created the tables yet
        return False


def test_two_generates_and_a_training_run_at_once(db_url: str, trained_run: Path, tmp_path: Path) -> None:
    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "cgan_core.cli", *args], cwd=REPO, env=dict(os.environ),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    training_dir = tmp_path / "training"
    training = start("run", "-m", "image", "-p", "dcgan", "--out", str(training_dir), "--max-steps", "12",
                     "--set", "train.checkpoint_every=1", "--set", "train.sample_every=4", *TINY_RUN)
    processes = [training]
    try:
        # Start generating once the training run has recorded its first checkpoint (of twelve).
        assert wait_for(lambda: training.poll() is None and _checkpoint_recorded(db_url),
                        timeout=180, interval=0.1), \
            training.communicate()[1] if training.poll() is not None else "training did not start"
        outs = [tmp_path / "content-a", tmp_path / "content-b"]
        processes += [start("generate", str(trained_run), "-n", "40", "--batch-size", "2", "--seed", str(seed),
                            "--out", str(out)) for seed, out in enumerate(outs)]
        results = [(p.wait(timeout=600), p.communicate()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [code for code, _ in results] == [0, 0, 0], [err[-1500:] for _, (_, err) in results]

    for out in outs:
        assert len(assert_consistent(db_url, out)) == 40
    training_id = json.loads((training_dir / "run.json").read_text())["id"]
    lines = [json.loads(line) for line in (training_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    logged = sum(len(line) - 2 for line in lines)
    assert _query(db_url, f"SELECT count(*) FROM metrics WHERE run_id = '{training_id}'") == [(logged,)]
    assert _query(db_url, f"SELECT count(*), max(step) FROM checkpoints WHERE run_id = '{training_id}'") \
        == [(12, 12)]
    assert _query(db_url, f"SELECT status, step FROM runs WHERE id = '{training_id}'") == [("completed", 12)]
    # The writers really overlapped: content was registered while the training run was running.
    started, finished = _query(db_url, f"SELECT started_at, finished_at FROM runs WHERE id = '{training_id}'")[0]
    first_content = _query(db_url, "SELECT min(created_at) FROM contents")[0][0]
    assert str(started) <= str(first_content) <= str(finished)
    if db_url.startswith("sqlite"):
        assert _query(db_url, "PRAGMA integrity_check") == [("ok",)]
