"""Content registration speed: cgan's content store against plain SQLAlchemy Core inserts.

For SQLite (a temp file, cgan's settings: WAL, synchronous=FULL) and PostgreSQL it registers the
same rows three ways and prints one JSON document with rows/s and ratios:

- ``core_insert``: the reference, ``connection.execute(insert(contents), rows)`` per batch, one
  transaction per batch, on the same engine (same pragmas) as cgan;
- ``store_db``: what the content store does in the database per batch (upsert the rows as
  ``pending`` after looking up the paths, then mark them ``ok``: two transactions);
- ``store_register``: ``ContentBatch.commit`` as ``cgan generate`` calls it: fsync and sha256 of
  every staged file, the two transactions, the renames into place and the directory fsync.

PostgreSQL comes from ``--postgres-url``, else ``$CGAN_BENCH_POSTGRES_URL``, else a throwaway
cluster (``initdb`` from Debian's postgresql, run as the ``postgres`` user when root, default
``fsync=on``); it is left out, with the reason, when none can be had.

    python benchmarks/content_store.py [--rows 2048] [--batch 256] [--repeats 3] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from sqlalchemy import MetaData, insert, select, update

from cgan_core.content import ContentStore, StagedFile
from cgan_core.db import Database
from cgan_core.db.models import CONTENT_OK, CONTENT_PENDING, Base, Content, utcnow
from cgan_core.db.records import upsert


def _rows(paths: list[str], token: str) -> list[dict[str, Any]]:
    now = utcnow()
    return [{"path": p, "sha256": f"{i:064x}", "size": 1024, "modality": "image", "format": "png", "seed": 0,
             "sample_index": i, "run_id": None, "checkpoint": "step-00000100", "checkpoint_id": None,
             "created_at": now, "metadata": {"checkpoint_step": 100}, "state": CONTENT_PENDING, "txn": token}
            for i, p in enumerate(paths)]


def bench_core(db: Database, batches: list[list[str]]) -> float:
    """Plain Core inserts of the same rows into a copy of the contents table; returns seconds."""
    suffix = uuid.uuid4().hex[:8]
    metadata = MetaData()
    for referenced in ("datasets", "runs", "checkpoints"):  # so the copy's foreign keys resolve
        Base.metadata.tables[referenced].to_metadata(metadata)
    table = Content.__table__.to_metadata(metadata, name=f"contents_core_{suffix}")
    for item in [*table.indexes, *table.constraints]:  # same indexes, names unique in the database
        if item.name:
            item.name = f"{item.name}_{suffix}"
    table.create(db.engine)
    try:
        started = time.perf_counter()
        for batch in batches:
            rows = _rows(batch, "core")
            for row in rows:
                row["state"], row["txn"] = CONTENT_OK, None
            with db.engine.begin() as connection:
                connection.execute(insert(table), rows)
        return time.perf_counter() - started
    finally:
        table.drop(db.engine)


def bench_store_db(db: Database, batches: list[list[str]]) -> float:
    """The content store's two transactions per batch, without files; returns seconds."""
    started = time.perf_counter()
    for batch in batches:
        token = uuid.uuid4().hex

        def register(session: Any, batch: list[str] = batch, token: str = token) -> None:
            session.execute(select(Content.path, Content.sha256, Content.state).where(Content.path.in_(batch))).all()
            upsert(session, Content.__table__, _rows(batch, token), keys=("path",))

        db.write(register)
        db.write(lambda session, token=token: session.execute(
            update(Content).where(Content.txn == token).values(state=CONTENT_OK, txn=None)))
    return time.perf_counter() - started


def bench_store_register(db: Database, rows: int, batch_size: int, workdir: Path) -> float:
    """``ContentBatch.commit`` of staged 1 KiB files, as ``cgan generate`` uses it; returns seconds
    spent in ``commit`` (writing the staged files is the modality writer's work, not timed)."""
    store = ContentStore(db)
    out = workdir / f"content-{uuid.uuid4().hex[:8]}"
    elapsed = 0.0
    with store.batch(out) as batch:
        for start in range(0, rows, batch_size):
            staged = []
            for index in range(start, min(rows, start + batch_size)):
                path = batch.staging / f"sample-{index:06d}.png"
                path.write_bytes(os.urandom(1024))
                staged.append(StagedFile(path=path, modality="image", format="png", seed=0, sample_index=index,
                                         checkpoint="step-00000100", metadata={"checkpoint_step": 100}))
            began = time.perf_counter()
            batch.commit(staged)
            elapsed += time.perf_counter() - began
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


def measure(url: str, rows: int, batch_size: int, repeats: int, workdir: Path) -> dict[str, Any]:
    """Median rows/s of each way on one database, alternating the ways between repeats."""
    times: dict[str, list[float]] = {"core_insert": [], "store_db": [], "store_register": []}
    with Database(url) as db:
        for repeat in range(repeats):
            paths = [f"/bench/{repeat}-{uuid.uuid4().hex[:6]}/sample-{i:06d}.png" for i in range(rows)]
            batches = [paths[i:i + batch_size] for i in range(0, rows, batch_size)]
            times["core_insert"].append(bench_core(db, batches))
            times["store_db"].append(bench_store_db(db, batches))
            times["store_register"].append(bench_store_register(db, rows, batch_size, workdir))
    rates = {name: round(rows / statistics.median(seconds), 1) for name, seconds in times.items()}
    return {
        "rows_per_s": rates,
        "ratio_store_db_vs_core": round(rates["store_db"] / rates["core_insert"], 3),
        "ratio_store_register_vs_core": round(rates["store_register"] / rates["core_insert"], 3),
    }


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp directory on a free loopback port (stopped by ``stop``)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = shutil.which("initdb") or (found[-1] if found else None)
        if initdb is None:
            raise RuntimeError("no initdb (apt-get install postgresql)")
        self.bindir = Path(initdb).parent
        self.root = Path(tempfile.mkdtemp(prefix="cgan-bench-pg-"))
        if os.geteuid() == 0:
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run([initdb, "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres", "--no-sync"])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-w", "-l", str(self.root / "log"),
                   "-o", f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1", "start"])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, command: list[str]) -> None:
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        """Stop the server and remove its files."""
        try:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _with_postgres(url: Optional[str], work: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    if url:
        return dict(work(url), server="given")
    try:
        server = ThrowawayPostgres()
    except Exception as exc:
        return {"skipped": f"no PostgreSQL server: {exc}"}
    try:
        return dict(work(server.url), server="throwaway cluster, fsync on")
    finally:
        server.stop()


def main(argv: Optional[list[str]] = None) -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256, help="Rows per batch (cgan generate's default).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=os.environ.get("CGAN_BENCH_POSTGRES_URL"))
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="cgan-bench-content-"))
    try:
        sqlite = measure(f"sqlite:///{workdir / 'bench.db'}", args.rows, args.batch, args.repeats, workdir)
        postgres = _with_postgres(args.postgres_url,
                                  lambda url: measure(url, args.rows, args.batch, args.repeats, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({
        "benchmark": "content_store", "rows": args.rows, "batch": args.batch, "repeats": args.repeats,
        "sqlite": sqlite, "postgresql": postgres,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
    }, indent=2))


if __name__ == "__main__":
    main()
