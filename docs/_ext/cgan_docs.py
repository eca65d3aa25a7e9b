"""Sphinx extension for cgan's documentation: references generated from the code, so they cannot go stale.

Directives (usable from MyST as fenced ``{cgan-cli}`` blocks):

- ``cgan-cli``: every command of the ``cgan`` app as built by :func:`cgan_core.cli.build_app`,
  with usage, help text and options, read from the Click command tree Typer builds.
- ``cgan-config``: every key of every config section (core ``train``/``eval``, each modality's
  ``data``, each model's ``model`` and extra sections), from the config dataclasses.
- ``cgan-components MODALITY``: the models, datasets and metrics registered for a modality.

A consistency check fails the build (with ``-W``) when a hookspec of :mod:`cgan_core.hookspecs`
has no ``autofunction`` entry anywhere in the documentation.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator, Optional

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

_INLINE = re.compile(r"``(.+?)``|:[a-z:]+:`~?([^`]+)`|`([^`]+)`")


def inline(text: str) -> list[nodes.Node]:
    """Text with ``literal`` and role markup turned into literal nodes (no cross-references, so
    docstrings can never break a nitpicky build)."""
    out: list[nodes.Node] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            out.append(nodes.Text(text[position:match.start()]))
        literal = next(group for group in match.groups() if group is not None)
        out.append(nodes.literal(literal, literal))
        position = match.end()
    if position < len(text):
        out.append(nodes.Text(text[position:]))
    return out


def paragraph(text: str) -> nodes.paragraph:
    """A paragraph with :func:`inline` markup."""
    para = nodes.paragraph()
    para.extend(inline(text))
    return para


def section(title: str, key: str, literal_title: bool = False) -> nodes.section:
    """A section with a stable id made from ``key``."""
    node = nodes.section(ids=[nodes.make_id(key)], names=[nodes.fully_normalize_name(key)])
    heading = nodes.title()
    heading += nodes.literal(title, title) if literal_title else nodes.Text(title)
    node += heading
    return node


def table(header: list[str], rows: Iterable[list[Any]], widths: Optional[list[int]] = None) -> nodes.table:
    """A table; cells are strings (inline markup applied) or nodes."""
    widths = widths or [1] * len(header)
    tab = nodes.table(classes=["cgan-reference"])
    group = nodes.tgroup(cols=len(header))
    tab += group
    for width in widths:
        group += nodes.colspec(colwidth=width)

    def row_of(cells: list[Any]) -> nodes.row:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += cell if isinstance(cell, nodes.Node) else paragraph(str(cell))
            row += entry
        return row

    head = nodes.thead()
    head += row_of(header)
    group += head
    body = nodes.tbody()
    for cells in rows:
        body += row_of(cells)
    group += body
    return tab


def code(text: str) -> nodes.paragraph:
    """A paragraph holding one literal."""
    para = nodes.paragraph()
    para += nodes.literal(text, text)
    return para


# --- CLI ----------------------------------------------------------------------------------------
def cli_commands() -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """Every visible command of the ``cgan`` app: (path, command, context), depth first.

    Typer builds Click-style command objects (with its own copy of Click in recent versions),
    so only the Click protocol is used: ``list_commands``, ``get_command``, ``get_params``,
    ``get_help_record`` and ``collect_usage_pieces``.
    """
    import typer

    from cgan_core.cli import build_app

    root = typer.main.get_command(build_app())

    def walk(command: Any, path: tuple[str, ...], parent: Any) -> Iterator[Any]:
        ctx = command.context_class(command, info_name=path[-1], parent=parent)
        yield path, command, ctx
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not getattr(sub, "hidden", False):
                    yield from walk(sub, path + (name,), ctx)

    yield from walk(root, ("cgan",), None)


def _param_rows(command: Any, ctx: Any) -> list[list[Any]]:
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if not getattr(param, "hidden", False) else None
        if record is None:
            continue
        names, help_text = record
        rows.append([code(names), help_text or ""])
    return rows


class CliReference(Directive):
    """``cgan-cli``: the whole command tree, one section per command."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for path, command, ctx in cli_commands():
            name = " ".join(path)
            node = section(name, f"cli {name}", literal_title=True)
            help_text = (command.help or "").strip()
            for block in [b for b in help_text.split("\n\n") if b.strip()]:
                node += paragraph(" ".join(block.split()))
            pieces = [p.strip("{}").upper() if p.startswith("{") else p for p in command.collect_usage_pieces(ctx)]
            usage = " ".join([name, *pieces])
            node += nodes.literal_block(usage, usage, language="text")
            rows = _param_rows(command, ctx)
            if rows:
                node += table(["option or argument", "description"], rows, [2, 5])
            out.append(node)
        return out


