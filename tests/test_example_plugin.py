"""The example third-party plugin package (examples/cgan-example-plugin), installed as a user would.

The package is built and installed with pip into a temporary folder (no network: the venv's
setuptools and wheel build it), then used through that folder on ``PYTHONPATH``: ``cgan plugins``
lists it, ``cgan run`` trains its model, and its own test suite (which enables cgan's conformance
kit through the pytest plugin) passes. The main environment is left untouched.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from cgan_core.plugins import Registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "cgan-example-plugin"
CGAN = [sys.executable, "-m", "cgan_core.cli"]
OTHER_PLUGIN_PACKAGES = {"cgan_image", "cgan_text", "cgan_video", "cgan_audio"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install ./examples/cgan-example-plugin`` into a fresh folder; returns the folder."""
    root = tmp_path_factory.mktemp("example-plugin")
    source = root / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = root / "site"
    offline = all(importlib.util.find_spec(name) for name in ("setuptools", "wheel"))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
               "--target", str(target), str(source)]
    if offline:  # build with this venv's setuptools instead of fetching them into an isolated env
        command.insert(5, "--no-build-isolation")
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return target


def _env(site: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env.pop("CGAN_LOAD_PLUGINS", None)
    env.update(extra)
    return env


def test_pip_installed_package_is_listed_by_cgan_plugins(site):
    result = subprocess.run([*CGAN, "plugins", "--json"], capture_output=True, text=True, env=_env(site), cwd=site)
    assert result.returncode == 0, result.stderr
    records = {row["name"]: row for row in json.loads(result.stdout)}
    points, mlp_image = records["points"], records["mlp-image"]
    for record in (points, mlp_image):
        assert (record["package"], record["version"], record["status"], record["builtin"]) == \
            ("cgan-example-points", "0.1.0", "ok", False)
    assert points["registered"] == {
        "modalities": ["points"], "models": ["mlp-gan"], "datasets": ["points/ring", "points/grid"],
        "losses": ["relativistic-average"], "metrics": ["points/modes-covered", "points/high-quality-fraction"],
    }
    assert mlp_image["registered"] == {"models": ["mlp-image"]}
    assert records["image"]["status"] == "ok"  # the core and built-ins are untouched


def test_cgan_run_trains_the_plugin_model_and_its_command_plots_it(site, tmp_path):
    run_dir = tmp_path / "ring"
    train = [*CGAN, "run", "--modality", "points", "--plugin", "mlp-gan", "--max-steps", "40", "--no-progress",
             "--set", "model.hidden=32", "--set", "data.n_points=512", "--set", "train.checkpoint_every=20",
             "--out", str(run_dir)]
    result = subprocess.run(train, capture_output=True, text=True, env=_env(site), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = (run_dir / "config.yaml").read_text()
    assert "modality: points" in config and "loss: relativistic-average" in config
    logs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert logs[-1]["step"] == 40 and {"loss_d", "loss_g"} <= set(logs[-1])
    assert (run_dir / "checkpoints" / "step-00000040").is_dir()
    result = subprocess.run([*CGAN, "points", "plot", str(run_dir), "-n", "300"], capture_output=True, text=True,
                            env=_env(site), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "modes covered" in result.stdout and (run_dir / "points-plot.png").stat().st_size > 0


def test_cgan_load_plugins_selects_third_party_plugins(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))

    def statuses(selection: str) -> dict[str, str]:
        monkeypatch.setenv("CGAN_LOAD_PLUGINS", selection)
        registry = Registry()
        registry.load_entry_points()
        return {record.name: record.status for record in registry.plugins}

    assert statuses("")["points"] == "disabled" and statuses("")["image"] == "ok"
    only_points = statuses("points")
    assert only_points["points"] == "ok" and only_points["mlp-image"] == "disabled"
    monkeypatch.delenv("CGAN_LOAD_PLUGINS")
    registry = Registry()
    registry.load_entry_points()
    assert {"points", "mlp-image"} <= {r.name for r in registry.plugins if r.status == "ok"}  # unset: all load


def test_the_example_package_test_suite_passes_with_the_conformance_kit(site, tmp_path):
    tests = tmp_path / "tests"
    shutil.copytree(EXAMPLE / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    report = tmp_path / "junit.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
               f"--junitxml={report}", str(tests)]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(site), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    cases = ElementTree.parse(report).getroot().iter("testcase")
    passed = {case.get("name") for case in cases if not list(case)}
    for expected in ("plugin:points", "modality:points", "model:mlp-gan", "dataset:points/ring", "dataset:points/grid",
                     "loss:relativistic-average", "metric:points/modes-covered",
                     "metric:points/high-quality-fraction", "plugin:mlp-image", "model:mlp-image"):
        assert f"test_cgan_conformance[{expected}]" in passed
    assert "test_metrics_tell_a_collapsed_generator_from_a_good_one" in passed


def test_the_example_imports_only_the_public_core_api():
    offenders = []
    for path in (EXAMPLE / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for name in names:
                if name.startswith("cgan_core.") or name.split(".")[0] in OTHER_PLUGIN_PACKAGES:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
    requirements = (EXAMPLE / "pyproject.toml").read_text()
    assert 'dependencies = ["cgan>=0.1,<0.2"]' in requirements
