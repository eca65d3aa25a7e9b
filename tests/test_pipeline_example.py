"""The example pipeline (examples/pipeline) runs end to end, and a second run skips every stage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import CGAN, REPO

EXAMPLE = REPO / "examples" / "pipeline"


def test_example_pipeline_end_to_end_then_every_stage_skipped(tmp_path: Path) -> None:
    for name in ("pipeline.yaml", "prepare.py", "train.yaml"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k not in ("CGAN_DB_URL", "CGAN_HOME")}
    first = subprocess.run([*CGAN, "pipeline", "run", str(tmp_path / "pipeline.yaml")], env=env, text=True,
                           capture_output=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    assert "5 stage(s) ran (prepare, train, evaluate, generate, export)" in first.stdout
    work = tmp_path / "work"
    assert (work / "data" / "digits.npz").is_file()
    assert (work / "runs" / "digits" / "checkpoints" / "step-00000030").is_dir()
    report = json.loads((work / "runs" / "digits" / "eval" / "step-00000030.json").read_text())
    assert "fid@classifier" in json.dumps(report)
    assert len(list((work / "content").rglob("*.png"))) == 16
    manifest = (work / "exported" / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 16 and all((work / "exported" / json.loads(row)["export_path"]).is_file()
                                       for row in manifest)
    assert (work / "cgan.db").is_file()  # the pipeline's env put the metadata database in its work directory

    second = subprocess.run([*CGAN, "pipeline", "run", str(tmp_path / "pipeline.yaml")], env=env, text=True,
                            capture_output=True, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 stage(s) ran (none), 5 up to date" in second.stdout
    assert second.stdout.count("skipped (up to date)") == 5
