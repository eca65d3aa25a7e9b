"""Writing what a run directory holds into the database: runs, datasets, checkpoints, metrics.

Every function here is an idempotent upsert keyed by the table's natural key, so the training
callback, ``cgan generate``, ``cgan report`` and ``cgan runs sync`` can all record the same run
without duplicating a row. The run directory stays the source of truth; the database is its index.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from cgan_core.db.models import Checkpoint, Dataset, Metric, Run, utcnow
from cgan_core.runs import RunDir
from cgan_core.version import __version__

TERMINAL_STATUSES = ("completed", "failed", "interrupted", "diverged")
_STEP_KEYS = ("step", "phase")


def upsert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str],
           update: Optional[Sequence[str]] = None) -> None:
    """Insert ``rows``; where a row with the same ``keys`` exists, update its ``update`` columns
    (default: every other column given). Uses ``ON CONFLICT`` on SQLite and PostgreSQL."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    columns = list(update) if update is not None else [c for c in rows[0] if c not in keys]
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        statement = insert(table)
        if columns:
            statement = statement.on_conflict_do_update(
                index_elements=list(keys), set_={c: statement.excluded[c] for c in columns})
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(keys))
        session.execute(statement, [dict(r) for r in rows])
        return
    for row in rows:  # other databases: look up, then update or insert (inside the caller's transaction)
        match = [table.c[k] == row[k] for k in keys]
        found = session.execute(select(table.c[keys[0]]).where(*match)).first()
        if found is None:
            session.execute(table.insert().values(**row))
        elif columns:
            session.execute(table.update().where(*match).values(**{c: row[c] for c in columns}))


def parse_time(text: Any) -> Optional[dt.datetime]:
    """Parse the ``%Y-%m-%dT%H:%M:%S%z`` times of ``run.json`` (``None`` if absent or malformed)."""
    if not text:
        return None
    for layout in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            value = dt.datetime.strptime(str(text), layout)
        except ValueError:
            continue
        # Stored in UTC: SQLite keeps no offset, so mixed offsets would not compare.
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    return None


def finite_or_none(value: Any) -> Optional[float]:
    """A float for the ``value`` column; NaN/Inf (and the strings the JSONL log writes) become None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def run_id_of(run: RunDir) -> str:
    """The run's id from ``run.json``, written there first if the run has none yet."""
    info = run.read_info()
    return str(info["id"]) if info.get("id") else str(run.update_info()["id"])


