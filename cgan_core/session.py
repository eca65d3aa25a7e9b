"""Putting a run together: config resolution, data loading, model building, reloading a run.

The CLI, ``cgan generate``, ``cgan evaluate`` and the REST server all go through these
functions, so a model is always built the same way from the same frozen config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from cgan_core.config import (
    CORE_SECTIONS,
    RunConfig,
    load_yaml_file,
    merge_layers,
    nest,
    parse_set_option,
    read_run_config_dict,
)
from cgan_core.errors import CganRuntimeError, UsageError
from cgan_core.plugins import Registry, get_registry
from cgan_core.runs import RunDir
from cgan_core.specs import DataRequest, DatasetSpec, ModalitySpec, ModelSpec
from cgan_core.storage import open_local_or_url


@dataclass
class ResolvedRun:
    """The specs and config a run is made of."""

    config: RunConfig
    modality: ModalitySpec
    model: ModelSpec
    dataset: Optional[DatasetSpec]


def _section_types(modality: ModalitySpec, model: ModelSpec) -> dict[str, type]:
    sections: dict[str, type] = {"data": modality.data_config, "model": model.config}
    sections.update(CORE_SECTIONS)
    for name, cls in model.extra_sections.items():
        if name in sections:
            raise CganRuntimeError(f"model '{model.name}' declares config section '{name}', which the core owns")
        sections[name] = cls
    return sections


def looks_like_path(source: str) -> bool:
    """Whether a ``--dataset`` value is a path or URL rather than a dataset name."""
    return "://" in source or "/" in source or "\\" in source or Path(source).exists() or "." in Path(source).name


def resolve_run(
    modality: str,
    plugin: str,
    dataset: Optional[str] = None,
    config_file: Optional[Path] = None,
    set_options: Sequence[str] = (),
    overrides: Optional[Mapping[str, Any]] = None,
    registry: Optional[Registry] = None,
    base: Optional[Mapping[str, Any]] = None,
) -> ResolvedRun:
    """Resolve the config: defaults <- model/dataset defaults [<- base] <- YAML file <- ``--set`` <- flags.

    Args:
        modality: ``--modality``.
        plugin: ``--plugin`` (model name).
        dataset: ``--dataset`` (name or path); defaults to the file's or the modality's default.
        config_file: ``--config`` YAML file.
        set_options: ``--set key=value`` strings.
        overrides: Dotted keys set by dedicated flags (``--max-steps``, ``--seed``, ...).
        registry: Plugin registry (default: the process-wide one).
        base: A whole config (a resumed run's frozen ``config.yaml``) that the file, ``--set``
            and flags change, so that ``--resume --set KEY=VALUE`` changes that key alone.
    """
    registry = registry or get_registry()
    modality_spec = registry.modality(modality)
    model_spec = registry.model(plugin, modality=modality)
    file_values = load_yaml_file(config_file) if config_file else {}
    for key, value in {"modality": modality, "plugin": plugin}.items():
        if key in file_values and file_values[key] != value:
            raise UsageError(f"config file says {key}: {file_values[key]!r} but the command line says {value!r}")
    source = dataset or file_values.get("dataset") or modality_spec.default_dataset
    if not source:
        raise UsageError(f"modality '{modality}' has no default dataset; pass --dataset NAME_OR_PATH")
    dataset_spec = registry.datasets(modality).get(source)
    if dataset_spec is None and not looks_like_path(source):
        named = sorted(registry.datasets(modality))
        raise UsageError(
            f"unknown dataset '{source}' for modality '{modality}'; valid names: "
            f"{', '.join(named) or '(none)'}, or a path to your own data"
        )
    set_values = dict(parse_set_option(option) for option in set_options)
    layers = [
        {"train": dict(model_spec.train_defaults), "data": dict(model_spec.data_defaults)},
        {"data": dict(dataset_spec.data_defaults)} if dataset_spec else {},
        dict(base or {}),
        file_values,
        nest(set_values),
        nest(dict(overrides or {})),
    ]
    sections = merge_layers(_section_types(modality_spec, model_spec), layers)
    config = RunConfig(modality=modality, plugin=plugin, dataset=str(source), sections=sections)
    return ResolvedRun(config, modality_spec, model_spec, dataset_spec)


def load_data(resolved: ResolvedRun, strict: bool = False, split: str = "train", cache_dir: Optional[Path] = None) -> Any:
    """Load the run's dataset through its dataset spec or the modality's source opener.

    Raises:
        UsageError: when the source is empty (nothing usable) — the loaders raise it themselves
            for unreadable paths or wrong file types.
    """
    request = DataRequest(source=resolved.config.dataset, config=resolved.config.data, strict=strict,
                          split=split, cache_dir=cache_dir)
    if resolved.dataset:
        data = resolved.dataset.load(request)
    else:  # a path or an fsspec URL
        data = open_local_or_url(resolved.modality.open_source, request)
    if len(data) == 0:
        raise UsageError(f"dataset '{resolved.config.dataset}' has no usable items"
                         + (f" ({data.skipped.count} skipped)" if data.skipped.count else ""))
    if not data.source:
        data.source = resolved.config.dataset
    return data


def build_model(resolved: ResolvedRun, data_info: Mapping[str, Any]) -> Any:
    """Build the model from the resolved config and the dataset facts."""
    return resolved.model.build(resolved.config, dict(data_info))


def resolve_from_run(run: RunDir, registry: Optional[Registry] = None) -> ResolvedRun:
    """Rebuild the resolved config of an existing run from its frozen ``config.yaml``."""
    registry = registry or get_registry()
    values = read_run_config_dict(run.config_path)
    modality_spec = registry.modality(values["modality"])
    model_spec = registry.model(values["plugin"], modality=values["modality"])
    sections = merge_layers(_section_types(modality_spec, model_spec), [values])
    config = RunConfig(values["modality"], values["plugin"], str(values["dataset"]), sections)
    dataset_spec = registry.datasets(values["modality"]).get(str(values["dataset"]))
    return ResolvedRun(config, modality_spec, model_spec, dataset_spec)


@dataclass
class LoadedRun:
    """A trained model ready to sample from."""

    run: RunDir
    resolved: ResolvedRun
    model: Any
    sample_generator: Any
    data_info: dict[str, Any]
    checkpoint: str
    checkpoint_step: int


def load_run(run_path: Path, checkpoint: Optional[str] = None, device: str = "cpu",
             use_ema: bool = True, registry: Optional[Registry] = None) -> LoadedRun:
    """Rebuild a run's model and load a checkpoint's weights (EMA generator when present).

    Raises:
        UsageError: not a run directory. CganRuntimeError: no usable checkpoint.
    """
    import copy

    from cgan_core.checkpoint import resolve_checkpoint
    from cgan_core.trainer import resolve_device

    run = RunDir.open(Path(run_path))
    resolved = resolve_from_run(run, registry)
    data_info = run.read_data_info()
    model = build_model(resolved, data_info)
    loaded = resolve_checkpoint(run.checkpoints, checkpoint)
    payload = loaded.restore()
    model.load_state_dict(payload["model"])
    if payload.get("extra"):
        model.load_extra_state_tensors(payload["extra"])
    sample_generator = model.generator
    if use_ema and payload.get("ema") is not None:
        sample_generator = copy.deepcopy(model.generator)
        sample_generator.load_state_dict(payload["ema"])
    target = resolve_device(device)
    model.to(target).eval()
    sample_generator.to(target).eval()
    return LoadedRun(run, resolved, model, sample_generator, data_info, loaded.name, loaded.step)
