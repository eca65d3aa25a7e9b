"""`cgan runs list/show/compare/sync` against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from test_db_support import db_url, invoke, trained_run  # noqa: F401


def _variant(run: Path, target: Path, lr_g: float, loss_scale: float) -> Path:
    """A copy of ``run`` as if trained with another ``train.lr_g`` (new id, scaled losses)."""
    shutil.copytree(run, target)
    info = json.loads((target / "run.json").read_text())
    info["id"] = "variant0" + info["id"][8:]
    (target / "run.json").write_text(json.dumps(info))
    config = yaml.safe_load((target / "config.yaml").read_text())
    config["train"]["lr_g"] = lr_g
    (target / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [json.loads(line) for line in (target / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line["loss_g"] *= loss_scale
    (target / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return target


def test_runs_list_show_and_compare(db_url: str, trained_run: Path, tmp_path: Path) -> None:
    assert invoke("runs", "list").stdout.startswith("no runs recorded yet")
    other = _variant(trained_run, tmp_path / "other", lr_g=0.001, loss_scale=2.0)
    synced = invoke("runs", "sync", str(trained_run), str(other))
    assert synced.exit_code == 0, synced.output
    (tmp_path / "content").mkdir()
    assert invoke("generate", str(trained_run), "-n", "2", "--out", str(tmp_path / "content")).exit_code == 0

    listed = json.loads(invoke("runs", "list", "--json").stdout)
    assert {r["name"] for r in listed} == {"tiny", "other"}
    tiny = next(r for r in listed if r["name"] == "tiny")
    assert tiny["status"] == "completed" and tiny["step"] == 6 and tiny["contents"] == 2
    assert tiny["latest_checkpoint"] == "step-00000006" and tiny["plugin"] == "dcgan"
    table = invoke("runs", "list")
    assert table.exit_code == 0 and "tiny" in table.stdout and "completed" in table.stdout

    by_name = json.loads(invoke("runs", "show", "tiny", "--json").stdout)
    by_id = json.loads(invoke("runs", "show", tiny["id"], "--json").stdout)
    by_path = json.loads(invoke("runs", "show", str(trained_run), "--json").stdout)
    assert by_name["id"] == by_id["id"] == by_path["id"] == tiny["id"]
    assert [c["name"] for c in by_name["checkpoints"]] == ["step-00000003", "step-00000006"]
    assert by_name["dataset_record"]["items"] == 64
    last = json.loads((trained_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert by_name["metrics"]["loss_g"]["value"] == last["loss_g"] and by_name["metrics"]["loss_g"]["step"] == 6
    assert by_name["config"]["train"]["max_steps"] == 6
    shown = invoke("runs", "show", "tiny")
    assert shown.exit_code == 0 and "step-00000003" in shown.stdout and "loss_d" in shown.stdout

    compared = json.loads(invoke("runs", "compare", "tiny", "other", "--json").stdout)
    assert compared["runs"] == ["tiny", "other"]
    assert compared["config_diff"] == {"train.lr_g": [0.0002, 0.001]}
    assert compared["metrics"]["loss_g"] == [last["loss_g"], last["loss_g"] * 2.0]
    assert compared["metrics"]["loss_d"] == [last["loss_d"], last["loss_d"]]
    text = invoke("runs", "compare", "tiny", "other")
    assert text.exit_code == 0 and "train.lr_g" in text.stdout and "loss_g" in text.stdout


def test_runs_errors_are_one_line(db_url: str, trained_run: Path) -> None:
    unknown = invoke("runs", "show", "no-such-run")
    assert unknown.exit_code == 2
    assert unknown.output.startswith("error: no run 'no-such-run'") and "Traceback" not in unknown.output
    assert invoke("runs", "compare", "one").exit_code == 2
    assert invoke("runs", "sync", str(trained_run / "samples")).exit_code == 2
