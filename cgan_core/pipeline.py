"""``cgan pipeline``: a workflow of declared stages that skips what is already up to date.

A pipeline file lists stages in order (for cgan's workflow: prepare data -> train -> evaluate ->
generate -> export). Each stage is a command (``cgan: [...]`` runs the cgan CLI with this
Python, ``run: [...]`` any program) with the files and folders it reads (``inputs``) and writes
(``outputs``)::

    name: digits-demo
    workdir: work                  # stages run here; relative paths resolve here
    env: {CGAN_DB_URL: "sqlite:///cgan.db"}
    stages:
      - name: train
        cgan: [run, -m, image, -p, dcgan, --dataset, data/digits.npz, --out, runs/demo, --overwrite]
        inputs: [data/digits.npz]
        outputs: [runs/demo/checkpoints]
        resume:                    # optional: how to continue an attempt that was cut short
          when_exists: runs/demo/checkpoints/latest
          cgan: [run, --resume, --out, runs/demo]

A stage's *key* is the hash of its command, environment and the content of its inputs. A stage
whose key matches the last successful run and whose outputs are still as it left them is skipped;
anything else runs it. The state file (``WORKDIR/.cgan-pipeline/NAME.json``) is rewritten
atomically before and after every stage, so a failed or killed pipeline, run again, skips the
finished stages and starts at the one that did not finish. Stages run as subprocesses: exactly
the code paths of the CLI commands, and a crash in one cannot corrupt the pipeline's state.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import yaml

from cgan_core.errors import CganRuntimeError, MissingDependencyError, UsageError
from cgan_core.fileio import atomic_write_text, sha256_file

STAGE_KEYS = ("name", "cgan", "run", "inputs", "outputs", "env", "resume", "description")
PIPELINE_KEYS = ("name", "workdir", "env", "stages", "description")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STATE_VERSION = 1


@dataclass
class Stage:
    """One declared stage.

    Attributes:
        name: Unique stage name.
        command: ``("cgan", [args])`` or ``("run", [argv])`` as declared.
        inputs: Paths (relative to the work directory) whose content the stage depends on.
        outputs: Paths the stage must produce.
        env: Extra environment variables (on top of the pipeline's).
        resume: Optional ``{"when_exists": path, "cgan"|"run": [...]}`` used when the last attempt
            with the same key did not finish and ``when_exists`` exists.
        description: Free text shown by ``cgan pipeline status``.
    """

    name: str
    command: tuple[str, list[str]]
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    resume: Optional[dict[str, Any]] = None
    description: str = ""

    def argv(self, resume: bool = False) -> list[str]:
        """The command line to execute (``cgan`` and ``python`` use this interpreter)."""
        kind, args = self.command
        if resume and self.resume is not None:
            kind = "cgan" if "cgan" in self.resume else "run"
            args = self.resume[kind]
        if kind == "cgan":
            return [sys.executable, "-m", "cgan_core.cli", *args]
        if args and args[0] in ("python", "python3"):
            return [sys.executable, *args[1:]]
        return list(args)

    def settings(self) -> dict[str, Any]:
        """What, besides its inputs, decides the stage's result (hashed into its key)."""
        return {"command": list(self.command), "env": self.env, "resume": self.resume}


@dataclass
class Pipeline:
    """A parsed pipeline file."""

    name: str
    path: Path
    workdir: Path
    env: dict[str, str]
    stages: list[Stage]
    description: str = ""

    @property
    def state_path(self) -> Path:
        """The state file of this pipeline."""
        return self.workdir / ".cgan-pipeline" / f"{self.name}.json"

    def stage(self, name: str) -> Stage:
        """Look a stage up by name."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise UsageError(f"pipeline '{self.name}' has no stage '{name}'; stages: "
                         + ", ".join(s.name for s in self.stages))


# --- reading the file ---------------------------------------------------------------------------
def _check_keys(mapping: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"{where}: unknown key '{key}'{hint}; valid: {', '.join(allowed)}")


def _string_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise UsageError(f"{where} must be a list of strings, got {value!r}")
    return [str(v) for v in value]


def _env(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a mapping of variable names to values")
    return {str(k): str(v) for k, v in value.items()}


def _command(entry: Mapping[str, Any], where: str) -> tuple[str, list[str]]:
    kinds = [kind for kind in ("cgan", "run") if kind in entry]
    if len(kinds) != 1:
        raise UsageError(f"{where} needs exactly one of 'cgan: [ARGS]' (a cgan command) or 'run: [PROGRAM, ARGS]'")
    args = _string_list(entry[kinds[0]], f"{where}.{kinds[0]}")
    if not args:
        raise UsageError(f"{where}.{kinds[0]} is empty")
    return kinds[0], args


def _stage(entry: Any, index: int) -> Stage:
    if not isinstance(entry, dict):
        raise UsageError(f"stage {index + 1} must be a mapping with name, cgan or run, inputs and outputs")
    name = str(entry.get("name", ""))
    where = f"stage '{name}'" if name else f"stage {index + 1}"
    _check_keys(entry, STAGE_KEYS, where)
    if not _NAME.match(name):
        raise UsageError(f"{where} needs a 'name' of letters, digits, '.', '_' or '-'")
    resume = entry.get("resume")
    if resume is not None:
        if not isinstance(resume, dict):
            raise UsageError(f"{where}.resume must be a mapping with when_exists and cgan or run")
        _check_keys(resume, ("when_exists", "cgan", "run"), f"{where}.resume")
        _command(resume, f"{where}.resume")
        if not resume.get("when_exists"):
            raise UsageError(f"{where}.resume needs 'when_exists: PATH' (what an interrupted attempt leaves)")
        resume = {k: (list(map(str, v)) if isinstance(v, list) else str(v)) for k, v in resume.items()}
    return Stage(name=name, command=_command(entry, where), inputs=_string_list(entry.get("inputs"), f"{where}.inputs"),
                 outputs=_string_list(entry.get("outputs"), f"{where}.outputs"),
                 env=_env(entry.get("env"), f"{where}.env"), resume=resume,
                 description=str(entry.get("description", "")))


def _normal(path: str) -> str:
    return os.path.normpath(path)


def load_pipeline(path: Path) -> Pipeline:
    """Read and check a pipeline file.

    Raises:
        UsageError: the file is missing or malformed, a stage name repeats, or a stage reads
            something that only a later stage writes.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"pipeline file '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"'{path}' is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("stages"), list) or not raw["stages"]:
        raise UsageError(f"'{path}' must be a mapping with a non-empty 'stages' list")
    _check_keys(raw, PIPELINE_KEYS, f"'{path.name}'")
    name = str(raw.get("name") or path.stem)
    if not _NAME.match(name):
        raise UsageError(f"pipeline name '{name}' must be letters, digits, '.', '_' or '-'")
    workdir = (path.parent / str(raw.get("workdir", "."))).resolve()
    stages = [_stage(entry, i) for i, entry in enumerate(raw["stages"])]
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            raise UsageError(f"stage name '{stage.name}' is used twice in '{path}'")
        seen.add(stage.name)
    for index, stage in enumerate(stages):
        earlier = {_normal(o) for s in stages[:index] for o in s.outputs}
        later = {_normal(o): s.name for s in reversed(stages[index + 1:]) for o in s.outputs}
        for item in stage.inputs:
            if _normal(item) in later and _normal(item) not in earlier:
                raise UsageError(f"stage '{stage.name}' reads '{item}', which only the later stage "
                                 f"'{later[_normal(item)]}' writes; reorder the stages")
    return Pipeline(name, path.resolve(), workdir, _env(raw.get("env"), "env"), stages,
                    str(raw.get("description", "")))


