"""Plugin manager: loads ``cgan.plugins`` entry points in isolation and builds the name tables.

Each entry point is imported and its hooks are called on their own. A plugin that fails to
import, whose hook raises, that registers a name another plugin already owns, or that requires
another ``cgan`` version is reported (plugin, version, error) and skipped as a whole; everything
else keeps working. ``CGAN_STRICT_PLUGINS=1`` turns such a report into a fatal error.

Environment:
    CGAN_LOAD_PLUGINS: comma list of third-party plugin names to load (empty = built-ins only).
    CGAN_DISABLE_PLUGINS: comma list of plugin names (built-in or not) to skip.
    CGAN_STRICT_PLUGINS: ``1`` makes any plugin failure fatal.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterable, Optional

import pluggy

from cgan_core import hookspecs
from cgan_core.errors import CganRuntimeError, UsageError, unknown_name
from cgan_core.specs import DatasetSpec, LossSpec, MetricSpec, ModalitySpec, ModelSpec
from cgan_core.version import __version__

ENTRY_POINT_GROUP = "cgan.plugins"
CORE_PLUGIN_NAME = "core"
BUILTIN_DISTRIBUTION = "cgan"

# hook name -> (table name, spec type)
REGISTRATION_HOOKS: dict[str, tuple[str, type]] = {
    "register_modalities": ("modalities", ModalitySpec),
    "register_models": ("models", ModelSpec),
    "register_datasets": ("datasets", DatasetSpec),
    "register_losses": ("losses", LossSpec),
    "register_metrics": ("metrics", MetricSpec),
}


@dataclass
class PluginRecord:
    """What ``cgan plugins`` reports about one plugin.

    Attributes:
        name: Entry-point name (``image``, ``text``, ...), or ``core``.
        package: Distribution that provides it.
        version: That distribution's version.
        module: Imported module path.
        status: ``ok``, ``failed``, ``incompatible`` or ``disabled``.
        error: One-line reason when the status is not ``ok``.
        registered: Table name -> names registered by this plugin.
        builtin: Whether it ships with the ``cgan`` distribution.
    """

    name: str
    package: str
    version: str
    module: str
    status: str = "ok"
    error: Optional[str] = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    builtin: bool = False

    def report_line(self) -> str:
        """``plugin NAME (PACKAGE VERSION) STATUS: ERROR`` in one line."""
        return f"plugin '{self.name}' ({self.package} {self.version}) {self.status}: {self.error}"


def _key(table: str, spec: Any) -> str:
    """Name under which a spec is stored; datasets and metrics are scoped by modality."""
    if table in ("datasets", "metrics"):
        return f"{spec.modality}/{spec.name}"
    return spec.name


def _env_list(name: str) -> Optional[list[str]]:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


class Registry:
    """The name tables built from every loaded plugin, with their provenance."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self.tables: dict[str, dict[str, Any]] = {table: {} for table, _ in REGISTRATION_HOOKS.values()}
        self.owners: dict[tuple[str, str], str] = {}
        self.plugins: list[PluginRecord] = []
        self.strict = os.environ.get("CGAN_STRICT_PLUGINS", "") not in ("", "0", "false")

    # --- loading -----------------------------------------------------------------------------
    def add_plugin(self, module: ModuleType, record: PluginRecord) -> PluginRecord:
        """Register one plugin module and commit its registrations if all of them succeed."""
        self.plugins.append(record)
        try:
            self.plugin_manager.register(module, name=record.name)
        except Exception as exc:  # pluggy validation: unknown hook, bad signature, duplicate
            return self._fail(record, f"invalid hooks: {exc}", "incompatible")
        unknown = sorted(
            caller.name for caller in (self.plugin_manager.get_hookcallers(module) or [])
            if caller.spec is None
        )
        if unknown:
            self.plugin_manager.unregister(module)
            return self._fail(record, f"implements unknown hooks {unknown}", "incompatible")
        staged: dict[str, dict[str, Any]] = {table: {} for table in self.tables}
        for hook_name, (table, spec_type) in REGISTRATION_HOOKS.items():
            caller = getattr(self.plugin_manager.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name != record.name:
                    continue
                error = self._call_register_hook(impl.function, hook_name, table, spec_type, staged, record)
                if error:
                    self.plugin_manager.unregister(module)
                    return self._fail(record, error, "failed")
        for table, specs in staged.items():
            for key, spec in specs.items():
                self.tables[table][key] = spec
                self.owners[(table, key)] = record.name
                record.registered.setdefault(table, []).append(key)
        return record

    def _call_register_hook(
        self,
        function: Callable[..., Any],
        hook_name: str,
        table: str,
        spec_type: type,
        staged: dict[str, dict[str, Any]],
        record: PluginRecord,
    ) -> Optional[str]:
        problems: list[str] = []

        def register(spec: Any, **_future_options: Any) -> None:
            if not isinstance(spec, spec_type):
                problems.append(f"{hook_name} registered {type(spec).__name__}, expected {spec_type.__name__}")
                return
            key = _key(table, spec)
            owner = self.owners.get((table, key))
            if owner is not None:
                owner_pkg = self.record(owner).package if self.record(owner) else owner
                problems.append(
                    f"{table[:-1]} '{key}' is registered twice: by {owner_pkg} (plugin '{owner}') "
                    f"and by {record.package} (plugin '{record.name}')"
                )
                return
            if key in staged[table]:
                problems.append(f"{table[:-1]} '{key}' is registered twice by {record.package}")
                return
            staged[table][key] = spec

        try:
            function(register=register)
        except Exception as exc:
            return f"{hook_name} raised {type(exc).__name__}: {exc}"
        return problems[0] if problems else None

    def _fail(self, record: PluginRecord, error: str, status: str) -> PluginRecord:
        record.status = status
        record.error = error.splitlines()[0] if error else status
        if self.strict:
            raise CganRuntimeError(record.report_line() + " (CGAN_STRICT_PLUGINS is set)")
        print(f"warning: {record.report_line()}; skipped", file=sys.stderr)
        return record

    def load_entry_points(self, entry_points: Optional[Iterable[metadata.EntryPoint]] = None) -> None:
        """Load every ``cgan.plugins`` entry point, honouring the selection variables."""
        if entry_points is None:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        wanted = _env_list("CGAN_LOAD_PLUGINS")
        disabled = set(_env_list("CGAN_DISABLE_PLUGINS") or [])
        seen: set[str] = set()
        for entry_point in sorted(entry_points, key=lambda ep: (not _is_builtin(ep), ep.name)):
            if entry_point.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(entry_point.name)
            package, version = _distribution_of(entry_point)
            builtin = package == BUILTIN_DISTRIBUTION
            record = PluginRecord(entry_point.name, package, version, entry_point.value, builtin=builtin)
            if entry_point.name in disabled or (wanted is not None and not builtin and entry_point.name not in wanted):
                record.status = "disabled"
                record.error = "disabled by CGAN_DISABLE_PLUGINS" if entry_point.name in disabled else "not in CGAN_LOAD_PLUGINS"
                self.plugins.append(record)
                continue
            incompatible = _version_conflict(entry_point)
            if incompatible:
                self.plugins.append(record)
                self._fail(record, incompatible, "incompatible")
                continue
            try:
                module = entry_point.load()
            except Exception as exc:
                self.plugins.append(record)
                self._fail(record, f"import failed: {type(exc).__name__}: {exc}", "failed")
                continue
            self.add_plugin(module, record)

    # --- commands ----------------------------------------------------------------------------
    def add_commands(self, app: Any) -> None:
        """Let each loaded plugin add its CLI commands; a failing plugin is reported and skipped."""
        caller = self.plugin_manager.hook.register_commands
        for impl in caller.get_hookimpls():
            record = self.record(impl.plugin_name)
            try:
                impl.function(app=app)
            except Exception as exc:
                if record is not None:
                    self._fail(record, f"register_commands raised {type(exc).__name__}: {exc}", "failed")

    # --- lookups -----------------------------------------------------------------------------
    def record(self, plugin_name: str) -> Optional[PluginRecord]:
        """The record of a plugin by name."""
        for record in self.plugins:
            if record.name == plugin_name:
                return record
        return None

    def owner(self, table: str, key: str) -> str:
        """Name of the plugin that registered ``key`` in ``table``."""
        return self.owners.get((table, key), "?")

    @property
    def modalities(self) -> dict[str, ModalitySpec]:
        """Modality name -> spec."""
        return self.tables["modalities"]

    @property
    def models(self) -> dict[str, ModelSpec]:
        """Model name -> spec."""
        return self.tables["models"]

    @property
    def losses(self) -> dict[str, LossSpec]:
        """Loss name -> spec."""
        return self.tables["losses"]

    def modality(self, name: str) -> ModalitySpec:
        """Look a modality up, or raise a usage error listing the valid ones."""
        if name not in self.modalities:
            raise unknown_name("modality", name, self.modalities)
        return self.modalities[name]

    def model(self, name: str, modality: Optional[str] = None) -> ModelSpec:
        """Look a model up (optionally checking its modality)."""
        candidates = {n: s for n, s in self.models.items() if modality is None or s.modality == modality}
        if name not in candidates:
            context = f"for modality '{modality}'" if modality else ""
            raise unknown_name("plugin (model)", name, candidates, context)
        return candidates[name]

    def datasets(self, modality: Optional[str] = None) -> dict[str, DatasetSpec]:
        """Dataset name -> spec, for one modality or all (then keyed ``modality/name``)."""
        table = self.tables["datasets"]
        if modality is None:
            return dict(table)
        return {spec.name: spec for spec in table.values() if spec.modality == modality}

    def dataset(self, modality: str, name: str) -> DatasetSpec:
        """Look a named dataset of a modality up."""
        table = self.datasets(modality)
        if name not in table:
            raise unknown_name("dataset", name, table, f"for modality '{modality}'")
        return table[name]

    def loss(self, name: str) -> LossSpec:
        """Look a loss up."""
        if name not in self.losses:
            raise unknown_name("loss", name, self.losses)
        return self.losses[name]

    def metrics(self, modality: Optional[str] = None) -> dict[str, MetricSpec]:
        """Metric name -> spec, for one modality or all (then keyed ``modality/name``)."""
        table = self.tables["metrics"]
        if modality is None:
            return dict(table)
        return {spec.name: spec for spec in table.values() if spec.modality == modality}

    def metric(self, modality: str, name: str) -> MetricSpec:
        """Look a metric of a modality up."""
        table = self.metrics(modality)
        if name not in table:
            others = [s.modality for s in self.tables["metrics"].values() if s.name == name]
            context = f"for modality '{modality}'" + (f" (it exists for: {', '.join(others)})" if others else "")
            raise unknown_name("metric", name, table, context)
        return table[name]


def _is_builtin(entry_point: metadata.EntryPoint) -> bool:
    return _distribution_of(entry_point)[0] == BUILTIN_DISTRIBUTION


def _distribution_of(entry_point: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return ("?", "?")
    return (dist.metadata["Name"] or "?", dist.version or "?")


def _version_conflict(entry_point: metadata.EntryPoint) -> Optional[str]:
    """Return a reason when the plugin's distribution requires a ``cgan`` this is not."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import Version

    dist = getattr(entry_point, "dist", None)
    if dist is None or (dist.metadata["Name"] or "") == BUILTIN_DISTRIBUTION:
        return None
    for text in dist.requires or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.name.lower() != "cgan" or requirement.marker is not None:
            continue
        if requirement.specifier and not requirement.specifier.contains(Version(__version__), prereleases=True):
            return f"requires cgan{requirement.specifier}, but cgan {__version__} is installed"
    return None


_REGISTRY: Optional[Registry] = None


def get_registry() -> Registry:
    """The process-wide registry (the one piece of global mutable state), loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        registry = Registry()
        core = importlib.import_module("cgan_core.core_plugin")
        registry.add_plugin(core, PluginRecord(CORE_PLUGIN_NAME, BUILTIN_DISTRIBUTION, __version__,
                                               "cgan_core.core_plugin", builtin=True))
        registry.load_entry_points()
        _REGISTRY = registry
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded registry (tests use this after changing plugins or environment)."""
    global _REGISTRY
    _REGISTRY = None


__all__ = ["Registry", "PluginRecord", "get_registry", "reset_registry", "UsageError"]
