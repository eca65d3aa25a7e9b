"""Run configuration: dataclass sections, resolved as defaults <- YAML file <- ``--set`` overrides.

A run's config has the core sections ``train`` and ``eval``, the modality's ``data`` section,
the model's ``model`` section and any extra sections the model declares (SeqGAN's ``phases``).
Values are parsed by the dataclass field types, unknown keys are errors that suggest the
nearest valid key, and the resolved config is frozen into the run directory as YAML.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional, Union

import yaml

from cgan_core.errors import UsageError


@dataclass
class TrainConfig:
    """Core training options shared by every model.

    Attributes:
        max_steps: Training steps (generator updates) of a single-phase model; for multi-phase
            models, a cap on the total steps over all phases (0 = no cap).
        batch_size: Samples per batch.
        loss: Registered loss name (``bce``, ``minimax``, ``hinge``, ``wasserstein``, ``lsgan``).
        penalty: Discriminator penalty: ``none``, ``gp`` (WGAN-GP) or ``r1``.
        penalty_weight: Weight of the penalty.
        n_critic: Discriminator updates per generator update.
        optimizer: ``adam``, ``adamw``, ``rmsprop`` or ``sgd``.
        lr_g: Generator learning rate.
        lr_d: Discriminator learning rate.
        betas: Adam betas.
        weight_decay: Optimiser weight decay.
        grad_clip: Clip gradient norm to this value (0 = off).
        ema_decay: Exponential moving average of generator weights (0 = off).
        ema_start: Step from which the EMA starts averaging (before it copies the weights).
        amp: Mixed precision (bfloat16 autocast) when training on CUDA.
        checkpoint_every: Steps between checkpoints (0 = only at the end).
        keep_last: Checkpoints kept (older ones are deleted; ``best`` is kept apart).
        sample_every: Steps between preview samples (0 = only at the end).
        n_preview: Samples in each preview.
        log_every: Steps between metric log lines.
        seed: Seed of every random number generator.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        deterministic: Ask PyTorch for deterministic algorithms.
        tensorboard: Write TensorBoard event files.
    """

    max_steps: int = 1000
    batch_size: int = 64
    loss: str = "bce"
    penalty: str = "none"
    penalty_weight: float = 10.0
    n_critic: int = 1
    optimizer: str = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    ema_decay: float = 0.0
    ema_start: int = 0
    amp: bool = True
    checkpoint_every: int = 100
    keep_last: int = 3
    sample_every: int = 100
    n_preview: int = 64
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    tensorboard: bool = True


@dataclass
class EvalConfig:
    """Evaluation during training and defaults for ``cgan evaluate``.

    Attributes:
        every: Steps between evaluations during training (0 = off).
        metrics: Metric names (empty = the modality's defaults).
        n_samples: Generated samples per evaluation (0 = the modality's default).
        best_metric: Metric that selects the ``best`` checkpoint (empty = the first metric).
        options: Metric options as ``KEY=VALUE`` strings, as ``cgan evaluate --option`` takes them
            (``--set eval.options=effnet-lite0.image_size=128,classifier.max_steps=300``).
    """

    every: int = 0
    metrics: tuple[str, ...] = ()
    n_samples: int = 0
    best_metric: str = ""
    options: tuple[str, ...] = ()


CORE_SECTIONS: dict[str, type] = {"train": TrainConfig, "eval": EvalConfig}
IDENTITY_KEYS = ("modality", "plugin", "dataset")


@dataclass
class RunConfig:
    """The whole resolved configuration of a run.

    Attributes:
        modality: Modality name.
        plugin: Model name (``--plugin``).
        dataset: Dataset name or path.
        sections: Section name -> dataclass instance (``data``, ``model``, ``train``, ``eval``,
            plus model-specific sections).
    """

    modality: str
    plugin: str
    dataset: str
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def train(self) -> TrainConfig:
        """The ``train`` section."""
        return self.sections["train"]

    @property
    def eval(self) -> EvalConfig:
        """The ``eval`` section."""
        return self.sections["eval"]

    @property
    def data(self) -> Any:
        """The modality's ``data`` section."""
        return self.sections["data"]

    @property
    def model(self) -> Any:
        """The model's ``model`` section."""
        return self.sections["model"]

    def section(self, name: str) -> Any:
        """Return a model-specific section such as ``phases``."""
        return self.sections[name]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists instead of tuples) for YAML/JSON."""
        out: dict[str, Any] = {"modality": self.modality, "plugin": self.plugin, "dataset": self.dataset}
        for name, value in self.sections.items():
            out[name] = to_plain(value)
        return out

    def to_yaml(self) -> str:
        """The config as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def get(self, dotted_key: str) -> Any:
        """Look a value up by ``section.key`` path."""
        head, _, rest = dotted_key.partition(".")
        if not rest:
            return getattr(self, head)
        obj = self.sections[head]
        for part in rest.split("."):
            obj = getattr(obj, part)
        return obj


def to_plain(value: Any) -> Any:
    """Convert dataclasses/tuples/paths recursively into YAML-safe plain values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_value(tp: Any, raw: Any, key: str) -> Any:
    """Convert ``raw`` (a string from ``--set`` or a YAML value) into type ``tp``.

    Raises:
        UsageError: if the value does not fit the type, naming the key and the expected type.
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return yaml.safe_load(raw) if isinstance(raw, str) else raw
    if origin in (Union, types.UnionType):
        if isinstance(raw, str) and raw.strip().lower() in ("none", "null", "~", "") and type(None) in args:
            return None
        if raw is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return parse_value(option, raw, key)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(errors[0] if errors else f"invalid value {raw!r} for '{key}'")
    if origin is Literal:
        value = raw if not isinstance(raw, str) else raw.strip()
        for option in args:
            if str(option) == str(value):
                return option
        raise UsageError(f"invalid value {raw!r} for '{key}'; valid: {', '.join(map(str, args))}")
    if origin in (tuple, list) or tp in (tuple, list):
        items = raw
        if isinstance(raw, str):
            text = raw.strip()
            items = yaml.safe_load(text) if text.startswith("[") else [p for p in text.split(",") if p.strip()]
        if not isinstance(items, (list, tuple)):
            items = [items]
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise UsageError(f"'{key}' takes {len(args)} values, got {len(items)} ({raw!r})")
            return tuple(parse_value(a, v, key) for a, v in zip(args, items))
        item_type = args[0] if args else Any
        parsed = [parse_value(item_type, v, key) for v in items]
        return tuple(parsed) if (origin is tuple or tp is tuple) else parsed
    if dataclasses.is_dataclass(tp):
        if isinstance(raw, Mapping):
            return section_from_dict(tp, raw, key)
        raise UsageError(f"'{key}' is a section; set its keys as {key}.NAME=VALUE")
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"invalid value {raw!r} for '{key}'; expected true or false")
    if tp in (int, float):
        if isinstance(raw, bool):
            raise UsageError(f"invalid value {raw!r} for '{key}'; expected {tp.__name__}")
        try:
            if tp is int:
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                if isinstance(raw, str):
                    number = float(raw.strip().replace("_", ""))  # accepts 1e4 and 10_000
                    if not number.is_integer():
                        raise ValueError
                    return int(number)
                return int(raw)
            return float(raw)
        except (TypeError, ValueError):
            raise UsageError(f"invalid value {raw!r} for '{key}'; expected {tp.__name__}") from None
    if tp is str:
        return str(raw)
    if tp is Path:
        return Path(str(raw))
    return raw


