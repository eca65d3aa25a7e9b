"""Reading runs back: finding a run, summarising it, comparing several (what ``cgan runs`` prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cgan_core.db.models import CONTENT_OK, Checkpoint, Content, Dataset, Metric, Run, iso_utc
from cgan_core.errors import UsageError


def find_run(session: Session, ref: str) -> Run:
    """The run named by ``ref``: its id, a unique id prefix, its directory or its directory name.

    Raises:
        UsageError: no run matches, or several do (their ids are listed).
    """
    found = session.get(Run, ref)
    if found is not None:
        return found
    path = str(Path(ref).expanduser().resolve())
    by_path = session.execute(select(Run).where(Run.path == path).order_by(Run.created_at.desc())).scalars().first()
    if by_path is not None:
        return by_path
    matches = list(session.execute(select(Run).where(Run.name == ref)).scalars())
    if not matches:
        matches = list(session.execute(select(Run).where(Run.id.startswith(ref))).scalars()) if len(ref) >= 4 else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(f"{r.id} ({r.path})" for r in matches)
        raise UsageError(f"'{ref}' names several runs: {listed}; pass an id or a path")
    raise UsageError(f"no run '{ref}' in the metadata database; see 'cgan runs list', or record a run "
                     "directory with 'cgan runs sync DIR'")


def run_row(run: Run, contents: int = 0) -> dict[str, Any]:
    """The fields ``cgan runs list`` shows."""
    return {
        "id": run.id, "name": run.name, "status": run.status, "modality": run.modality, "plugin": run.plugin,
        "dataset": run.dataset, "step": run.step, "latest_checkpoint": run.latest_checkpoint,
        "contents": contents, "path": run.path, "created_at": iso_utc(run.created_at),
        "updated_at": iso_utc(run.updated_at), "finished_at": iso_utc(run.finished_at),
    }


def list_runs(session: Session) -> list[dict[str, Any]]:
    """Every run, newest first, with the number of content files generated from it."""
    counts = dict(session.execute(select(Content.run_id, func.count()).where(Content.state == CONTENT_OK)
                                  .group_by(Content.run_id)).all())
    runs = session.execute(select(Run).order_by(Run.created_at.desc(), Run.id)).scalars()
    return [run_row(run, counts.get(run.id, 0)) for run in runs]


def latest_metrics(session: Session, run_id: str) -> dict[str, dict[str, Any]]:
    """Per training metric, its last logged value; per evaluated metric, its value at the newest
    evaluated checkpoint (with provenance)."""
    result: dict[str, dict[str, Any]] = {}
    rows = session.execute(select(Metric).where(Metric.run_id == run_id).order_by(Metric.step, Metric.id)).scalars()
    for metric in rows:
        key = metric.name if metric.source == "train" else f"eval:{metric.name}"
        result[key] = {"source": metric.source, "name": metric.name, "value": metric.value, "step": metric.step,
                       "checkpoint": metric.checkpoint or None, "phase": metric.phase,
                       "provenance": metric.provenance}
    return result


def run_details(session: Session, run: Run) -> dict[str, Any]:
    """Everything ``cgan runs show`` prints about one run."""
    dataset = session.get(Dataset, run.dataset_id) if run.dataset_id is not None else None
    checkpoints = session.execute(select(Checkpoint).where(Checkpoint.run_id == run.id)
                                  .order_by(Checkpoint.step, Checkpoint.name)).scalars()
    contents = session.execute(select(func.count()).select_from(Content)
                               .where(Content.run_id == run.id, Content.state == CONTENT_OK)).scalar_one()
    details = run_row(run, contents)
    details.update({
        "host": run.host, "cgan_version": run.cgan_version, "started_at": iso_utc(run.started_at),
        "config": run.config,
        "dataset_record": None if dataset is None else {
            "source": dataset.source, "modality": dataset.modality, "items": dataset.items,
            "skipped": dataset.skipped, "fingerprint": dataset.fingerprint},
        "checkpoints": [{"name": c.name, "step": c.step, "phase": c.phase, "path": c.path,
                         "tensor_sha256": c.tensor_sha256, "metrics": c.metrics, "created_at": iso_utc(c.created_at)}
                        for c in checkpoints],
        "metrics": latest_metrics(session, run.id),
    })
    return details


def flatten(config: Optional[Mapping[str, Any]], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr_g": 1}}`` -> ``{"train.lr_g": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def compare_runs(session: Session, runs: Sequence[Run]) -> dict[str, Any]:
    """Config keys that differ between ``runs`` and their metrics side by side.

    Returns:
        ``{"runs": [names], "ids": [...], "config_diff": {key: [value per run]},
        "metrics": {metric: [value per run]}}``; a run without a metric has ``None``.
    """
    configs = [flatten(run.config) for run in runs]
    keys = sorted(set().union(*configs)) if configs else []
    missing = object()
    diff = {}
    for key in keys:
        values = [c.get(key, missing) for c in configs]
        if any(v != values[0] for v in values[1:]):
            diff[key] = [None if v is missing else v for v in values]
    per_run = [latest_metrics(session, run.id) for run in runs]
    names = sorted(set().union(*per_run), key=lambda n: (n.startswith("eval:") is False, n))
    metrics = {name: [m.get(name, {}).get("value") for m in per_run] for name in names}
    steps = [run.step for run in runs]
    return {"runs": [run.name for run in runs], "ids": [run.id for run in runs], "steps": steps,
            "statuses": [run.status for run in runs], "config_diff": diff, "metrics": metrics}
