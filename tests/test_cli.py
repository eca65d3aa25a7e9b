"""The CLI through typer's CliRunner: listing, errors with exit codes, run, generate, resume rules."""

from __future__ import annotations

import json

import pytest
import yaml
from PIL import Image

from conftest import TINY_DCGAN


def test_list_models_and_losses_as_json(cli):
    result = cli("list", "models", "--json")
    assert result.exit_code == 0
    models = {row["name"]: row for row in json.loads(result.stdout)}
    assert models["dcgan"]["modality"] == "image" and models["dcgan"]["plugin"] == "image"
    losses = {row["name"] for row in json.loads(cli("list", "losses", "--json").stdout)}
    assert {"bce", "hinge", "wasserstein", "lsgan"} <= losses


def test_env_reports_versions_and_plugins(cli):
    result = cli("env", "--json")
    info = json.loads(result.stdout)
    assert info["torch"] and info["plugins"]["image"].endswith("ok")


@pytest.mark.parametrize("args,code,fragment", [
    (["run", "--modality", "smell", "--plugin", "dcgan"], 2, "unknown modality 'smell'; valid: "),
    (["run", "--modality", "image", "--plugin", "stylegan9"], 2, "unknown plugin (model) 'stylegan9'"),
    (["run", "-m", "image", "-p", "dcgan", "--dataset", "no-such-set"], 2, "unknown dataset 'no-such-set'"),
    (["run", "-m", "image", "-p", "dcgan", "--set", "train.lr=1"], 2, "did you mean 'train.lr_g'"),
    (["run", "-m", "image", "-p", "dcgan", "--set", "train.loss=nope", "--max-steps", "1"], 2, "unknown loss 'nope'"),
    (["list", "widgets"], 2, "cannot list 'widgets'"),
    (["generate", "/definitely/not/a/run"], 2, "does not exist"),
])
def test_user_errors_are_one_line_with_exit_code(cli, tmp_path, args, code, fragment):
    if args[0] == "run":
        args = args + ["--out", str(tmp_path / "r"), "--no-progress"]
    result = cli(*args)
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_run_then_generate_writes_the_run_directory_and_pngs(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("run", "-m", "image", "-p", "dcgan", "--max-steps", "6", "--out", str(out), "--no-progress",
                 "--set", "train.checkpoint_every=3", "--set", "train.sample_every=3", *TINY_DCGAN)
    assert result.exit_code == 0, result.output
    for name in ("config.yaml", "data_info.json", "run.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-00000003.png", "step-00000006.png"]
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 6 and {"loss_d", "loss_g"} <= set(lines[-1])

    gen = cli("generate", str(out), "-n", "5", "--seed", "3", "--out", str(tmp_path / "content"))
    assert gen.exit_code == 0, gen.output
    files = sorted((tmp_path / "content").glob("*.png"))
    assert len(files) == 5
    with Image.open(files[0]) as image:
        assert image.size == (32, 32) and image.mode == "L"
    again = cli("generate", str(out), "-n", "5", "--seed", "3", "--out", str(tmp_path / "content2"))
    assert again.exit_code == 0
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in sorted((tmp_path / "content2").glob("*.png"))]


def test_existing_run_is_refused_without_resume_or_overwrite(cli, tmp_path):
    out = tmp_path / "run"
    args = ["run", "-m", "image", "-p", "dcgan", "--max-steps", "2", "--out", str(out), "--no-progress", *TINY_DCGAN]
    assert cli(*args).exit_code == 0
    refused = cli(*args)
    assert refused.exit_code == 2 and "already holds a run; use --resume" in refused.stderr
    assert cli(*args, "--overwrite").exit_code == 0


def test_resume_with_a_different_config_lists_the_differing_keys(cli, tmp_path):
    out = tmp_path / "run"
    base = ["run", "-m", "image", "-p", "dcgan", "--max-steps", "2", "--out", str(out), "--no-progress", *TINY_DCGAN]
    assert cli(*base).exit_code == 0
    changed = cli(*base, "--resume", "--set", "train.lr_d=0.01")
    assert changed.exit_code == 2
    assert "train.lr_d: 0.0002 -> 0.01" in changed.stderr and "--force" in changed.stderr
    extended = cli("run", "--out", str(out), "--resume", "--no-progress")
    assert extended.exit_code == 0, extended.output  # resuming by --out alone uses the frozen config


def test_forced_resume_changes_only_the_keys_given(cli, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "-m", "image", "-p", "dcgan", "--max-steps", "2", "--out", str(out), "--no-progress",
               *TINY_DCGAN).exit_code == 0
    forced = cli("run", "--out", str(out), "--resume", "--force", "--max-steps", "3", "--set", "train.lr_d=0.01",
                 "--no-progress")
    assert forced.exit_code == 0, forced.output
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train"]["lr_d"] == 0.01 and config["train"]["max_steps"] == 3
    # The rest is the frozen run's config, not the defaults (base_channels 32 would not load).
    assert config["model"]["base_channels"] == 8 and config["train"]["batch_size"] == 16
    assert json.loads((out / "run.json").read_text())["step"] == 3


def test_generate_from_a_run_without_checkpoints_is_a_runtime_error(cli, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "config.yaml").write_text("modality: image\nplugin: dcgan\ndataset: digits\n")
    (out / "data_info.json").write_text(json.dumps({"channels": 1, "resolution": 32}))
    result = cli("generate", str(out), "-n", "2")
    assert result.exit_code == 1 and "holds no checkpoint yet" in result.stderr
