"""Evaluation during training (``--set eval.every=N``): logs, ``best`` checkpoint, untouched trajectory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from cgan_core.cli import build_app

TINY = ["run", "--modality", "image", "--plugin", "dcgan", "--dataset", "digits", "--seed", "2", "--no-progress",
        "--max-steps", "20", "--set", "model.base_channels=8", "--set", "model.latent_dim=16",
        "--set", "train.batch_size=16", "--set", "train.sample_every=0", "--set", "train.checkpoint_every=10"]
EVAL = ["--set", "eval.every=10", "--set", "eval.metrics=fid@classifier,precision@classifier",
        "--set", "eval.n_samples=64", "--set", "eval.best_metric=precision@classifier",
        "--set", "eval.options=classifier.max_steps=120"]


def invoke(*args: str):
    return CliRunner().invoke(build_app(), list(args), catch_exceptions=False)


def weights(run: Path, checkpoint: str) -> dict[str, torch.Tensor]:
    tensors = load_file(str(run / "checkpoints" / checkpoint / "tensors.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith("s/model/")}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and a
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:3]


def test_eval_every_logs_keeps_best_and_leaves_training_unchanged(tmp_path):
    plain, evaluated = tmp_path / "plain", tmp_path / "evaluated"
    assert invoke(*TINY, "--out", str(plain)).exit_code == 0
    result = invoke(*TINY, *EVAL, "--out", str(evaluated))
    assert result.exit_code == 0, result.output

    # Same weights with and without evaluation: it drew no random numbers from the training streams.
    assert_same(weights(plain, "step-00000020"), weights(evaluated, "step-00000020"))

    lines = [json.loads(line) for line in (evaluated / "metrics.jsonl").read_text().splitlines()]
    evals = [line for line in lines if "eval/fid@classifier" in line]
    assert [line["step"] for line in evals] == [10, 20]
    assert all(line["eval/fid@classifier"] > 0 and 0 <= line["eval/precision@classifier"] <= 1 for line in evals)
    step_report = json.loads((evaluated / "eval" / "step-00000010.json").read_text())
    assert step_report["metrics"][0]["n_fake"] == 64 and step_report["metrics"][0]["weights_sha256"]

    best_state = json.loads((evaluated / "checkpoints" / "best" / "state.json").read_text())
    best_step = max(evals, key=lambda line: (line["eval/precision@classifier"], -line["step"]))["step"]
    assert best_state["step"] == best_step
    assert best_state["metrics"]["eval/precision@classifier"] == max(e["eval/precision@classifier"] for e in evals)
    assert list((evaluated / "tb").glob("events.*")), "TensorBoard events were written"
    # eval.options reached the metric: the domain classifier was trained with at most 120 steps.
    from cgan_core.evaluation import default_cache_dir

    recipes = [json.loads(p.read_text())["key"]["recipe"] for p in (default_cache_dir() / "classifiers").glob("*.json")]
    assert {"max_steps": 120} in [{"max_steps": r["max_steps"]} for r in recipes]

    # A kill after step 10 and --resume end with the same weights, and the best is remembered.
    resumed = tmp_path / "resumed"
    shutil.copytree(evaluated, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-00000020")
    (resumed / "checkpoints" / "latest").write_text("step-00000010")
    result = invoke(*TINY, *EVAL, "--out", str(resumed), "--resume")
    assert result.exit_code == 0, result.output
    assert_same(weights(evaluated, "step-00000020"), weights(resumed, "step-00000020"))
    resumed_lines = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in resumed_lines if "eval/fid@classifier" in line] == [10, 20]
    assert json.loads((resumed / "eval" / "step-00000020.json").read_text())["metrics"][0]["value"] == \
        evals[1]["eval/fid@classifier"]


def test_bad_eval_options_fail_before_training(tmp_path):
    result = CliRunner().invoke(build_app(), [*TINY, "--set", "eval.every=5", "--set", "eval.options=classifier.max_steps",
                                              "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "eval.options takes KEY=VALUE" in result.stderr and "'classifier.max_steps'" in result.stderr
    assert not list((tmp_path / "run" / "checkpoints").glob("step-*"))


def test_eval_every_with_an_unknown_metric_fails_before_training(tmp_path):
    result = CliRunner().invoke(build_app(), [*TINY, "--set", "eval.every=5", "--set", "eval.metrics=fid@nope",
                                              "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "unknown metric 'fid@nope'" in result.stderr
    assert not list((tmp_path / "run" / "checkpoints").glob("step-*"))