def _unknown_key(key: str, valid: Iterable[str]) -> UsageError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(valid)}"
    return UsageError(f"unknown config key '{key}'{hint}")


def section_from_dict(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    """Build a dataclass section from a mapping, parsing each value by its field type."""
    instance = cls()
    return update_section(instance, values, prefix)


def update_section(instance: Any, values: Mapping[str, Any], prefix: str) -> Any:
    """Return a copy of a dataclass section with ``values`` applied (nested mappings recurse)."""
    types_ = _field_types(type(instance))
    changes: dict[str, Any] = {}
    for name, raw in values.items():
        full = f"{prefix}.{name}" if prefix else str(name)
        if name not in types_:
            raise _unknown_key(full, [f"{prefix}.{n}" if prefix else n for n in types_])
        tp = types_[name]
        current = getattr(instance, name)
        if dataclasses.is_dataclass(current) and isinstance(raw, Mapping):
            changes[name] = update_section(current, raw, full)
        else:
            changes[name] = parse_value(tp, raw, full)
    return dataclasses.replace(instance, **changes)


def parse_set_option(text: str) -> tuple[str, str]:
    """Split one ``--set key.sub=value`` argument."""
    if "=" not in text:
        raise UsageError(f"--set expects KEY=VALUE (e.g. train.lr_g=1e-4), got '{text}'")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise UsageError(f"--set expects KEY=VALUE (e.g. train.lr_g=1e-4), got '{text}'")
    return key, value


def nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``{"a.b.c": v}`` into ``{"a": {"b": {"c": v}}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"config key '{key}' conflicts with a value set for '{part}'")
        node[parts[-1]] = value
    return out


def load_yaml_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file, with clear errors for missing or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config file '{path}' does not exist; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"config file '{path}' is not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file '{path}' must hold a mapping of sections (train:, model:, ...)")
    return data


def merge_layers(section_types: Mapping[str, type], layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Apply layers of nested values onto fresh default sections, in order.

    Args:
        section_types: Section name -> dataclass type.
        layers: Nested mappings; later layers win.

    Returns:
        Section name -> dataclass instance.
    """
    sections = {name: cls() for name, cls in section_types.items()}
    for layer in layers:
        for name, values in layer.items():
            if name in IDENTITY_KEYS:
                continue
            if name not in sections:
                raise _unknown_key(name, list(sections) + list(IDENTITY_KEYS))
            if not isinstance(values, Mapping):
                raise UsageError(f"config section '{name}' must be a mapping of keys, got {values!r}")
            sections[name] = update_section(sections[name], values, name)
    return sections


def diff_configs(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """List dotted keys whose values differ between two plain config dicts."""
    keys = sorted(set(old) | set(new))
    out: list[str] = []
    for key in keys:
        full = f"{prefix}.{key}" if prefix else str(key)
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(diff_configs(a, b, full))
        elif a != b:
            out.append(f"{full}: {a!r} -> {b!r}")
    return out


def read_run_config_dict(path: Path) -> dict[str, Any]:
    """Read a frozen ``config.yaml`` of a run as a plain dict."""
    data = load_yaml_file(path)
    for key in IDENTITY_KEYS:
        if key not in data:
            raise UsageError(f"'{path}' is not a cgan run config: it has no '{key}' key")
    return data