# --- configuration --------------------------------------------------------------------------------
def _config_table(section_name: str, cls: type, overrides: Optional[dict[str, Any]] = None) -> nodes.table:
    from cgan_core.configdoc import describe_section

    rows = []
    for key in describe_section(cls):
        default = repr(key.default) if isinstance(key.default, str) else str(key.default)
        rows.append([code(f"{section_name}.{key.name}"), key.type, default, key.description])
    return table(["key", "type", "default", "description"], rows, [3, 2, 2, 6])


def _overrides_paragraph(label: str, values: dict[str, Any]) -> Optional[nodes.paragraph]:
    if not values:
        return None
    para = nodes.paragraph()
    para += nodes.Text(f"{label}: ")
    for index, (key, value) in enumerate(values.items()):
        if index:
            para += nodes.Text(", ")
        text = f"{key}={value}"
        para += nodes.literal(text, text)
    return para


class ConfigReference(Directive):
    """``cgan-config``: every key of every config section of the built-in components."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from cgan_core.config import CORE_SECTIONS
        from cgan_core.plugins import get_registry

        registry = get_registry()
        out: list[nodes.Node] = []
        core = section("Core sections", "config core")
        core += paragraph("Shared by every model; models change their defaults (listed with each model).")
        for name, cls in CORE_SECTIONS.items():
            sub = section(f"{name}", f"config core {name}", literal_title=True)
            sub += paragraph((cls.__doc__ or "").strip().splitlines()[0])
            sub += _config_table(name, cls)
            core += sub
        out.append(core)
        for modality_name in sorted(registry.modalities):
            modality = registry.modalities[modality_name]
            node = section(f"Modality {modality_name}", f"config modality {modality_name}")
            node += paragraph(f"The ``data`` section of the ``{modality_name}`` modality "
                              f"(plugin ``{registry.owner('modalities', modality_name)}``).")
            node += _config_table("data", modality.data_config)
            for dataset in sorted(registry.datasets(modality_name).values(), key=lambda d: d.name):
                extra = _overrides_paragraph(f"Dataset {dataset.name} sets", {
                    f"data.{k}": v for k, v in dataset.data_defaults.items()})
                if extra is not None:
                    node += extra
            for model_name in sorted(n for n, m in registry.models.items() if m.modality == modality_name):
                model = registry.models[model_name]
                sub = section(f"Model {model_name}", f"config model {model_name}")
                sub += paragraph(model.description or "")
                sub += _config_table("model", model.config)
                for extra_name, cls in model.extra_sections.items():
                    sub += paragraph(f"Section ``{extra_name}``:")
                    sub += _config_table(extra_name, cls)
                defaults = {f"train.{k}": v for k, v in model.train_defaults.items()}
                defaults.update({f"data.{k}": v for k, v in model.data_defaults.items()})
                extra = _overrides_paragraph(f"{model_name} changes these defaults", defaults)
                if extra is not None:
                    sub += extra
                node += sub
            out.append(node)
        return out


# --- components of a modality ---------------------------------------------------------------------
class ComponentsTable(Directive):
    """``cgan-components MODALITY``: what is registered for a modality in this build."""

    required_arguments = 1
    has_content = False
    option_spec = {"heading": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        from cgan_core.plugins import get_registry

        registry = get_registry()
        name = self.arguments[0]
        if name not in registry.modalities:
            return [paragraph(f"The ``{name}`` modality is not installed in the environment these pages "
                              "were built in; ``cgan list modalities`` shows what yours has.")]
        modality = registry.modalities[name]
        rows: list[list[Any]] = []
        rows.append(["modality", code(name), modality.description])
        for model in sorted((m for m in registry.models.values() if m.modality == name), key=lambda m: m.name):
            rows.append(["model", code(model.name), model.description])
        for dataset in sorted(registry.datasets(name).values(), key=lambda d: d.name):
            label = dataset.name + (" (default)" if dataset.name == modality.default_dataset else "")
            rows.append(["dataset", code(label), dataset.description])
        for metric in sorted(registry.metrics(name).values(), key=lambda m: m.name):
            label = metric.name + (" (default)" if metric.name in modality.default_metrics else "")
            direction = "higher is better" if metric.higher_is_better else "lower is better"
            rows.append(["metric", code(label), f"{metric.description} ({direction})"])
        formats = ", ".join(modality.content_formats) or "none"
        note = paragraph(f"Content formats written by ``cgan generate``: {formats}.")
        return [table(["kind", "name", "description"], rows, [1, 2, 6]), note]


# --- hook coverage --------------------------------------------------------------------------------
def hookspec_names() -> list[str]:
    """Names of the functions in :mod:`cgan_core.hookspecs` marked as hook specifications."""
    from cgan_core import hookspecs

    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return sorted(name for name, value in vars(hookspecs).items() if callable(value) and hasattr(value, marker))


def check_hooks_documented(app: Sphinx, env: Any) -> None:
    """Warn (an error under ``-W``) for each hookspec without an ``autofunction`` entry."""
    documented = set(env.get_domain("py").objects)
    for name in hookspec_names():
        if f"cgan_core.hookspecs.{name}" not in documented:
            logger.warning(f"hookspec '{name}' is not documented: add it to docs/reference/hooks.md "
                           "with its signature and an example", type="cgan", subtype="hooks")


# --- short names ------------------------------------------------------------------------------------
def _import_dotted(path: str) -> Any:
    import importlib

    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:]:
                value = getattr(value, part)
        except AttributeError:
            return None
        return value
    return None


def resolve_cgan_names(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve references the Python domain could not: cgan objects named by a re-export path
    (``cgan_core.metrics.EvalContext`` for ``cgan_core.EvalContext``) or by a quoted forward
    reference (``'LoadedData'`` in a type hint), and type variables/aliases (plain text)."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").strip("'\"")
    short = target.rsplit(".", 1)[-1]
    domain = env.get_domain("py")
    matches = sorted({name for name in domain.objects
                      if name.startswith("cgan_core.") and name.rsplit(".", 1)[-1] == short})
    if len(matches) > 1:  # the same object documented once, under its public path, is preferred
        public = [name for name in matches if name.count(".") == 1]
        matches = public if len(public) == 1 else matches
    if len(matches) == 1 and (target == short or target.startswith("cgan_core.")):
        return domain.resolve_xref(env, node.get("refdoc", ""), app.builder, node.get("reftype", "class"),
                                   matches[0], node, contnode)
    if target.startswith("cgan_core."):
        import typing

        value = _import_dotted(target)
        if isinstance(value, typing.TypeVar) or typing.get_origin(value) is not None:
            return contnode  # a type variable or alias: shown as text, nothing to link to
    return None


def readable_factory_defaults(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                              signature: Optional[str], return_annotation: Optional[str]) -> Any:
    """Write dataclass ``default_factory`` defaults as ``...``: the ``<factory>`` placeholder is
    not Python, and a signature Sphinx cannot parse breaks its type cross-references."""
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), return_annotation
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives and the hook coverage check."""
    app.connect("autodoc-process-signature", readable_factory_defaults)
    app.connect("missing-reference", resolve_cgan_names)
    app.add_directive("cgan-cli", CliReference)
    app.add_directive("cgan-config", ConfigReference)
    app.add_directive("cgan-components", ComponentsTable)
    app.connect("env-check-consistency", check_hooks_documented)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
