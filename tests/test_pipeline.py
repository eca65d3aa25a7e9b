"""``cgan pipeline``: skipping up-to-date stages, resuming at a failed or killed one, the state file.

The stages here are tiny Python scripts (no torch), so the pipeline's own logic is what is tested;
tests/test_pipeline_example.py runs the real example (prepare -> train -> evaluate -> generate ->
export) end to end.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import CGAN

from cgan_core import CganRuntimeError, MissingDependencyError, UsageError
from cgan_core.pipeline import load_pipeline, pipeline_status, read_state, run_pipeline

# One stage: read IN, append NAME, write OUT; log every execution; fail or hang on request.
STEP = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    name, source, target = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "run"
    with open("log.txt", "a") as log:
        log.write(f"{name}:{mode}\\n")
    if os.environ.get("FAIL_STAGE") == name:
        sys.exit(3)
    if os.environ.get("HANG_STAGE") == name:
        Path(f"{name}.started").write_text("")
        time.sleep(60)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(Path(source).read_text() + name + "\\n")
''')

PIPELINE = textwrap.dedent('''
    name: toy
    workdir: work
    stages:
      - name: a
        run: [python, ../step.py, a, ../src.txt, out/a.txt]
        inputs: [../src.txt, ../step.py]
        outputs: [out/a.txt]
      - name: b
        run: [python, ../step.py, b, out/a.txt, out/b.txt]
        inputs: [out/a.txt]
        outputs: [out/b.txt]
        resume:
          when_exists: b.started
          run: [python, ../step.py, b, out/a.txt, out/b.txt, resumed]
      - name: c
        run: [python, ../step.py, c, out/b.txt, out/c.txt]
        inputs: [out/b.txt]
        outputs: [out/c.txt]
''')


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    (tmp_path / "step.py").write_text(STEP)
    (tmp_path / "src.txt").write_text("source\n")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return tmp_path / "pipeline.yaml"


def _log(toy: Path) -> list[str]:
    path = toy.parent / "work" / "log.txt"
    return path.read_text().split() if path.exists() else []


def _run(toy: Path, **kwargs) -> list[str]:
    """Run the pipeline in-process; returns the stages that ran."""
    return [plan.stage.name for plan in run_pipeline(load_pipeline(toy), echo=lambda line: None, **kwargs)
            if plan.run]


def test_second_run_skips_everything_and_changes_rerun_what_depends_on_them(toy: Path) -> None:
    assert _run(toy) == ["a", "b", "c"]
    assert (toy.parent / "work" / "out" / "c.txt").read_text() == "source\na\nb\nc\n"
    assert _run(toy) == []
    assert _log(toy) == ["a:run", "b:run", "c:run"]
    (toy.parent / "src.txt").write_text("changed\n")  # an input of the first stage
    assert _run(toy) == ["a", "b", "c"]
    (toy.parent / "work" / "out" / "c.txt").unlink()  # a missing output reruns only its stage
    assert _run(toy) == ["c"]
    (toy.parent / "work" / "out" / "b.txt").write_text("edited by hand\n")  # an output changed since it ran
    assert _run(toy) == ["b"]  # b writes what it wrote before, so c's input is unchanged: c stays skipped
    text = toy.read_text().replace("[python, ../step.py, c, out/b.txt, out/c.txt]",
                                   "[python, ../step.py, c, out/b.txt, out/c.txt, extra]")
    toy.write_text(text)  # the stage's own command changed
    assert _run(toy) == ["c"]
    assert _run(toy, force=True) == ["a", "b", "c"]


def test_a_failed_stage_stops_the_pipeline_and_the_next_run_starts_there(toy: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAIL_STAGE", "b")
    with pytest.raises(CganRuntimeError, match="stage 'b' failed .exit code 3.*starts at this one"):
        _run(toy)
    state = read_state(load_pipeline(toy))
    assert state["stages"]["a"]["status"] == "done"
    assert state["stages"]["b"]["status"] == "failed" and state["stages"]["b"]["exit_code"] == 3
    assert "c" not in state["stages"]
    status = {row["stage"]: row for row in pipeline_status(load_pipeline(toy))}
    assert not status["a"]["would_run"] and status["b"]["would_run"] and status["c"]["reason"] == "after 'b'"
    monkeypatch.delenv("FAIL_STAGE")
    assert _run(toy) == ["b", "c"]
    assert _log(toy) == ["a:run", "b:run", "b:run", "c:run"]
    assert read_state(load_pipeline(toy))["stages"]["b"]["attempts"] == 2


def test_a_killed_pipeline_resumes_at_the_unfinished_stage(toy: Path) -> None:
    work = toy.parent / "work"
    env = dict(os.environ, HANG_STAGE="b")
    process = subprocess.Popen([*CGAN, "pipeline", "run", str(toy)], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (work / "b.started").exists():
            assert process.poll() is None and time.monotonic() < deadline, "stage b never started"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the pipeline and its stage, with no chance to clean up
        process.wait()
    state = read_state(load_pipeline(toy))
    assert state["stages"]["a"]["status"] == "done" and state["stages"]["b"]["status"] == "running"
    assert _run(toy) == ["b", "c"]
    # b's attempt was cut short and left b.started: its 'resume' command continued it.
    assert _log(toy) == ["a:run", "b:run", "b:resumed", "c:run"]


def test_sigterm_stops_the_stage_and_records_the_interruption(toy: Path) -> None:
    work = toy.parent / "work"
    env = dict(os.environ, HANG_STAGE="a")
    process = subprocess.Popen([*CGAN, "pipeline", "run", str(toy)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (work / "a.started").exists():
        assert process.poll() is None and time.monotonic() < deadline, "stage a never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "stopped by signal 15" in err
    assert read_state(load_pipeline(toy))["stages"]["a"]["status"] == "interrupted"


def test_the_state_file_is_json_written_whole(toy: Path) -> None:
    _run(toy)
    pipeline = load_pipeline(toy)
    state = json.loads(pipeline.state_path.read_text())
    assert set(state["stages"]) == {"a", "b", "c"}
    record = state["stages"]["b"]
    assert record["status"] == "done" and len(record["key"]) == 64 and set(record["outputs"]) == {"out/b.txt"}
    assert not list(pipeline.state_path.parent.glob(".*.tmp-*"))  # no temporary left behind


@pytest.mark.parametrize("text, message", [
    ("stages: []", "non-empty 'stages'"),
    ("stages:\n  - {name: a, run: [x], outputs: [o], inptus: [i]}", "unknown key 'inptus'.*did you mean 'inputs'"),
    ("stages:\n  - {name: a, run: [x], cgan: [run]}", "exactly one of"),
    ("stages:\n  - {name: a, run: [x]}\n  - {name: a, run: [y]}", "used twice"),
    ("stages:\n  - {name: a, run: [x], inputs: [o]}\n  - {name: b, run: [y], outputs: [o]}",
     "reads 'o', which only the later stage 'b' writes"),
    ("stages:\n  - {name: a, run: [x], resume: {run: [y]}}", "when_exists"),
    ("stages: [", "not valid YAML"),
])
def test_malformed_pipelines_are_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_pipeline(path)


def test_missing_inputs_and_outputs_are_named(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("stages:\n  - {name: a, run: [python, -c, 'pass'], inputs: [nothing.txt]}\n")
    with pytest.raises(CganRuntimeError, match="stage 'a' needs 'nothing.txt'"):
        run_pipeline(load_pipeline(path), echo=lambda line: None)
    path.write_text("stages:\n  - {name: a, run: [python, -c, 'pass'], outputs: [made.txt]}\n")
    with pytest.raises(CganRuntimeError, match="did not write its output 'made.txt'"):
        run_pipeline(load_pipeline(path), echo=lambda line: None)


def test_cli_run_status_and_the_prefect_engine(toy: Path, cli) -> None:
    result = cli("pipeline", "status", str(toy), "--json")
    assert result.exit_code == 0
    assert [row["reason"] for row in json.loads(result.stdout)["stages"]] == ["never ran", "after 'a'", "after 'a'"]
    result = cli("pipeline", "run", str(toy), "--stage", "a")  # one stage at a time, as an Airflow task would
    assert result.exit_code == 0 and "1 stage(s) ran (a)" in result.stdout
    result = cli("pipeline", "run", str(toy))
    assert result.exit_code == 0 and "2 stage(s) ran (b, c), 1 up to date" in result.stdout
    result = cli("pipeline", "run", str(toy), "--stage", "z")
    assert result.exit_code == 2 and "has no stage 'z'" in result.output
    result = cli("pipeline", "run", str(toy), "--engine", "airflow")
    assert result.exit_code == 2 and "unknown --engine 'airflow'" in result.output
    result = cli("pipeline", "run", str(toy), "--engine", "prefect")
    if importlib.util.find_spec("prefect") is None:
        assert result.exit_code == 2 and "pip install 'cgan[prefect]'" in result.output
        with pytest.raises(MissingDependencyError):
            from cgan_core.pipeline import prefect_flow

            prefect_flow(load_pipeline(toy))
    else:  # the same stages as Prefect tasks, with the same state: all up to date ...
        assert result.exit_code == 0 and "0 stage(s) ran, 3 skipped" in result.stdout
        (toy.parent / "src.txt").write_text("changed\n")  # ... until an input changes
        # In a process of its own, as users run it (Prefect's log handlers outlive one CliRunner).
        done = subprocess.run([*CGAN, "pipeline", "run", str(toy), "--engine", "prefect"], capture_output=True,
                              text=True, timeout=300, env=dict(os.environ, PREFECT_HOME=str(toy.parent / "prefect")))
        assert done.returncode == 0 and "3 stage(s) ran, 0 skipped" in done.stdout, done.stderr[-2000:]
        assert (toy.parent / "work" / "out" / "c.txt").read_text() == "changed\na\nb\nc\n"
    result = cli("pipeline", "run", str(toy.parent / "nope.yaml"))
    assert result.exit_code == 2 and "does not exist" in result.output
