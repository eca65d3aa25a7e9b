"""The conformance kit's checks: what every registered component of a plugin must do.

For each plugin (entry-point name) the kit makes one *case* per thing the plugin registered,
and each case runs a fixed list of checks:

- ``plugin``: it loaded (status ``ok``) and registered something or adds commands.
- ``modality``: metadata is complete; the writers turn a batch of real items into content files
  deterministically (and, with ``conformance["roundtrip_atol"]``, back into the same tensors
  through ``open_source``); the preview writer and TensorBoard logger work.
- ``model``: metadata is complete; the model builds tiny, trains a couple of CPU steps per phase
  on the dataset's tiny variant with finite losses and moving weights; samples have the data's
  shape, dtype and range and depend only on the seed; a checkpoint reloads to bit-identical
  samples, and resuming from an earlier checkpoint reproduces the uninterrupted run.
- ``dataset``: metadata; the tiny variant loads, non-empty, JSON-able ``info``, twice the same.
- ``loss``: metadata; scalar, finite, differentiable, and lower when the critic is right.
- ``metric``: metadata; optionally (``compute_metrics=True``) finite values on real data.

Plugins say what "tiny" means through the optional ``conformance`` mappings of their
:class:`~cgan_core.specs.ModalitySpec`, :class:`~cgan_core.specs.ModelSpec` and
:class:`~cgan_core.specs.DatasetSpec`: dotted config overrides such as
``{"model.base_channels": 8}`` plus a few kit keys (see :data:`KIT_KEYS`). Everything here is
plain Python (no pytest); :mod:`cgan_core.testing` wraps it as a pytest plugin.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from cgan_core.configdoc import describe_section
from cgan_core.plugins import REGISTRATION_HOOKS, Registry, get_registry

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]*$")
"""Registry names allow lower case letters, digits, ``-``, ``.``, ``_`` and ``@`` (``fid@effnet-lite0``)."""

KIND_OF_TABLE = {"modalities": "modality", "models": "model", "datasets": "dataset", "losses": "loss",
                 "metrics": "metric"}
"""Registry table -> case kind."""

KIT_TRAIN_SETTINGS: dict[str, Any] = {
    "train.batch_size": 8,
    "train.checkpoint_every": 1,
    "train.keep_last": 100,
    "train.sample_every": 0,
    "train.n_preview": 4,
    "train.log_every": 1,
    "train.tensorboard": False,
    "train.device": "cpu",
    "train.amp": False,
    "train.seed": 0,
}
"""What the kit sets before a plugin's own ``conformance`` overrides (which win)."""

TINY_ITEMS = 64
"""``data.max_items`` the kit sets when the data section has that key and no plugin set it."""

KIT_KEYS = {
    "dataset": "ModelSpec: dataset to train on (default: the modality's default dataset)",
    "steps": "ModelSpec: training steps per phase (default 2)",
    "roundtrip_atol": "ModalitySpec: read written content back with open_source; values must match within this",
    "deterministic_files": "ModalitySpec: False when the content format cannot be byte-identical (default True)",
    "sample_range": "ModalitySpec: [low, high] every sample value must lie in (default: inferred from the data)",
}
"""Non-dotted keys of the ``conformance`` mappings and what they mean."""

SAMPLE_SEED = 1234
N_SAMPLES = 4


class ConformanceError(AssertionError):
    """A check failed; the message names the component, what was wrong and what would be right."""


@dataclass
class Case:
    """One component to check.

    Attributes:
        kind: ``plugin``, ``modality``, ``model``, ``dataset``, ``loss`` or ``metric``.
        key: Registry key (datasets and metrics are ``modality/name``).
        plugin: Entry-point name of the plugin that registered it.
    """

    kind: str
    key: str
    plugin: str

    @property
    def id(self) -> str:
        """Test id, e.g. ``model:dcgan``."""
        return f"{self.kind}:{self.key}"


@dataclass
class CaseReport:
    """What a passing case checked.

    Attributes:
        case: The case.
        checks: Names of the checks that ran and passed, in order.
        notes: Things the kit could not check, and why.
        facts: Measured values (losses, sample shape, files written).
    """

    case: Case
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def _fail(what: str, message: str) -> ConformanceError:
    return ConformanceError(f"{what}: {message}")


# --- collecting cases -----------------------------------------------------------------------------
def collect_cases(plugins: Iterable[str], registry: Optional[Registry] = None) -> list[Case]:
    """One case per plugin and per thing each plugin registered.

    Args:
        plugins: Entry-point names (``cgan plugins`` shows them).
        registry: Registry to read (default: the process-wide one).

    Returns:
        The cases; a plugin that is not installed or failed still yields its ``plugin`` case,
        which then fails with the reason.
    """
    registry = registry or get_registry()
    cases: list[Case] = []
    for name in plugins:
        cases.append(Case("plugin", name, name))
        record = registry.record(name)
        if record is None or record.status != "ok":
            continue
        for table in (table for table, _ in REGISTRATION_HOOKS.values()):
            for key in record.registered.get(table, []):
                cases.append(Case(KIND_OF_TABLE[table], key, name))
    return cases


