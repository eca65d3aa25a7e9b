"""The resume guarantee, through real processes: SIGKILL mid-run + --resume == uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

CGAN = [sys.executable, "-m", "cgan_core.cli"]
# Bit-identity holds for the same machine *and* the same kernel configuration: a different
# number of intra-op threads changes the order of floating-point reductions.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# The command, with checkpoints every 10 steps so a kill lands between two of them.
COMMAND = ["run", "--modality", "image", "--plugin", "dcgan", "--dataset", "digits", "--max-steps", "60",
           "--seed", "1", "--deterministic", "--no-progress", "--set", "train.checkpoint_every=10",
           "--set", "train.sample_every=20"]


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    latest = (run / "checkpoints" / "latest").read_text().strip()
    assert latest == "step-00000060"
    tensors = load_file(str(run / "checkpoints" / latest / "tensors.safetensors"))
    weights = {k: v for k, v in tensors.items() if k.startswith("s/model/")}
    assert any("generator" in k for k in weights) and any("discriminator" in k for k in weights)
    return weights


def _wait_for_checkpoint(run: Path, process: subprocess.Popen, minimum_step: int, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pointer = run / "checkpoints" / "latest"
        if pointer.exists() and int(pointer.read_text().strip().split("-")[1]) >= minimum_step:
            return
        assert process.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared in time")


def test_sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight"
    subprocess.run(CGAN + COMMAND + ["--out", str(straight)], check=True, capture_output=True, timeout=1800, env=ENV)

    killed = tmp_path / "killed"
    process = subprocess.Popen(CGAN + COMMAND + ["--out", str(killed)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=ENV)
    _wait_for_checkpoint(killed, process, 20)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    info = json.loads((killed / "run.json").read_text())
    assert info["status"] == "running" and info["step"] < 60  # it really died mid-run

    resumed = subprocess.run(CGAN + COMMAND + ["--out", str(killed), "--resume"], capture_output=True, text=True,
                             timeout=1800, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _final_weights(straight), _final_weights(killed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]
    assert json.loads((killed / "run.json").read_text())["status"] == "completed"
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 60  # no duplicated log lines after the resume


def test_sigterm_writes_a_checkpoint_and_exits_130(tmp_path):
    run = tmp_path / "run"
    command = CGAN + ["run", "-m", "image", "-p", "dcgan", "--max-steps", "100000", "--no-progress",
                      "--set", "model.base_channels=8", "--set", "train.checkpoint_every=5", "--out", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(run, process, 5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "stopped by signal" in stderr and "--resume" in stderr and "Traceback" not in stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert (run / "checkpoints" / "latest").read_text().strip() == f"step-{info['step']:08d}"