# --- hashing and state --------------------------------------------------------------------------
def path_digest(path: Path) -> Optional[str]:
    """sha256 of a file's bytes, or of a folder's relative names and file hashes; ``None`` if absent."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        digest = hashlib.sha256(b"dir\0")
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(child.relative_to(path).as_posix().encode() + b"\0")
            digest.update((path_digest(child) or "").encode() + b"\0")
        return digest.hexdigest()
    return None


def stage_key(pipeline: Pipeline, stage: Stage, input_digests: Mapping[str, Optional[str]]) -> str:
    """Hash of everything that decides a stage's result."""
    payload = {"settings": stage.settings(), "env": pipeline.env, "inputs": dict(sorted(input_digests.items()))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_state(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline's state file (an empty state if there is none or it is unreadable)."""
    try:
        state = json.loads(pipeline.state_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"version": STATE_VERSION, "pipeline": pipeline.name, "stages": {}}
    state.setdefault("stages", {})
    return state


def write_state(pipeline: Pipeline, state: Mapping[str, Any]) -> None:
    """Replace the state file atomically (a kill leaves the old or the new one, never half)."""
    pipeline.state_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(pipeline.state_path, json.dumps(state, indent=2, sort_keys=True))


@contextlib.contextmanager
def pipeline_lock(pipeline: Pipeline) -> Iterator[None]:
    """Hold an exclusive lock so two runs of one pipeline cannot interleave their stages."""
    import fcntl

    lock_path = pipeline.state_path.with_suffix(".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"pipeline '{pipeline.name}' is already running in '{pipeline.workdir}'") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- deciding and running -----------------------------------------------------------------------
@dataclass
class StagePlan:
    """What :func:`plan_stage` decided for a stage."""

    stage: Stage
    key: str
    run: bool
    reason: str
    resume: bool = False


def input_digests(pipeline: Pipeline, stage: Stage, require: bool = True) -> dict[str, Optional[str]]:
    """Content hashes of the stage's inputs.

    Raises:
        CganRuntimeError: an input is missing (with ``require``).
    """
    digests = {}
    for item in stage.inputs:
        digest = path_digest(pipeline.workdir / item)
        if digest is None and require:
            raise CganRuntimeError(f"stage '{stage.name}' needs '{item}', which does not exist in "
                                   f"'{pipeline.workdir}'; an earlier stage should write it, or create it")
        digests[item] = digest
    return digests


def plan_stage(pipeline: Pipeline, stage: Stage, state: Mapping[str, Any], force: bool = False,
               require_inputs: bool = True) -> StagePlan:
    """Decide whether ``stage`` must run, and why."""
    key = stage_key(pipeline, stage, input_digests(pipeline, stage, require_inputs))
    record = state.get("stages", {}).get(stage.name)
    unfinished = record is not None and record.get("status") != "done" and record.get("key") == key
    resume = bool(unfinished and stage.resume and (pipeline.workdir / stage.resume["when_exists"]).exists())
    if force:
        return StagePlan(stage, key, True, "forced", False)
    if record is None:
        return StagePlan(stage, key, True, "never ran")
    if record.get("key") != key:
        return StagePlan(stage, key, True, "its inputs or settings changed")
    if record.get("status") != "done":
        return StagePlan(stage, key, True, f"its last attempt {record.get('status', 'did not finish')}", resume)
    for output, digest in (record.get("outputs") or {}).items():
        now = path_digest(pipeline.workdir / output)
        if now is None:
            return StagePlan(stage, key, True, f"its output '{output}' is missing")
        if now != digest:
            return StagePlan(stage, key, True, f"its output '{output}' changed since it ran")
    return StagePlan(stage, key, False, "up to date")


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _execute(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    """Run one stage's command; SIGINT/SIGTERM are passed on and the child is waited for."""
    process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env))
    previous: dict[int, Any] = {}

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
        raise _Stopped(signum)

    if _in_main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, forward)
    try:
        return process.wait()
    except _Stopped as stop:
        try:  # give the stage time to stop cleanly (cgan run writes a checkpoint first)
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise CganRuntimeError(f"stopped by signal {stop.signum}; run the pipeline again to continue") from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _in_main_thread() -> bool:
    """Whether signal handlers can be installed here (only in the main thread)."""
    import threading

    return threading.current_thread() is threading.main_thread()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_stage(pipeline: Pipeline, stage: Stage, force: bool = False,
              echo: Callable[[str], None] = print) -> StagePlan:
    """Run one stage if it is not up to date, recording its outcome in the state file.

    Returns:
        The plan that was carried out (``plan.run`` is ``False`` for a skipped stage).

    Raises:
        CganRuntimeError: the stage failed, was stopped or did not write its outputs.
    """
    state = read_state(pipeline)
    plan = plan_stage(pipeline, stage, state, force)
    if not plan.run:
        echo(f"[{pipeline.name}] {stage.name}: skipped ({plan.reason})")
        return plan
    argv = stage.argv(resume=plan.resume)
    shown = ["cgan", *argv[3:]] if argv[:3] == [sys.executable, "-m", "cgan_core.cli"] else argv
    echo(f"[{pipeline.name}] {stage.name}: running ({plan.reason}{'; resuming' if plan.resume else ''}): "
         + shlex.join(shown))
    attempts = int((state["stages"].get(stage.name) or {}).get("attempts", 0)) + 1
    record: dict[str, Any] = {"key": plan.key, "status": "running", "started_at": _now(), "attempts": attempts,
                              "reason": plan.reason}
    state["stages"][stage.name] = record
    write_state(pipeline, state)
    env = dict(os.environ, **pipeline.env, **stage.env)
    started = time.perf_counter()
    try:
        code = _execute(argv, pipeline.workdir, env)
    except CganRuntimeError:
        record.update(status="interrupted", finished_at=_now())
        write_state(pipeline, state)
        raise
    record.update(exit_code=code, finished_at=_now(), seconds=round(time.perf_counter() - started, 3))
    if code != 0:
        record["status"] = "failed"
        write_state(pipeline, state)
        raise CganRuntimeError(f"stage '{stage.name}' failed (exit code {code}); fix it and run the pipeline "
                               "again: the finished stages are skipped and it starts at this one")
    outputs = {item: path_digest(pipeline.workdir / item) for item in stage.outputs}
    missing = [item for item, digest in outputs.items() if digest is None]
    if missing:
        record["status"] = "failed"
        write_state(pipeline, state)
        raise CganRuntimeError(f"stage '{stage.name}' succeeded but did not write its output '{missing[0]}'; "
                               "fix the stage's command or its 'outputs'")
    record.update(status="done", outputs=outputs)
    write_state(pipeline, state)
    return plan


def run_pipeline(pipeline: Pipeline, force: bool = False, echo: Callable[[str], None] = print,
                 only: Sequence[str] = ()) -> list[StagePlan]:
    """Run every stage in order (or only the stages named in ``only``), skipping those up to date.

    Running one stage at a time (``only=["train"]``) is how an external scheduler such as Airflow
    maps the pipeline onto one task per stage while keeping cgan's skipping and state.

    Raises:
        CganRuntimeError: a stage failed (the state records where to start next time).
        UsageError: the same pipeline is already running, or ``only`` names an unknown stage.
    """
    selected = {pipeline.stage(name).name for name in only}
    pipeline.workdir.mkdir(parents=True, exist_ok=True)
    with pipeline_lock(pipeline):
        return [run_stage(pipeline, stage, force, echo) for stage in pipeline.stages
                if not selected or stage.name in selected]


def pipeline_status(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Per stage: the recorded status and whether a run now would execute it, and why.

    Stages after one that would run are reported as waiting on it: their inputs may change.
    """
    state = read_state(pipeline)
    rows: list[dict[str, Any]] = []
    blocked_by: Optional[str] = None
    for stage in pipeline.stages:
        record = state["stages"].get(stage.name) or {}
        row = {"stage": stage.name, "status": record.get("status", "never ran"),
               "finished_at": record.get("finished_at"), "description": stage.description}
        if blocked_by is not None:
            row.update(would_run=True, reason=f"after '{blocked_by}'")
        else:
            plan = plan_stage(pipeline, stage, state, require_inputs=False)
            row.update(would_run=plan.run, reason=plan.reason)
            if plan.run:
                blocked_by = stage.name
        rows.append(row)
    return rows


# --- Prefect ------------------------------------------------------------------------------------
def prefect_flow(pipeline: Pipeline, force: bool = False) -> Any:
    """The pipeline as a Prefect flow: one task per stage, run in order, each through
    :func:`run_stage` (the same skipping and state file as ``cgan pipeline run``).

    Raises:
        MissingDependencyError: Prefect is not installed (``pip install 'cgan[prefect]'``).
    """
    try:
        from prefect import flow, task
    except ImportError:
        raise MissingDependencyError("prefect", "running a pipeline with --engine prefect", "prefect") from None

    def stage_task(stage: Stage) -> Any:
        @task(name=stage.name, retries=0)
        def run() -> dict[str, Any]:
            plan = run_stage(pipeline, stage, force)
            return {"stage": stage.name, "ran": plan.run, "reason": plan.reason}

        return run

    tasks = [stage_task(stage) for stage in pipeline.stages]

    @flow(name=f"cgan-{pipeline.name}", log_prints=True)
    def cgan_pipeline() -> list[dict[str, Any]]:
        pipeline.workdir.mkdir(parents=True, exist_ok=True)
        with pipeline_lock(pipeline):
            return [run() for run in tasks]

    return cgan_pipeline