def run_case(case: Case, workdir: Path, registry: Optional[Registry] = None,
             compute_metrics: bool = False) -> CaseReport:
    """Run every check of one case.

    Args:
        case: What to check.
        workdir: An empty directory the checks may write runs and content files into.
        registry: Registry to use (default: the process-wide one).
        compute_metrics: Also compute each metric on real data (off by default: some metrics
            need feature extractors or a trained model).

    Raises:
        ConformanceError: on the first failing check.
    """
    registry = registry or get_registry()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    report = CaseReport(case)
    if case.kind == "plugin":
        check_plugin(case.key, registry, report)
    elif case.kind == "modality":
        check_modality(registry.modality(case.key), registry, workdir, report)
    elif case.kind == "model":
        check_model(registry.model(case.key), registry, workdir, report)
    elif case.kind == "dataset":
        check_dataset(registry.tables["datasets"][case.key], registry, report)
    elif case.kind == "loss":
        check_loss(registry.loss(case.key), report)
    elif case.kind == "metric":
        check_metric(registry.tables["metrics"][case.key], registry, workdir, report, compute_metrics)
    else:
        raise ValueError(f"unknown case kind '{case.kind}'")
    return report


def check_plugins(plugins: Iterable[str], workdir: Path, registry: Optional[Registry] = None,
                  compute_metrics: bool = False) -> list[CaseReport]:
    """Run every case of the named plugins (outside pytest), stopping at the first failure.

    Example:
        >>> check_plugins(["points"], Path("/tmp/kit"))  # doctest: +SKIP
    """
    registry = registry or get_registry()
    reports = []
    for index, case in enumerate(collect_cases(plugins, registry)):
        reports.append(run_case(case, Path(workdir) / f"{index:03d}-{case.kind}", registry, compute_metrics))
    return reports


# --- metadata -------------------------------------------------------------------------------------
def _check_name(what: str, name: Any) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _fail(what, f"name {name!r} must be lower case letters, digits, '-', '.', '_' or '@' "
                          "(it is typed on the command line)")


def _check_description(what: str, description: Any) -> None:
    if not isinstance(description, str) or not description.strip():
        raise _fail(what, "has no description; give the spec a one-line description for 'cgan list'")
    if "\n" in description.strip():
        raise _fail(what, "description spans several lines; 'cgan list' shows one line")


