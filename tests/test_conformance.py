"""The conformance kit: the built-in plugins pass it, and it catches each kind of broken plugin.

The built-in plugins are checked through the kit's pytest plugin (the ``cgan_conformance``
marker and the ``cgan_case`` fixture), exactly as a plugin author's suite uses it. The
"broken plugin" tests build a registry around a tiny in-test plugin (modality ``vec``: 4-number
vectors) and break one thing at a time.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any, Optional

import pytest
import torch
from torch import nn

from cgan_core import (
    DatasetSpec, GANModel, LoadedData, LossSpec, MetricSpec, ModalitySpec, ModelSpec, SkipLog, TensorData,
    hookimpl, tensor_fingerprint,
)
from cgan_core.conformance import ConformanceError, check_plugins, collect_cases, run_case
from cgan_core.plugins import PluginRecord, Registry, get_registry, reset_registry
from cgan_core.version import __version__

pytest_plugins = ["pytester"]

BUILTIN = [record.name for record in get_registry().plugins if record.builtin and record.status == "ok"]
reset_registry()


@pytest.mark.cgan_conformance(*BUILTIN)
def test_builtin_plugins_pass_the_kit(cgan_case):
    report = cgan_case.check()
    assert report.checks
    if cgan_case.case.kind == "model":
        assert any(check.startswith("resuming from") for check in report.checks)
        assert any("bit-identical samples" in check for check in report.checks)


def test_builtin_cases_cover_every_registered_component():
    registry = get_registry()
    ids = {case.id for case in collect_cases(BUILTIN, registry)}
    assert {"plugin:core", "plugin:image", "modality:image", "model:dcgan", "dataset:image/digits", "loss:bce"} <= ids
    for name in registry.models:
        if registry.record(registry.owner("models", name)).builtin:
            assert f"model:{name}" in ids


# --- a tiny plugin to break ------------------------------------------------------------------------
@dataclasses.dataclass
class VecData:
    """The ``data`` section of ``vec``.

    Attributes:
        items: Vectors generated.
        max_items: Use at most this many (0 = all).
    """

    items: int = 48
    max_items: int = 0


@dataclasses.dataclass
class VecModelConfig:
    """The ``model`` section of ``vec-gan``.

    Attributes:
        latent_dim: Size of z.
    """

    latent_dim: int = 3


def load_vectors(request: Any) -> LoadedData:
    """``items`` seeded vectors in [-0.9, 0.9]."""
    count = request.config.items if not request.config.max_items else min(request.config.items, request.config.max_items)
    vectors = torch.rand(count, 4, generator=torch.Generator().manual_seed(0)) * 1.8 - 0.9
    return LoadedData(TensorData(vectors), {"shape": [4]}, None, SkipLog(), "vectors", tensor_fingerprint(vectors))


def open_vectors(request: Any) -> LoadedData:
    """Read back what :func:`write_vectors` wrote."""
    rows = [[float(v) for v in line.split()] for line in Path(request.source).read_text().splitlines()]
    vectors = torch.tensor(rows, dtype=torch.float32)
    return LoadedData(TensorData(vectors), {"shape": [4]}, None, SkipLog(), request.source, "")


def write_vectors(samples: torch.Tensor, out_dir: Path, info: Any, data_info: Any, fmt: str = "txt") -> list[Path]:
    """One text file of vectors, 9 significant digits (float32 exact)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"vectors-{info.start_index:06d}.txt"
    path.write_text("".join(" ".join(f"{v:.9g}" for v in row) + "\n" for row in samples.tolist()))
    return [path]


def write_preview(samples: torch.Tensor, path: Path, data_info: Any) -> Path:
    """The preview is the same text."""
    return write_vectors(samples, Path(path).parent, type("Info", (), {"start_index": 0})(), data_info)[0]


