"""Recording a training run in the metadata database while it trains.

Only the main process (rank 0) writes. The callback follows the run directory rather than
keeping its own copy of anything: at the start it records the run and its dataset, at each log
interval (at most every ``flush_seconds``) it imports the new lines of ``metrics.jsonl``, at each
checkpoint it records the checkpoint and the evaluation results in ``eval/``, and at the end the
final status. A database that cannot be reached costs a warning, never the training run: the run
directory stays complete and ``cgan runs sync RUN`` records it later.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from cgan_core.callbacks import Callback
from cgan_core.runs import RunDir

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.db.database import Database
    from cgan_core.trainer import Trainer


class DatabaseCallback(Callback):
    """Writes the run, its checkpoints, training log and evaluations to the database.

    Args:
        run: The run directory being trained.
        url: Database URL (``None``: ``$CGAN_DB_URL`` or the default SQLite file).
        flush_seconds: Least time between two imports of new training-log lines (checkpoints
            and the end of training always import).
    """

    name = "database"

    def __init__(self, run: RunDir, url: Optional[str] = None, flush_seconds: float = 2.0) -> None:
        self.run = run
        self.url = url
        self.flush_seconds = flush_seconds
        self.db: Optional["Database"] = None
        self.run_id: Optional[str] = None
        self._offset = 0
        self._last_flush = 0.0
        self._failed = False

    def _guarded(self, what: str, action: Callable[[], Any]) -> None:
        if self._failed:
            return
        try:
            action()
        except Exception as exc:  # the run directory is complete; the database can catch up later
            self._failed = True
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"warning: not recording this run in the metadata database any more ({what}: {first}); "
                  f"record it later with: cgan runs sync {self.run.path}", file=sys.stderr)

    def on_train_start(self, trainer: "Trainer") -> None:
        if not trainer.is_main:
            self._failed = True
            return

        def start() -> None:
            from cgan_core.db.database import Database
            from cgan_core.db.records import forget_train_metrics_after, record_run

            self.db = Database(self.url)

            def work(session: Any) -> str:
                run_id = record_run(session, self.run, status="running")
                forget_train_metrics_after(session, run_id, trainer.step)
                return run_id

            self.run_id = self.db.write(work)
            self._offset = 0  # a resumed run's log was truncated: import it again (upserts are idempotent)
            self._flush()

        self._guarded("opening the database", start)

    def _new_log_records(self) -> list[dict[str, Any]]:
        import json

        path = self.run.metrics_path
        if not path.is_file():
            return []
        with open(path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # only whole lines: the logger may be mid-line
        records = []
        for line in chunk[:end].splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        self._offset += end
        return records

    def _flush(self) -> None:
        from cgan_core.db.records import record_metrics, train_metric_rows

        records = self._new_log_records()
        self._last_flush = time.monotonic()
        if records and self.db is not None and self.run_id is not None:
            rows = train_metric_rows(self.run_id, records, "metrics.jsonl")
            self.db.write(lambda session: record_metrics(session, rows))

    def on_step_end(self, trainer: "Trainer", logs: Mapping[str, float]) -> None:
        if self.db is None or time.monotonic() - self._last_flush < self.flush_seconds:
            return
        self._guarded("recording metrics", self._flush)

    def on_checkpoint(self, trainer: "Trainer", name: str) -> None:
        if self.db is None:
            return

        def checkpoint() -> None:
            from cgan_core.db.records import record_checkpoints, record_evaluations, record_run

            self._flush()

            def work(session: Any) -> None:
                record_run(session, self.run, status="running")
                record_checkpoints(session, self.run_id, [self.run.checkpoints / name])
                record_evaluations(session, self.run_id, self.run)

            self.db.write(work)  # type: ignore[union-attr]

        self._guarded(f"recording checkpoint {name}", checkpoint)

    def on_close(self, trainer: "Trainer") -> None:
        if self.db is None:
            return

        def close() -> None:
            from cgan_core.db.records import record_evaluations, record_run

            self._flush()

            def work(session: Any) -> None:
                record_run(session, self.run)  # the status the trainer wrote to run.json
                record_evaluations(session, self.run_id, self.run)

            self.db.write(work)  # type: ignore[union-attr]

        self._guarded("recording the end of training", close)
        self.db.close()
        self.db = None


def run_record_callbacks(run: RunDir, url: Optional[str] = None) -> list[Callback]:
    """What ``cgan run`` attaches to keep a run's records current: a :class:`DatabaseCallback`
    (unless ``url`` / ``$CGAN_DB_URL`` is ``none``) and the ``report.html`` writer."""
    from cgan_core.db.engine import database_disabled
    from cgan_core.report import ReportCallback

    callbacks: list[Callback] = [] if database_disabled(url) else [DatabaseCallback(run, url)]
    return callbacks + [ReportCallback(run)]


def record_evaluation_results(run_path: Any, url: Optional[str] = None) -> bool:
    """Record a run's ``eval/*.json`` (and the run itself) as metric rows, after ``cgan evaluate``.

    The database is optional here: when it is switched off (``CGAN_DB_URL=none``) nothing is
    done, and when it fails a warning names ``cgan runs sync`` and the evaluation still succeeds.

    Returns:
        Whether the results were recorded.
    """
    from cgan_core.db.engine import database_disabled

    if database_disabled(url):
        return False
    run = RunDir(run_path)
    try:
        from cgan_core.db.database import Database
        from cgan_core.db.records import record_evaluations, record_run

        with Database(url) as db:
            db.write(lambda session: record_evaluations(session, record_run(session, run), run))
        return True
    except Exception as exc:  # the eval JSON is written; the database can catch up later
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"warning: evaluation results not recorded in the metadata database ({first}); "
              f"record them later with: cgan runs sync {run.path}", file=sys.stderr)
        return False