def _read_config(run: RunDir) -> Optional[dict[str, Any]]:
    if not run.config_path.is_file():
        return None
    import yaml

    try:
        loaded = yaml.safe_load(run.config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    return loaded if isinstance(loaded, dict) else None


def record_dataset(session: Session, modality: str, data: Mapping[str, Any],
                   info: Optional[Mapping[str, Any]] = None) -> Optional[int]:
    """Upsert the dataset a run loaded (``data`` is ``run.json``'s ``data`` block); returns its id."""
    source = str(data.get("source") or "")
    if not source:
        return None
    fingerprint = str(data.get("fingerprint") or "")
    upsert(session, Dataset.__table__, [{
        "modality": modality, "source": source, "fingerprint": fingerprint,
        "items": int(data.get("items") or 0), "skipped": int(data.get("skipped") or 0),
        "info": dict(info) if info else None, "created_at": utcnow(),
    }], keys=("modality", "source", "fingerprint"), update=("items", "skipped", "info"))
    return session.execute(select(Dataset.id).where(
        Dataset.modality == modality, Dataset.source == source, Dataset.fingerprint == fingerprint)).scalar_one()


def record_run(session: Session, run: RunDir, status: Optional[str] = None) -> str:
    """Upsert the run (and its dataset) from its directory; returns the run id."""
    run_id = run_id_of(run)
    info = run.read_info()
    config = _read_config(run) or {}
    modality = str(info.get("modality") or config.get("modality") or "")
    data_info: Optional[dict[str, Any]] = None
    if run.data_info_path.is_file():
        try:
            data_info = json.loads(run.data_info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data_info = None
    dataset_id = record_dataset(session, modality, info.get("data") or {}, data_info)
    status = status or str(info.get("status") or "created")
    created = parse_time(info.get("created_at")) or utcnow()
    updated = parse_time(info.get("updated_at")) or utcnow()
    upsert(session, Run.__table__, [{
        "id": run_id, "name": run.path.name, "path": str(run.path.resolve()), "host": socket.gethostname(),
        "modality": modality, "plugin": str(info.get("plugin") or config.get("plugin") or ""),
        "dataset": str(info.get("dataset") or config.get("dataset") or ""), "dataset_id": dataset_id,
        "status": status, "step": int(info.get("step") or 0), "latest_checkpoint": info.get("latest_checkpoint"),
        "config": config or None, "cgan_version": __version__, "created_at": created, "started_at": created,
        "finished_at": updated if status in TERMINAL_STATUSES else None, "updated_at": utcnow(),
    }], keys=("id",), update=("name", "path", "host", "modality", "plugin", "dataset", "dataset_id", "status",
                              "step", "latest_checkpoint", "config", "cgan_version", "finished_at", "updated_at"))
    return run_id


def checkpoint_row(run_id: str, path: Path) -> Optional[dict[str, Any]]:
    """The ``checkpoints`` row of a checkpoint directory (``None`` if it has no readable state)."""
    try:
        state = json.loads((Path(path) / "state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    metrics = {k: v for k, v in (state.get("metrics") or {}).items() if finite_or_none(v) is not None}
    return {
        "run_id": run_id, "name": Path(path).name, "step": int(state.get("step") or 0), "phase": state.get("phase"),
        "path": str(Path(path).resolve()), "tensor_sha256": state.get("tensor_sha256"), "metrics": metrics or None,
        "created_at": parse_time(state.get("created_at")) or utcnow(),
    }


def record_checkpoints(session: Session, run_id: str, paths: Iterable[Path]) -> int:
    """Upsert the checkpoints at ``paths``; returns how many were readable."""
    rows = [row for row in (checkpoint_row(run_id, p) for p in paths) if row is not None]
    upsert(session, Checkpoint.__table__, rows, keys=("run_id", "name"))
    return len(rows)


def checkpoint_id(session: Session, run_id: str, name: str) -> Optional[int]:
    """The id of a recorded checkpoint, if any."""
    return session.execute(select(Checkpoint.id).where(Checkpoint.run_id == run_id, Checkpoint.name == name)) \
        .scalar_one_or_none()


def train_metric_rows(run_id: str, records: Iterable[Mapping[str, Any]], origin: str) -> list[dict[str, Any]]:
    """Metric rows of training-log records (``{"step", "phase", name: value, ...}``)."""
    now = utcnow()
    rows = []
    for record in records:
        step = int(record.get("step") or 0)
        phase = record.get("phase")
        for name, value in record.items():
            if name in _STEP_KEYS or isinstance(value, (dict, list, bool)) or value is None:
                continue
            rows.append({"run_id": run_id, "source": "train", "name": name, "step": step, "checkpoint": "",
                         "phase": phase, "value": finite_or_none(value),
                         "provenance": {"origin": origin, "raw": value} if finite_or_none(value) is None
                         else {"origin": origin},
                         "created_at": now})
    return rows


def record_metrics(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Upsert metric rows (a value logged twice for the same key keeps the newest)."""
    upsert(session, Metric.__table__, rows, keys=("run_id", "source", "name", "step", "checkpoint"))


def forget_train_metrics_after(session: Session, run_id: str, step: int) -> None:
    """Drop training-log rows after ``step`` (a resumed run logs those steps again)."""
    session.execute(delete(Metric).where(Metric.run_id == run_id, Metric.source == "train", Metric.step > step))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL file, skipping lines cut by a kill."""
    if not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _checkpoint_step(name: str) -> int:
    digits = name.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else 0


def eval_metric_rows(run_id: str, document: Mapping[str, Any], origin: str,
                     default_checkpoint: str) -> list[dict[str, Any]]:
    """Metric rows of one evaluation result (``eval/<checkpoint>.json``).

    The shape ``cgan evaluate`` writes is ``{"checkpoint", "step", "seed", "n_real", ...,
    "metrics": [{"metric", "value", "extractor", "weights_sha256", "preprocessing", ...}, ...]}``;
    ``"metrics": {name: value | {"value": v, ...}}`` with an optional ``"provenance": {name: {...}}``
    is read too. Every field besides the value (seed, sample counts, extractor, weights hash,
    preprocessing, cgan version, ...) is kept as the row's provenance.
    """
    checkpoint = str(document.get("checkpoint") or default_checkpoint)
    step = document.get("step", document.get("checkpoint_step"))
    step = int(step) if isinstance(step, (int, float)) else _checkpoint_step(checkpoint)
    metrics = document.get("metrics", document.get("results", {}))
    per_metric = document.get("provenance") if isinstance(document.get("provenance"), Mapping) else {}
    shared = {k: v for k, v in document.items() if k not in ("metrics", "results", "provenance", "skipped")}
    entries: list[tuple[str, Any, dict[str, Any]]] = []
    if isinstance(metrics, Mapping):
        for name, value in metrics.items():
            if isinstance(value, Mapping):
                extra = {k: v for k, v in value.items() if k != "value"}
                entries.append((str(name), value.get("value"), extra))
            else:
                entries.append((str(name), value, {}))
    elif isinstance(metrics, list):
        for entry in metrics:
            if isinstance(entry, Mapping) and (entry.get("name") or entry.get("metric")):
                name = str(entry.get("name") or entry.get("metric"))
                entries.append((name, entry.get("value"),
                                {k: v for k, v in entry.items() if k not in ("name", "metric", "value")}))
    now = utcnow()
    rows = []
    for name, value, extra in entries:
        if isinstance(value, (dict, list, bool)):
            continue
        provenance = dict(shared, origin=origin)
        provenance.update(per_metric.get(name, {}) if isinstance(per_metric.get(name), Mapping) else {})
        provenance.update(extra)
        if finite_or_none(value) is None and value is not None:
            provenance["raw"] = value
        rows.append({"run_id": run_id, "source": "eval", "name": name, "step": step, "checkpoint": checkpoint,
                     "phase": None, "value": finite_or_none(value), "provenance": provenance, "created_at": now})
    return rows


def record_evaluations(session: Session, run_id: str, run: RunDir) -> int:
    """Upsert the metric rows of every ``eval/*.json`` of the run; returns how many rows."""
    rows: list[dict[str, Any]] = []
    for path in sorted(run.eval_dir.glob("*.json")) if run.eval_dir.is_dir() else []:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a file being written, or not an evaluation result
        if isinstance(document, Mapping):
            rows += eval_metric_rows(run_id, document, f"eval/{path.name}", path.stem)
    record_metrics(session, rows)
    return len(rows)


def sync_run(session: Session, run: RunDir) -> str:
    """Record everything a run directory holds: the run, its dataset, the checkpoints on disk, the
    training log and the evaluation results; returns the run id. Idempotent."""
    run_id = record_run(session, run)
    # Globbed here rather than through cgan_core.checkpoint, which imports torch.
    paths = sorted(p for p in run.checkpoints.glob("step-*") if p.is_dir()) if run.checkpoints.is_dir() else []
    if (run.checkpoints / "best").is_dir():
        paths.append(run.checkpoints / "best")
    record_checkpoints(session, run_id, paths)
    record_metrics(session, train_metric_rows(run_id, read_jsonl(run.metrics_path), "metrics.jsonl"))
    record_evaluations(session, run_id, run)
    return run_id