class VecGAN(GANModel):
    """Linear generator (tanh) and critic."""

    def __init__(self, config: Any, data_info: Any) -> None:
        super().__init__(config, data_info)
        self.latent_dim = config.model.latent_dim
        self.generator = nn.Sequential(nn.Linear(self.latent_dim, 4), nn.Tanh())
        self.discriminator = nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.randn(n, self.latent_dim, generator=generator)


class VecPlugin:
    """A complete, correct plugin; subclasses break one thing each."""

    model_class: type = VecGAN
    data_config: type = VecData
    write = staticmethod(write_vectors)

    @hookimpl
    def register_modalities(self, register: Any) -> None:
        register(ModalitySpec("vec", self.data_config, open_vectors, type(self).write, write_preview,
                              default_dataset="vectors", content_formats=("txt",), description="4-number vectors",
                              conformance={"roundtrip_atol": 0.0}))

    @hookimpl
    def register_models(self, register: Any) -> None:
        model_class = self.model_class
        register(ModelSpec("vec-gan", "vec", VecModelConfig, lambda config, info: model_class(config, info),
                           train_defaults={"lr_g": 1e-2, "lr_d": 1e-2}, description="linear GAN on vectors"))

    @hookimpl
    def register_datasets(self, register: Any) -> None:
        register(DatasetSpec("vectors", "vec", load_vectors, description="seeded random vectors"))

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(MetricSpec("mean-gap", "vec", lambda ctx: {"mean-gap": float((ctx.real.mean(0) - ctx.fake.mean(0)).abs().sum())},
                            description="distance between the means"))


def registry_with(plugin: Any, name: str = "vec") -> Registry:
    """A registry holding the core's losses and ``plugin``."""
    registry = Registry()
    registry.add_plugin(importlib.import_module("cgan_core.core_plugin"),
                        PluginRecord("core", "cgan", __version__, "cgan_core.core_plugin", builtin=True))
    registry.add_plugin(plugin, PluginRecord(name, "cgan-vec-test", "0.0.1", "tests"))
    return registry


def test_a_correct_plugin_passes_every_case(tmp_path):
    registry = registry_with(VecPlugin())
    reports = check_plugins(["vec"], tmp_path, registry, compute_metrics=True)
    by_id = {report.case.id: report for report in reports}
    assert list(by_id) == ["plugin:vec", "modality:vec", "model:vec-gan", "dataset:vec/vectors", "metric:vec/mean-gap"]
    model = by_id["model:vec-gan"]
    assert model.facts["sample_shape"] == [4, 4] and model.facts["steps"] == 2
    assert model.facts["roundtrip_error_txt"] == 0.0
    assert by_id["metric:vec/mean-gap"].facts["values"] == {"mean-gap": 0.0}  # real data against itself


def _failure(plugin: Any, kind: str, tmp_path: Path, **kwargs: Any) -> str:
    registry = registry_with(plugin)
    (case,) = [c for c in collect_cases(["vec"], registry) if c.kind == kind]
    with pytest.raises(ConformanceError) as info:
        run_case(case, tmp_path, registry, **kwargs)
    return str(info.value)


class IgnoresTheSeed(VecGAN):
    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim)  # the global RNG, not `generator`


class StateOutsideTheCheckpoint(VecGAN):
    def __init__(self, config: Any, data_info: Any) -> None:
        super().__init__(config, data_info)
        self.shift = 0.0  # changes in training but is not saved

    def after_discriminator_step(self, step: int) -> None:
        self.shift += 0.01

    def generate(self, latent: torch.Tensor, generator_module: Any = None) -> torch.Tensor:
        return super().generate(latent, generator_module) * (1.0 - self.shift)


class FrozenCritic(VecGAN):
    def __init__(self, config: Any, data_info: Any) -> None:
        super().__init__(config, data_info)
        self.unused = nn.Parameter(torch.zeros(1))

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        # Bug: the critic's optimiser gets the wrong parameter list.
        return {"generator": list(self.generator.parameters()), "discriminator": [self.unused]}