def _check_callable(what: str, value: Any, field_name: str, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        raise _fail(what, f"{field_name} is {type(value).__name__}, expected a callable")


def check_config_class(what: str, cls: Any) -> None:
    """A config section must be a dataclass with a default for every key and a docstring
    sentence for every key (the configuration reference is generated from it).

    Raises:
        ConformanceError: naming the missing default or documentation.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise _fail(what, f"config {cls!r} is not a dataclass type")
    try:
        cls()
    except TypeError as exc:
        raise _fail(what, f"config {cls.__name__} cannot be built with defaults ({exc}); "
                          "give every key a default") from None
    missing = [key.name for key in describe_section(cls) if not key.description]
    if missing:
        raise _fail(what, f"config {cls.__name__} does not document {', '.join(missing)} in its docstring's "
                          "'Attributes:' section (the configuration reference is generated from it)")


def _check_keys(what: str, mapping: Mapping[str, Any], cls: type, label: str) -> None:
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - valid)
    if unknown:
        raise _fail(what, f"{label} names unknown keys {unknown} of {cls.__name__}; valid: {', '.join(sorted(valid))}")


def _check_conformance_mapping(what: str, mapping: Any, allowed_kit_keys: Sequence[str]) -> None:
    if not isinstance(mapping, Mapping):
        raise _fail(what, f"conformance is {type(mapping).__name__}, expected a mapping")
    for key in mapping:
        if "." not in key and key not in allowed_kit_keys:
            raise _fail(what, f"conformance key '{key}' is neither a dotted config key (section.key) nor one of "
                              f"{', '.join(allowed_kit_keys) or '(none here)'}")


def check_plugin(name: str, registry: Registry, report: CaseReport) -> None:
    """The plugin is installed, loaded with status ``ok`` and contributes something."""
    record = registry.record(name)
    installed = sorted(r.name for r in registry.plugins)
    if record is None:
        raise _fail(f"plugin '{name}'", f"is not installed (installed: {', '.join(installed)}); "
                                        "install the package so its 'cgan.plugins' entry point is visible")
    if record.status != "ok":
        raise _fail(f"plugin '{name}'", f"status is {record.status}: {record.error}")
    report.checks.append("loaded")
    commands = [impl for impl in registry.plugin_manager.hook.register_commands.get_hookimpls()
                if impl.plugin_name == name]
    if not any(record.registered.values()) and not commands:
        raise _fail(f"plugin '{name}'", "registers nothing and adds no command; implement at least one hook")
    report.facts["registered"] = {table: list(keys) for table, keys in record.registered.items()}
    report.facts["commands"] = bool(commands)
    report.checks.append("registers something")


def _metadata_modality(spec: Any, registry: Registry) -> None:
    what = f"modality '{spec.name}'"
    _check_name(what, spec.name)
    check_config_class(what, spec.data_config)
    for attr in ("open_source", "write_samples", "write_preview"):
        _check_callable(what, getattr(spec, attr), attr)
    _check_callable(what, spec.log_preview, "log_preview", optional=True)
    _check_description(what, spec.description)
    formats = list(spec.content_formats)
    if not formats or not all(isinstance(f, str) and f for f in formats):
        raise _fail(what, f"content_formats {formats!r} must list at least one format name such as 'png'")
    datasets = registry.datasets(spec.name)
    if spec.default_dataset and spec.default_dataset not in datasets:
        raise _fail(what, f"default_dataset '{spec.default_dataset}' is not a registered dataset of the modality "
                          f"(registered: {', '.join(sorted(datasets)) or 'none'})")
    metrics = registry.metrics(spec.name)
    missing = [m for m in spec.default_metrics if m not in metrics]
    if missing:
        raise _fail(what, f"default_metrics {missing} are not registered for the modality "
                          f"(registered: {', '.join(sorted(metrics)) or 'none'})")
    if int(spec.default_eval_samples) <= 0:
        raise _fail(what, f"default_eval_samples must be positive, got {spec.default_eval_samples}")
    _check_conformance_mapping(what, spec.conformance, ("roundtrip_atol", "deterministic_files", "sample_range"))


def _metadata_model(spec: Any, registry: Registry) -> None:
    from cgan_core.config import CORE_SECTIONS, TrainConfig

    what = f"model '{spec.name}'"
    _check_name(what, spec.name)
    if spec.modality not in registry.modalities:
        raise _fail(what, f"modality '{spec.modality}' is not registered "
                          f"(registered: {', '.join(sorted(registry.modalities)) or 'none'})")
    check_config_class(what, spec.config)
    _check_callable(what, spec.build, "build")
    _check_description(what, spec.description)
    _check_keys(what, spec.train_defaults, TrainConfig, "train_defaults")
    _check_keys(what, spec.data_defaults, registry.modalities[spec.modality].data_config, "data_defaults")
    for section, cls in spec.extra_sections.items():
        if section in CORE_SECTIONS or section in ("data", "model"):
            raise _fail(what, f"extra section '{section}' clashes with a core section; rename it")
        check_config_class(f"{what} section '{section}'", cls)
    _check_conformance_mapping(what, spec.conformance, ("dataset", "steps"))


# --- tiny runs ------------------------------------------------------------------------------------
def _dotted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if "." in key}


def tiny_settings(model: Any = None, modality: Any = None, dataset: Any = None) -> dict[str, Any]:
    """Dotted overrides of a tiny run: the kit's, then the modality's, dataset's and model's own."""
    settings: dict[str, Any] = dict(KIT_TRAIN_SETTINGS)
    if modality is not None and "max_items" in {f.name for f in dataclasses.fields(modality.data_config)}:
        settings["data.max_items"] = TINY_ITEMS
    for spec in (modality, dataset, model):
        if spec is not None:
            settings.update(_dotted(getattr(spec, "conformance", {}) or {}))
    return settings


def _tiny_dataset_name(modality: Any, registry: Registry, model: Any = None) -> Optional[str]:
    if model is not None and (model.conformance or {}).get("dataset"):
        return str(model.conformance["dataset"])
    if modality.default_dataset:
        return modality.default_dataset
    names = sorted(registry.datasets(modality.name))
    return names[0] if names else None


def tiny_data_config(modality: Any, dataset: Any) -> Any:
    """The ``data`` section of a dataset's tiny variant (no model involved)."""
    from cgan_core.config import merge_layers, nest

    settings = tiny_settings(modality=modality, dataset=dataset)
    data_only = {k: v for k, v in settings.items() if k.startswith("data.")}
    layers = [{"data": dict(dataset.data_defaults)} if dataset is not None else {}, nest(data_only)]
    return merge_layers({"data": modality.data_config}, layers)["data"]


def _first_items(data: Any, count: int) -> Any:
    from cgan_core.data import collate

    count = min(count, len(data))
    return collate([data.dataset[i] for i in range(count)])


def _check_info_json(what: str, info: Any) -> None:
    if not isinstance(info, dict):
        raise _fail(what, f"LoadedData.info is {type(info).__name__}, expected a dict")
    try:
        json.dumps(info)
    except (TypeError, ValueError) as exc:
        raise _fail(what, f"LoadedData.info is not JSON-serialisable ({exc}); it is stored in data_info.json "
                          "so 'cgan generate' can rebuild the model") from None


class _RecordingWriter:
    """Stands in for a TensorBoard ``SummaryWriter`` and records which ``add_*`` methods ran."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if not name.startswith("add_"):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)

        return record


def check_writers(spec: Any, samples: Any, data_info: Mapping[str, Any], data_config: Any, workdir: Path,
                  report: CaseReport, label: str) -> None:
    """Content files from ``samples`` in every format: present, named by format, reproducible,
    and (with ``roundtrip_atol``) read back by ``open_source`` as the same tensors."""
    import torch

    from cgan_core.specs import DataRequest, SampleInfo

    what = f"modality '{spec.name}'"
    options = spec.conformance or {}
    deterministic = bool(options.get("deterministic_files", True))
    atol = options.get("roundtrip_atol")
    info = SampleInfo(seed=SAMPLE_SEED, start_index=0, run="conformance", checkpoint="step-00000002")
    written = {}
    for fmt in list(spec.content_formats):
        outputs = []
        for attempt in ("a", "b"):
            out_dir = workdir / f"{label.replace(' ', '-')}-{fmt}-{attempt}"
            paths = spec.write_samples(samples, out_dir, info, dict(data_info), fmt=fmt)
            if not isinstance(paths, (list, tuple)) or not paths:
                raise _fail(what, f"write_samples(fmt='{fmt}') returned {paths!r}; expected the list of files written")
            for path in map(Path, paths):
                if not path.is_file() or path.stat().st_size == 0:
                    raise _fail(what, f"write_samples(fmt='{fmt}') listed '{path}', which is missing or empty")
                if out_dir.resolve() not in path.resolve().parents:
                    raise _fail(what, f"write_samples wrote '{path}' outside the output folder '{out_dir}'")
                if path.suffix.lower() != f".{fmt.lower()}":
                    raise _fail(what, f"write_samples(fmt='{fmt}') wrote '{path.name}'; expected a .{fmt} file")
            outputs.append((out_dir, [Path(p) for p in paths]))
        (dir_a, paths_a), (dir_b, paths_b) = outputs
        names_a = [p.relative_to(dir_a) for p in paths_a]
        names_b = [p.relative_to(dir_b) for p in paths_b]
        if names_a != names_b:
            raise _fail(what, f"writing the same samples twice gave different file names ({names_a[:2]} vs {names_b[:2]})")
        if deterministic:
            for a, b in zip(paths_a, paths_b):
                if a.read_bytes() != b.read_bytes():
                    raise _fail(what, f"writing the same samples twice gave different bytes in '{a.name}' (format {fmt}); "
                                      "content must be reproducible from run, checkpoint and seed, or declare "
                                      "conformance={'deterministic_files': False}")
        written[fmt] = len(paths_a)
        if atol is not None:
            source = paths_a[0] if len(paths_a) == 1 else dir_a
            try:
                loaded = spec.open_source(DataRequest(source=str(source), config=data_config))
            except Exception as exc:  # the plugin's own reader failed on the plugin's own files
                raise _fail(what, f"open_source could not read back its own '{fmt}' content of {label} "
                                  f"({type(exc).__name__}: {exc})") from None
            back = _first_items(loaded, len(loaded))
            if not isinstance(back, torch.Tensor) or not isinstance(samples, torch.Tensor):
                raise _fail(what, f"roundtrip_atol is set but '{fmt}' content read back is not one tensor")
            if tuple(back.shape) != tuple(samples.shape):
                raise _fail(what, f"'{fmt}' content read back has shape {tuple(back.shape)}, the samples {tuple(samples.shape)}")
            error = float((back.double() - samples.double()).abs().max()) if samples.numel() else 0.0
            if not error <= float(atol):
                raise _fail(what, f"'{fmt}' content read back differs from the samples by {error:.3g} > roundtrip_atol {atol}")
            report.facts[f"roundtrip_error_{fmt}"] = error
    report.facts[f"{label}_files"] = written
    report.checks.append(f"writes {label} as {', '.join(written)}" + (" reproducibly" if deterministic else ""))
    if atol is not None:
        report.checks.append(f"reads its own content back within {atol}")
    else:
        report.notes.append("no roundtrip_atol declared: content was not read back")
    preview = spec.write_preview(samples, workdir / f"{label.replace(' ', '-')}-preview" / "preview", dict(data_info))
    if preview is None or not Path(preview).is_file() or Path(preview).stat().st_size == 0:
        raise _fail(what, f"write_preview returned {preview!r}; expected the path of a non-empty file")
    report.checks.append("writes a preview")
    if spec.log_preview is not None:
        writer = _RecordingWriter()
        spec.log_preview(writer, "samples", samples, 1, dict(data_info))
        if not writer.calls:
            raise _fail(what, "log_preview called no add_* method of the SummaryWriter")
        report.checks.append(f"logs a preview ({', '.join(sorted(set(writer.calls)))})")


def check_modality(spec: Any, registry: Registry, workdir: Path, report: CaseReport) -> None:
    """Metadata, then the writers on a few items of the modality's tiny dataset."""
    _metadata_modality(spec, registry)
    report.checks.append("metadata complete")
    dataset_name = _tiny_dataset_name(spec, registry)
    if dataset_name is None:
        report.notes.append("no dataset registered for the modality: writers not exercised")
        return
    from cgan_core.specs import DataRequest

    dataset = registry.datasets(spec.name).get(dataset_name)
    config = tiny_data_config(spec, dataset)
    loader = dataset.load if dataset is not None else spec.open_source
    data = loader(DataRequest(source=dataset_name, config=config, cache_dir=workdir / "cache"))
    if len(data) == 0:
        raise _fail(f"modality '{spec.name}'", f"tiny variant of dataset '{dataset_name}' is empty")
    samples = _first_items(data, N_SAMPLES)
    check_writers(spec, samples, data.info, config, workdir, report, "real items")


def check_dataset(spec: Any, registry: Registry, report: CaseReport) -> None:
    """Metadata, then the tiny variant loads twice to the same non-empty data."""
    import torch

    from cgan_core.specs import DataRequest

    what = f"dataset '{spec.modality}/{spec.name}'"
    _check_name(what, spec.name)
    if spec.modality not in registry.modalities:
        raise _fail(what, f"modality '{spec.modality}' is not registered")
    modality = registry.modalities[spec.modality]
    _check_callable(what, spec.load, "load")
    _check_description(what, spec.description)
    _check_keys(what, spec.data_defaults, modality.data_config, "data_defaults")
    _check_conformance_mapping(what, spec.conformance, ())
    report.checks.append("metadata complete")
    config = tiny_data_config(modality, spec)
    loads = [spec.load(DataRequest(source=spec.name, config=config)) for _ in range(2)]
    first = loads[0]
    if len(first) == 0:
        raise _fail(what, "the tiny variant has no items")
    _check_info_json(what, first.info)
    item = first.dataset[0]
    if not isinstance(item, (torch.Tensor, dict, tuple, list)):
        raise _fail(what, f"items are {type(item).__name__}; expected tensors in the modality's format")
    if first.labels is not None and len(first.labels) != len(first):
        raise _fail(what, f"{len(first.labels)} labels for {len(first)} items")
    if len(loads[1]) != len(first) or not _same(loads[1].dataset[0], item) or loads[1].info != first.info:
        raise _fail(what, "loading the tiny variant twice gave different data; seed generated datasets")
    report.facts.update(items=len(first), fingerprint=first.fingerprint)
    report.checks.append(f"tiny variant loads ({len(first)} items) reproducibly")


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@dataclass
class TinyRun:
    """A tiny training run the model checks look at."""

    resolved: Any
    data: Any
    trainer: Any
    run: Any
    steps_per_phase: int
    before: dict[str, dict[str, Any]]


def _state_of(module: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _phases_capped(trainer: Any, steps: int) -> None:
    from cgan_core.model import Phase

    trainer.phases = [Phase(p.name, min(int(p.steps), steps), p.step, p.unit) for p in trainer.phases]


def _new_trainer(resolved: Any, data: Any, run: Any, registry: Registry, steps: int) -> Any:
    import torch

    from cgan_core.session import build_model
    from cgan_core.trainer import Trainer, seed_everything

    seed_everything(resolved.config.train.seed)
    model = build_model(resolved, data.info)
    loss = registry.loss(resolved.config.train.loss)
    trainer = Trainer(model, data, resolved.config, loss, run=run, modality=resolved.modality,
                      device=torch.device("cpu"))
    if len(trainer.phases) > 1:
        _phases_capped(trainer, steps)
    return trainer


def train_tiny(spec: Any, registry: Registry, workdir: Path) -> TinyRun:
    """Resolve, load, build and train the model's tiny variant into ``workdir/run``.

    Raises:
        ConformanceError: when a stage fails, naming the stage.
    """
    from cgan_core.checkpoint import atomic_write_text
    from cgan_core.errors import CganError
    from cgan_core.model import GANModel
    from cgan_core.runs import RunDir
    from cgan_core.session import load_data, resolve_run

    what = f"model '{spec.name}'"
    modality = registry.modalities[spec.modality]
    dataset_name = _tiny_dataset_name(modality, registry, spec)
    if dataset_name is None:
        raise _fail(what, f"modality '{spec.modality}' has no dataset to train on; "
                          "set ModelSpec.conformance['dataset'] to a dataset name or path")
    steps = int((spec.conformance or {}).get("steps", 2))
    dataset = registry.datasets(spec.modality).get(dataset_name)
    settings = tiny_settings(spec, modality, dataset)
    settings["train.max_steps"] = steps
    try:
        resolved = resolve_run(spec.modality, spec.name, dataset_name, overrides=settings, registry=registry)
        data = load_data(resolved, cache_dir=workdir / "cache")
    except CganError as exc:
        raise _fail(what, f"the tiny config or data failed: {exc}") from None
    _check_info_json(what, data.info)
    run = RunDir(workdir / "run")
    run.prepare(resume=False, overwrite=False)
    trainer = _new_trainer(resolved, data, run, registry, steps)
    if len(trainer.phases) > 1:  # multi-phase: the max_steps cap must let every phase run
        settings["train.max_steps"] = steps * len(trainer.phases)
        resolved = resolve_run(spec.modality, spec.name, dataset_name, overrides=settings, registry=registry)
        trainer = _new_trainer(resolved, data, run, registry, steps)
    if not isinstance(trainer.model, GANModel):
        raise _fail(what, f"build returned {type(trainer.model).__name__}, expected a cgan_core.GANModel")
    atomic_write_text(run.config_path, resolved.config.to_yaml())
    run.write_data_info(data.info)
    before = {name: _state_of(getattr(trainer.model, name)) for name in ("generator", "discriminator")}
    return TinyRun(resolved, data, trainer, run, steps, before)


def _check_training(spec: Any, tiny: TinyRun, report: CaseReport) -> None:
    import torch

    from cgan_core.errors import CganRuntimeError

    what = f"model '{spec.name}'"
    try:
        logs = tiny.trainer.fit()
    except CganRuntimeError as exc:
        raise _fail(what, f"tiny training failed: {exc}") from None
    except Exception as exc:  # a crash in the plugin's code: keep its traceback as the cause
        raise _fail(what, f"tiny training raised {type(exc).__name__}: {exc}") from exc
    if not logs:
        raise _fail(what, "a training step returned no logs; return at least the losses, e.g. {'loss_d': ..., 'loss_g': ...}")
    bad = {k: v for k, v in logs.items() if not math.isfinite(float(v))}
    if bad:
        raise _fail(what, f"non-finite training logs {bad}")
    phases = [(p.name, p.steps) for p in tiny.trainer.phases]
    report.facts.update(logs={k: float(v) for k, v in logs.items()}, phases=phases, steps=tiny.trainer.step)
    report.checks.append(f"trains {tiny.trainer.step} CPU steps over phases {[n for n, _ in phases]} with finite losses")
    for name, state in tiny.before.items():
        after = getattr(tiny.trainer.model, name).state_dict()
        if all(torch.equal(state[k], after[k]) for k in state):
            raise _fail(what, f"training did not change any {name} weight; are its parameters in optimizer_groups()?")
    report.checks.append("weights of generator and discriminator move")


def _sample(model: Any, module: Any, seed: int) -> Any:
    import torch

    return model.sample(N_SAMPLES, generator=torch.Generator().manual_seed(seed), generator_module=module)


def _check_samples(spec: Any, tiny: TinyRun, registry: Registry, report: CaseReport) -> Any:
    import torch

    what = f"model '{spec.name}'"
    trainer = tiny.trainer
    samples = _sample(trainer.model, trainer.sample_generator, SAMPLE_SEED)
    again = _sample(trainer.model, trainer.sample_generator, SAMPLE_SEED)
    other = _sample(trainer.model, trainer.sample_generator, SAMPLE_SEED + 1)
    if not isinstance(samples, torch.Tensor):
        raise _fail(what, f"sample() returned {type(samples).__name__}, expected a tensor")
    if samples.device.type != "cpu":
        raise _fail(what, f"sample() returned a tensor on {samples.device}; it must return CPU tensors")
    if not _same(samples, again):
        raise _fail(what, "sample() with the same torch.Generator seed gave different samples; draw all noise "
                          "from the generator argument (self.randn(..., generator=generator))")
    if _same(samples, other):
        raise _fail(what, "sample() gave identical samples for different seeds; the latent must come from the generator")
    if samples.shape[0] != N_SAMPLES:
        raise _fail(what, f"sample({N_SAMPLES}) returned {samples.shape[0]} samples")
    item = tiny.data.dataset[0]
    if isinstance(item, torch.Tensor):
        if tuple(samples.shape[1:]) != tuple(item.shape):
            raise _fail(what, f"samples are shaped {tuple(samples.shape[1:])} but data items {tuple(item.shape)}; "
                              "sample() must return the modality's tensor format")
        if samples.dtype != item.dtype:
            raise _fail(what, f"samples are {samples.dtype} but data items {item.dtype}")
    _check_range(spec, samples, tiny, registry)
    report.facts.update(sample_shape=list(samples.shape), sample_dtype=str(samples.dtype))
    report.checks.append(f"samples {tuple(samples.shape)} {samples.dtype} in range, reproducible per seed")
    return samples


def _check_range(spec: Any, samples: Any, tiny: TinyRun, registry: Registry) -> None:
    import torch

    what = f"model '{spec.name}'"
    modality = registry.modalities[spec.modality]
    declared = (modality.conformance or {}).get("sample_range")
    if samples.is_floating_point():
        if not bool(torch.isfinite(samples).all()):
            raise _fail(what, "samples contain NaN or infinite values")
        low = high = None
        if declared is not None:
            low, high = float(declared[0]), float(declared[1])
        else:
            real = _first_items(tiny.data, TINY_ITEMS)
            if isinstance(real, torch.Tensor) and real.is_floating_point() and real.numel():
                if float(real.min()) >= -1.0 and float(real.max()) <= 1.0:
                    low, high = -1.0, 1.0  # data scaled to [-1, 1]: samples must be too (tanh output)
        if low is not None and (float(samples.min()) < low - 1e-6 or float(samples.max()) > high + 1e-6):
            raise _fail(what, f"samples span [{float(samples.min()):.3g}, {float(samples.max()):.3g}] outside "
                              f"[{low}, {high}], the range of the modality's data")
    else:
        vocab = tiny.data.info.get("vocab_size")
        low, high = (0, int(vocab) - 1) if vocab else (0, None)
        if declared is not None:
            low, high = int(declared[0]), int(declared[1])
        if int(samples.min()) < low or (high is not None and int(samples.max()) > high):
            raise _fail(what, f"sample values span [{int(samples.min())}, {int(samples.max())}] outside [{low}, {high}]")


def _check_checkpoint(spec: Any, tiny: TinyRun, samples: Any, registry: Registry, workdir: Path,
                      report: CaseReport) -> None:
    import torch

    from cgan_core import checkpoint as ckpt
    from cgan_core.runs import RunDir
    from cgan_core.session import load_run

    what = f"model '{spec.name}'"
    loaded = load_run(tiny.run.path, device="cpu", registry=registry)
    live = tiny.trainer.model.state_dict()
    restored = loaded.model.state_dict()
    if live.keys() != restored.keys():
        raise _fail(what, f"the reloaded model has different state keys: {sorted(set(live) ^ set(restored))[:5]}")
    differing = [k for k in live if not torch.equal(live[k].cpu(), restored[k].cpu())]
    if differing:
        raise _fail(what, f"reloaded weights differ from the trained ones: {differing[:3]}")
    reloaded = _sample(loaded.model, loaded.sample_generator, SAMPLE_SEED)
    if not _same(samples, reloaded):
        raise _fail(what, "samples after reloading the checkpoint differ from before (same seed); keep every tensor "
                          "sampling depends on in the state dict or in extra_state_tensors()")
    report.checks.append(f"checkpoint {loaded.checkpoint} reloads to bit-identical samples")

    steps = ckpt.list_step_checkpoints(tiny.run.checkpoints)
    if len(steps) < 2:
        report.notes.append("fewer than two checkpoints: resume not checked")
        return
    copy = RunDir(workdir / "resumed")
    shutil.copytree(tiny.run.path, copy.path)
    for later in ckpt.list_step_checkpoints(copy.checkpoints)[1:]:
        shutil.rmtree(later)
    first = ckpt.list_step_checkpoints(copy.checkpoints)[0].name
    ckpt.set_latest(copy.checkpoints, first)
    resumed = _new_trainer(tiny.resolved, tiny.data, copy, registry, tiny.steps_per_phase)
    resumed.fit(resume=True)
    finished = resumed.model.state_dict()
    differing = [k for k in live if not torch.equal(live[k].cpu(), finished[k].cpu())]
    if differing or resumed.step != tiny.trainer.step:
        raise _fail(what, f"resuming from {first} did not reproduce the uninterrupted run (step {resumed.step} vs "
                          f"{tiny.trainer.step}; differing: {differing[:3]}); keep step-function state in ctx.state")
    report.checks.append(f"resuming from {first} reproduces the run bit for bit")


def check_model(spec: Any, registry: Registry, workdir: Path, report: CaseReport) -> None:
    """Metadata, tiny training, samples, checkpoint and resume, writers on generated samples."""
    _metadata_model(spec, registry)
    report.checks.append("metadata complete")
    tiny = train_tiny(spec, registry, workdir)
    _check_training(spec, tiny, report)
    samples = _check_samples(spec, tiny, registry, report)
    _check_checkpoint(spec, tiny, samples, registry, workdir, report)
    modality = registry.modalities[spec.modality]
    check_writers(modality, samples, tiny.data.info, tiny.resolved.config.data, workdir, report, "samples")


def check_loss(spec: Any, report: CaseReport) -> None:
    """Metadata, then the pair on fixed logits: finite scalars with gradients, lower when right."""
    import torch

    what = f"loss '{spec.name}'"
    _check_name(what, spec.name)
    _check_callable(what, spec.discriminator_loss, "discriminator_loss")
    _check_callable(what, spec.generator_loss, "generator_loss")
    _check_callable(what, spec.penalty, "penalty", optional=True)
    _check_description(what, spec.description)
    report.checks.append("metadata complete")
    needs_real = bool(getattr(spec, "generator_needs_real", False))

    def losses(real_value: float, fake_value: float) -> tuple[Any, Any, Any]:
        real = torch.full((8,), real_value, requires_grad=True)
        fake = torch.full((8,), fake_value, requires_grad=True)
        fake = fake + torch.linspace(-0.1, 0.1, 8)  # not constant, so batch statistics are defined
        loss_d = spec.discriminator_loss(real, fake)
        loss_g = spec.generator_loss(fake, real.detach()) if needs_real else spec.generator_loss(fake)
        return loss_d, loss_g, (real, fake)

    def number(loss: Any) -> float:
        return float(loss.detach())

    loss_d, loss_g, (real, fake) = losses(0.5, -0.5)
    for label, loss in (("discriminator_loss", loss_d), ("generator_loss", loss_g)):
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise _fail(what, f"{label} returned {getattr(loss, 'shape', type(loss).__name__)}; expected a scalar tensor")
        if not bool(torch.isfinite(loss)):
            raise _fail(what, f"{label} is not finite on moderate logits")
    (grad_real,) = torch.autograd.grad(loss_d, real, retain_graph=True)
    (grad_fake,) = torch.autograd.grad(loss_g, fake)
    if not bool(torch.isfinite(grad_real).all()) or float(grad_real.abs().sum()) == 0.0:
        raise _fail(what, "discriminator_loss has no finite, non-zero gradient with respect to the real logits")
    if not bool(torch.isfinite(grad_fake).all()) or float(grad_fake.abs().sum()) == 0.0:
        raise _fail(what, "generator_loss has no finite, non-zero gradient with respect to the fake logits")
    report.checks.append("finite scalar losses with gradients")
    right_d, right_g, _ = losses(3.0, -3.0)  # the critic is right: real high, fake low
    wrong_d, wrong_g, _ = losses(-3.0, 3.0)
    if not number(right_d) < number(wrong_d):
        raise _fail(what, f"discriminator_loss is not lower when the critic is right ({number(right_d):.3g} >= "
                          f"{number(wrong_d):.3g}); logits are 'higher = more real'")
    if not number(wrong_g) < number(right_g):
        raise _fail(what, f"generator_loss is not lower when the fakes fool the critic ({number(wrong_g):.3g} >= "
                          f"{number(right_g):.3g})")
    report.checks.append("lower when the critic (discriminator loss) or the generator (generator loss) wins")
    if spec.penalty is not None:
        critic = torch.nn.Linear(3, 1)
        penalty = spec.penalty(lambda x: critic(x).squeeze(1), torch.randn(4, 3), torch.randn(4, 3))
        if not isinstance(penalty, torch.Tensor) or penalty.dim() != 0 or not bool(torch.isfinite(penalty)):
            raise _fail(what, f"penalty returned {penalty!r}; expected a finite scalar tensor")
        report.checks.append("penalty is a finite scalar")


def check_metric(spec: Any, registry: Registry, workdir: Path, report: CaseReport, compute: bool) -> None:
    """Metadata; with ``compute``, finite values on the tiny dataset compared with itself."""
    what = f"metric '{spec.modality}/{spec.name}'"
    _check_name(what, spec.name)
    if spec.modality not in registry.modalities:
        raise _fail(what, f"modality '{spec.modality}' is not registered")
    _check_callable(what, spec.compute, "compute")
    _check_description(what, spec.description)
    if not isinstance(spec.higher_is_better, bool):
        raise _fail(what, f"higher_is_better is {spec.higher_is_better!r}, expected True or False")
    report.checks.append("metadata complete")
    if not compute:
        report.notes.append("values not computed (compute_metrics=False)")
        return
    from cgan_core.metrics import EvalContext
    from cgan_core.specs import DataRequest

    modality = registry.modalities[spec.modality]
    dataset_name = _tiny_dataset_name(modality, registry)
    if dataset_name is None:
        raise _fail(what, f"modality '{spec.modality}' has no dataset to compute the metric on")
    dataset = registry.datasets(spec.modality).get(dataset_name)
    config = tiny_data_config(modality, dataset)
    loader = dataset.load if dataset is not None else modality.open_source
    data = loader(DataRequest(source=dataset_name, config=config, cache_dir=workdir / "cache"))
    real = _first_items(data, len(data))
    ctx = EvalContext(modality=spec.modality, real=real, fake=real, real_labels=data.labels, data_info=data.info,
                      cache_dir=workdir / "cache", dataset_key=f"{dataset_name}:{data.fingerprint}")
    values = spec.compute(ctx)
    if not isinstance(values, Mapping) or not values:
        raise _fail(what, f"compute returned {values!r}; expected a non-empty mapping of reported names to floats")
    bad = {k: v for k, v in values.items() if not isinstance(v, (int, float)) or not math.isfinite(float(v))}
    if bad:
        raise _fail(what, f"compute returned non-finite or non-numeric values {bad}")
    report.facts["values"] = {k: float(v) for k, v in values.items()}
    report.checks.append(f"computes finite values on real data ({', '.join(values)})")
