"""The metadata database: URLs, migrations (safe with many processes), run records from training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from test_db_support import REPO, TINY_RUN, db_url, invoke, sqlite_url, trained_run  # noqa: F401


def _scalar(url: str, query: str):  # type: ignore[no-untyped-def]
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(query)).scalar()
    finally:
        engine.dispose()


def test_default_location_and_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cgan_core.db.engine import database_disabled, default_db_path, resolve_db_url
    from cgan_core.errors import UsageError

    monkeypatch.delenv("CGAN_DB_URL", raising=False)
    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / "cgan.db"
    assert resolve_db_url() == f"sqlite:///{tmp_path / 'home' / 'cgan.db'}"
    monkeypatch.delenv("CGAN_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "cgan" / "cgan.db"
    assert resolve_db_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_db_url("postgresql://u:pw@db:5432/cgan") == "postgresql+psycopg://u:pw@db:5432/cgan"
    monkeypatch.setenv("CGAN_DB_URL", "postgres://db/cgan")
    assert resolve_db_url() == "postgresql+psycopg://db/cgan"
    monkeypatch.setenv("CGAN_DB_URL", "none")
    assert database_disabled()
    with pytest.raises(UsageError, match="switched off"):
        resolve_db_url()


def test_migrations_build_exactly_the_models_and_reopen_is_a_noop(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from cgan_core.db import Database
    from cgan_core.db.migrate import head_revision
    from cgan_core.db.models import Base

    with Database(db_url) as db:
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
        if db.dialect == "sqlite":
            assert _scalar(db_url, "PRAGMA journal_mode") == "wal"
    assert _scalar(db_url, "SELECT version_num FROM alembic_version") == head_revision()
    with Database(db_url):  # already at head: nothing to do, nothing duplicated
        pass
    assert _scalar(db_url, "SELECT count(*) FROM alembic_version") == 1


def test_processes_opening_a_new_database_at_once_migrate_it_once(db_url: str) -> None:
    code = "import sys; from cgan_core.db import Database; Database(sys.argv[1]).close(); print('ok')"
    processes = [subprocess.Popen([sys.executable, "-c", code, db_url], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(4)]
    outcomes = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, outcomes
    assert _scalar(db_url, "SELECT count(*) FROM alembic_version") == 1
    assert _scalar(db_url, "SELECT count(*) FROM contents") == 0


def test_a_database_migrated_by_a_newer_cgan_is_refused(sqlite_url: str) -> None:
    from cgan_core.db import Database
    from cgan_core.errors import CganRuntimeError

    Database(sqlite_url).close()
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    with pytest.raises(CganRuntimeError, match="newer cgan"):
        Database(sqlite_url)


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cgan_core.cli", "runs", "list", "--db",
                             "postgresql://nobody@127.0.0.1:9/none"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot open the metadata database postgresql+psycopg://nobody@127.0.0.1:9")
    assert "Traceback" not in result.stderr


def test_training_records_the_run_dataset_checkpoints_metrics_and_evaluations(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = invoke("run", "-m", "image", "-p", "dcgan", "--out", str(out), "--max-steps", "4",
                    "--set", "train.checkpoint_every=2", "--set", "train.sample_every=2", *TINY_RUN)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "run.json").read_text())
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    assert _scalar(db_url, f"SELECT status FROM runs WHERE id = '{info['id']}'") == "completed"
    assert _scalar(db_url, "SELECT step FROM runs") == 4
    assert _scalar(db_url, "SELECT finished_at IS NOT NULL FROM runs")
    assert _scalar(db_url, "SELECT count(*) FROM checkpoints") == 2
    assert _scalar(db_url, "SELECT items FROM datasets WHERE source = 'digits'") == 64
    assert _scalar(db_url, "SELECT fingerprint FROM datasets") == info["data"]["fingerprint"]
    logged = sum(len(line) - 2 for line in lines)  # every key but step and phase
    assert _scalar(db_url, "SELECT count(*) FROM metrics WHERE source = 'train'") == logged
    assert _scalar(db_url, "SELECT value FROM metrics WHERE name = 'loss_d' AND step = 3") == \
        pytest.approx(lines[2]["loss_d"])
    # An evaluation result (as `cgan evaluate` writes it) becomes metric rows with provenance.
    (out / "eval" / "step-00000004.json").write_text(json.dumps({
        "checkpoint": "step-00000004", "step": 4, "seed": 0, "n_fake": 50,
        "metrics": {"fid@classifier": 31.5, "kid@classifier": {"value": 0.02, "std": 0.004}},
        "provenance": {"fid@classifier": {"extractor": "classifier", "weights_sha256": "ab12"}}}))
    assert invoke("runs", "sync", str(out)).exit_code == 0
    assert _scalar(db_url, "SELECT value FROM metrics WHERE name = 'fid@classifier'") == 31.5
    provenance = _scalar(db_url, "SELECT provenance FROM metrics WHERE name = 'fid@classifier'")
    provenance = json.loads(provenance) if isinstance(provenance, str) else provenance
    assert provenance["weights_sha256"] == "ab12" and provenance["n_fake"] == 50
    assert provenance["origin"] == "eval/step-00000004.json"
    assert _scalar(db_url, "SELECT checkpoint FROM metrics WHERE name = 'kid@classifier'") == "step-00000004"
    # Syncing again duplicates nothing.
    before = _scalar(db_url, "SELECT count(*) FROM metrics")
    assert invoke("runs", "sync", str(out)).exit_code == 0
    assert _scalar(db_url, "SELECT count(*) FROM metrics") == before


def test_resumed_training_replaces_the_steps_it_logs_again(sqlite_url: str, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "run"
    common = ["run", "-m", "image", "-p", "dcgan", "--out", str(out), "--set", "train.checkpoint_every=2", *TINY_RUN]
    assert invoke(*common, "--max-steps", "3").exit_code == 0
    assert _scalar(sqlite_url, "SELECT max(step) FROM metrics") == 3
    # As if killed after logging step 3 but before its checkpoint: resuming starts from step 2.
    shutil.rmtree(out / "checkpoints" / "step-00000003")
    (out / "checkpoints" / "latest").write_text("step-00000002\n")
    with open(out / "metrics.jsonl", "a") as log:  # a later value for step 3, as a killed run might leave
        log.write('{"step": 3, "phase": "x", "loss_d": 99}\n')
    assert invoke("runs", "sync", str(out)).exit_code == 0
    assert _scalar(sqlite_url, "SELECT count(*) FROM metrics WHERE name = 'loss_d' AND step = 3") == 1
    result = invoke(*common, "--max-steps", "4", "--resume", "--force")
    assert result.exit_code == 0, result.output
    assert _scalar(sqlite_url, "SELECT count(*) FROM runs") == 1
    assert _scalar(sqlite_url, "SELECT count(*) FROM metrics WHERE name = 'loss_d'") == 4
    assert _scalar(sqlite_url, "SELECT count(DISTINCT step) FROM metrics WHERE name = 'loss_d'") == 4
    assert _scalar(sqlite_url, "SELECT value FROM metrics WHERE name = 'loss_d' AND step = 3") != 99
    assert _scalar(sqlite_url, "SELECT phase FROM metrics WHERE name = 'loss_d' AND step = 3") == "adversarial"


def test_a_database_that_fails_does_not_stop_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGAN_DB_URL", "postgresql://nobody@127.0.0.1:9/none")
    out = tmp_path / "run"
    result = invoke("run", "-m", "image", "-p", "dcgan", "--out", str(out), "--max-steps", "2", *TINY_RUN)
    assert result.exit_code == 0, result.output
    assert "cgan runs sync" in result.output  # the warning says how to record it later
    assert (out / "checkpoints" / "latest").is_file()
    assert os.path.getsize(out / "report.html") > 0


def test_cgan_evaluate_results_become_metric_rows_with_provenance(db_url: str, trained_run: Path) -> None:
    from cgan_core.db.callback import record_evaluation_results

    def result(metric: str, value, **extra):  # type: ignore[no-untyped-def]
        return dict({"metric": metric, "value": value, "higher_is_better": False, "extractor": "classifier",
                     "weights_sha256": "9f86d0", "preprocessing": "resize 28 bilinear", "n_real": 64, "n_fake": 64,
                     "seed": 0, "checkpoint": "step-00000006", "step": 6, "reference": "digits@11707e05",
                     "modality": "image", "cgan_version": "0.1.0", "seconds": 0.5, "details": {}}, **extra)

    # The document `cgan evaluate` writes to eval/<checkpoint>.json.
    (trained_run / "eval" / "step-00000006.json").write_text(json.dumps({
        "run": str(trained_run), "checkpoint": "step-00000006", "step": 6, "modality": "image", "seed": 0,
        "n_real": 64, "n_fake": 64, "reference": "digits@11707e05", "cgan_version": "0.1.0",
        "created_at": "2026-12-04T17:00:00", "seconds": 1.5, "skipped": {"fid@inception": "no weights"},
        "metrics": [result("fid@classifier", 42.5), result("kid@classifier", 0.031, details={"kid_std": 0.004}),
                    result("precision@classifier", "nan")]}))
    assert record_evaluation_results(trained_run)
    rows = {name: (value, checkpoint, step, provenance) for name, value, checkpoint, step, provenance in _rows(
        db_url, "SELECT name, value, checkpoint, step, provenance FROM metrics WHERE source = 'eval'")}
    assert set(rows) == {"fid@classifier", "kid@classifier", "precision@classifier"}
    value, checkpoint, step, provenance = rows["fid@classifier"]
    assert (value, checkpoint, step) == (42.5, "step-00000006", 6)
    provenance = json.loads(provenance) if isinstance(provenance, str) else provenance
    assert provenance["weights_sha256"] == "9f86d0" and provenance["preprocessing"] == "resize 28 bilinear"
    assert provenance["n_fake"] == 64 and provenance["reference"] == "digits@11707e05"
    assert "metric" not in provenance and "skipped" not in provenance
    kid = rows["kid@classifier"][3]
    assert (json.loads(kid) if isinstance(kid, str) else kid)["details"] == {"kid_std": 0.004}
    assert rows["precision@classifier"][0] is None  # non-finite: no value, the raw string kept
    shown = json.loads(invoke("runs", "show", "tiny", "--json").stdout)
    assert shown["metrics"]["eval:fid@classifier"]["value"] == 42.5
    # Switched off: nothing recorded, nothing raised.
    assert record_evaluation_results(trained_run, url="none") is False


def _rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(query))]
    finally:
        engine.dispose()