class OutOfRange(VecGAN):
    def generate(self, latent: torch.Tensor, generator_module: Any = None) -> torch.Tensor:
        return super().generate(latent, generator_module) * 3.0


@dataclasses.dataclass
class UndocumentedData:
    """Keys without documentation."""

    items: int = 48
    max_items: int = 0


def write_with_timestamp(samples: torch.Tensor, out_dir: Path, info: Any, data_info: Any, fmt: str = "txt") -> list[Path]:
    (path,) = write_vectors(samples, out_dir, info, data_info)
    path.write_text(path.read_text() + f"# written {time.perf_counter_ns()}\n")
    return [path]


@pytest.mark.parametrize("model_class, expected", [
    (IgnoresTheSeed, "same torch.Generator seed gave different samples"),
    (StateOutsideTheCheckpoint, "samples after reloading the checkpoint differ"),
    (FrozenCritic, "did not change any discriminator weight"),
    (OutOfRange, "outside [-1.0, 1.0]"),
], ids=["ignores-seed", "state-outside-checkpoint", "frozen-critic", "out-of-range"])
def test_the_kit_catches_a_broken_model(tmp_path, model_class, expected):
    plugin = type("Broken", (VecPlugin,), {"model_class": model_class})()
    assert expected in _failure(plugin, "model", tmp_path)


def test_the_kit_catches_undocumented_config_keys_and_irreproducible_files(tmp_path):
    undocumented = type("Broken", (VecPlugin,), {"data_config": UndocumentedData})()
    message = _failure(undocumented, "modality", tmp_path / "a")
    assert "does not document items, max_items" in message
    irreproducible = type("Broken", (VecPlugin,), {"write": staticmethod(write_with_timestamp)})()
    assert "different bytes" in _failure(irreproducible, "modality", tmp_path / "b")


def test_the_kit_catches_a_loss_with_the_wrong_sign(tmp_path):
    class BackwardsLoss:
        @hookimpl
        def register_losses(self, register: Any) -> None:
            register(LossSpec("backwards", lambda real, fake: (real - fake).mean(), lambda fake: fake.mean(),
                              description="rewards the wrong side"))

    registry = registry_with(BackwardsLoss(), "backwards")
    (case,) = [c for c in collect_cases(["backwards"], registry) if c.kind == "loss"]
    with pytest.raises(ConformanceError, match="not lower when the critic is right"):
        run_case(case, tmp_path, registry)


def test_a_missing_or_failed_plugin_fails_its_plugin_case(tmp_path):
    registry = registry_with(VecPlugin())
    (case,) = collect_cases(["not-installed"], registry)
    with pytest.raises(ConformanceError, match="'not-installed': is not installed"):
        run_case(case, tmp_path, registry)

    class Raises:
        @hookimpl
        def register_models(self, register: Any) -> None:
            raise RuntimeError("boom")

    registry.add_plugin(Raises(), PluginRecord("raises", "cgan-raises", "1.0", "tests"))
    (case,) = collect_cases(["raises"], registry)
    with pytest.raises(ConformanceError, match="status is failed: register_models raised RuntimeError: boom"):
        run_case(case, tmp_path, registry)


def test_the_pytest_plugin_refuses_a_case_fixture_without_plugins(pytester):
    pytester.makepyfile("def test_x(cgan_case):\n    cgan_case.check()\n")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*requests 'cgan_case' but names no cgan plugin*"])


def test_plugins_can_be_named_on_the_command_line_or_in_the_ini_file(pytester):
    expected = len(collect_cases(["core"]))  # plugin:core and one case per core loss
    assert expected >= 7
    pytester.makepyfile("def test_kit(cgan_case):\n    assert cgan_case.check().checks\n")
    pytester.runpytest("--cgan-plugin", "core").assert_outcomes(passed=expected)
    pytester.makeini("[pytest]\ncgan_conformance_plugins = core\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=expected)
    result.stdout.fnmatch_lines(["*test_kit?loss:hinge? PASSED*"])
