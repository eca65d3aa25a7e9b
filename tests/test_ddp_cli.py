"""``cgan run --nproc 2`` (torchrun on the CPU with gloo): one run, killed and resumed with 1 process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CGAN, TINY_DCGAN

from cgan_core.checkpoint import latest_name


def _wait_for_checkpoint(run: Path, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        name = latest_name(run / "checkpoints") if (run / "checkpoints").is_dir() else None
        if name:
            return name
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before its first checkpoint:\n"
                        f"{process.stdout.read()[-3000:]}")
        time.sleep(0.1)
    pytest.fail("no checkpoint was written in time")


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            pytest.fail(f"workers {pids} still running after their launcher was killed")
        time.sleep(0.1)


def test_nproc_run_launcher_killed_then_resumed_with_one_process(tmp_path: Path) -> None:
    """SIGKILL the launcher and torchrun: the workers (in sessions of their own) get SIGTERM from
    the kernel, agree to stop at the same step, rank 0 writes a checkpoint; 1 process resumes."""
    run = tmp_path / "run"
    env = dict(os.environ, CGAN_DB_URL="none")
    args = [*CGAN, "run", "--modality", "image", "--plugin", "dcgan", "--dataset", "digits", "--max-steps", "40",
            "--out", str(run), "--device", "cpu", "--no-progress", *TINY_DCGAN, "--set", "data.max_items=512",
            "--set", "train.batch_size=64", "--set", "train.checkpoint_every=3", "--set", "train.tensorboard=false"]
    launcher = subprocess.Popen([*args, "--nproc", "2"], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    workers: list[int] = []
    try:
        _wait_for_checkpoint(run, launcher, timeout=240)
        agents = _children(launcher.pid)
        workers = [pid for agent in agents for pid in _children(agent)]
        assert len(agents) == 1 and len(workers) == 2
    finally:
        for pid in [launcher.pid, *_children(launcher.pid)]:
            os.kill(pid, signal.SIGKILL)
        launcher.wait()
    _wait_gone(workers, timeout=120)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted", info  # rank 0 stopped cleanly, not mid-write
    stopped_at = info["step"]
    assert 3 <= stopped_at < 40
    assert latest_name(run / "checkpoints") == f"step-{stopped_at:08d}"
    # Continue the 2-process run with 1 process: the data order's global position carries over.
    resumed = subprocess.run([*CGAN, "run", "--resume", "--out", str(run), "--no-progress"], env=env, text=True,
                             capture_output=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "step 40" in resumed.stdout
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["step"] == 40
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # one writer, no step logged twice
    checkpoint = json.loads((run / "checkpoints" / "step-00000040" / "state.json").read_text())
    order = dict(dict(checkpoint["payload"]["__dict__"])["trainer"]["__dict__"])["order"]
    assert dict(order["__dict__"])["world_size"] == 1


def test_nproc_relaunches_under_torchrun_with_the_given_options(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import cgan_core.cli.train as train

    launched = []
    monkeypatch.setattr(train.subprocess, "call", lambda command: launched.append(command) or 0)
    result = cli("run", "-m", "image", "--plugin", "dcgan", "--nproc", "3", "--set", "train.batch_size=8",
                 "--set", "model.base_channels=8", "--no-progress", "--out", "somewhere")
    assert result.exit_code == 0
    (command,) = launched
    assert command[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3", "-m"]
    tail = command[6:]
    assert tail[:2] == ["cgan_core.cli", "run"]
    assert "--nproc" not in tail
    assert tail[tail.index("--modality") + 1] == "image" and tail[tail.index("--plugin") + 1] == "dcgan"
    assert [tail[i + 1] for i, a in enumerate(tail) if a == "--set"] == ["train.batch_size=8", "model.base_channels=8"]
    assert "--no-progress" in tail and tail[tail.index("--out") + 1] == "somewhere"
    assert "--resume" not in tail and "--device" not in tail  # options left at their defaults are not passed


def test_nproc_errors(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("run", "-m", "image", "-p", "dcgan", "--nproc", "0")
    assert result.exit_code == 2 and "--nproc must be 1 or more" in result.output
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    result = cli("run", "-m", "image", "-p", "dcgan", "--nproc", "2")
    assert result.exit_code == 2 and "cannot be used under torchrun" in result.output


def test_auto_resume_starts_a_run_then_continues_it(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "-m", "image", "-p", "dcgan", "--out", str(out), "--auto-resume", "--no-progress", "--device",
            "cpu", *TINY_DCGAN, "--set", "data.max_items=64", "--set", "train.tensorboard=false",
            "--set", "train.checkpoint_every=2", "--set", "train.log_every=1", "--max-steps", "3", "--db", "none"]
    first = cli(*args)
    assert first.exit_code == 0 and "(step 3," in first.stdout
    created = json.loads((out / "run.json").read_text())["created_at"]
    second = cli(*args)  # the same job started again (a restarted pod): it continues, nothing is replaced
    assert second.exit_code == 0 and "(step 3," in second.stdout
    assert json.loads((out / "run.json").read_text())["created_at"] == created
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    for extra in (["--resume"], ["--overwrite"]):
        result = cli(*args, *extra)
        assert result.exit_code == 2 and "--auto-resume needs --out and excludes" in result.output


def test_seqgan_under_nproc_2_writes_one_run_that_one_process_continues(tmp_path: Path) -> None:
    """SeqGAN's own step functions (MLE epochs, discriminator rounds, rollouts) under torchrun."""
    from test_text_cli import TINY_ORACLE, TINY_SEQGAN

    run = tmp_path / "seqgan"
    env = dict(os.environ, CGAN_DB_URL="none")
    args = [*CGAN, "run", "--modality", "text", "--plugin", "seqgan", "--dataset", "oracle", "--out", str(run),
            "--device", "cpu", "--no-progress", *TINY_SEQGAN, *TINY_ORACLE, "--set", "train.batch_size=8",
            "--set", "train.checkpoint_every=1", "--set", "train.keep_last=10", "--set", "train.log_every=1"]
    done = subprocess.run([*args, "--nproc", "2"], env=env, text=True, capture_output=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["step"] == 5  # mle 1, pretrain_d 1, adversarial 3
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5]  # rank 0 alone writes
    assert all("reward" in line for line in lines[2:])  # the adversarial iterations ran
    # 96 oracle sequences, 2 ranks of batch 8: an MLE epoch is 48 items per rank -> 6 batches each.
    state = json.loads((run / "checkpoints" / "step-00000001" / "state.json").read_text())
    order = dict(dict(dict(state["payload"]["__dict__"])["trainer"]["__dict__"])["order"]["__dict__"])
    assert order["world_size"] == 2 and order["position"] == 96
    more = subprocess.run([*CGAN, "run", "--resume", "--out", str(run), "--no-progress", "--set",
                           "phases.adversarial.iterations=4", "--force"], env=env, text=True, capture_output=True,
                          timeout=300)
    assert more.returncode == 0, more.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["step"] == 6
