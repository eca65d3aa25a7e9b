"""Describing config dataclasses: each key's type, default and the sentence that documents it.

The configuration reference of the documentation and the conformance kit read config sections
through :func:`describe_section`, so a key is documented exactly where it is defined: in the
``Attributes:`` section of its dataclass's Google-style docstring.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any, Optional

_ATTRIBUTES_HEADER = re.compile(r"^(\s*)Attributes:\s*$")
_ITEM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?\s*:\s*(?P<text>.*)$")


@dataclass
class ConfigKey:
    """One key of a config section.

    Attributes:
        name: Key name within its section.
        type: The annotation, as readable text (``int``, ``tuple[float, float]``).
        default: The default value (``None`` when the field has no default).
        has_default: Whether the field has a default value or factory.
        description: The docstring's sentence for the key (empty when undocumented).
    """

    name: str
    type: str
    default: Any
    has_default: bool
    description: str


def attribute_docs(cls: type) -> dict[str, str]:
    """Read ``name: text`` items of the ``Attributes:`` section of a class docstring.

    Continuation lines (indented deeper than the item) are joined to the item's text.

    Args:
        cls: A class with a Google-style docstring.

    Returns:
        Attribute name -> description (whitespace collapsed).
    """
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    inside = False
    item_indent: Optional[int] = None
    current: Optional[str] = None
    for line in lines:
        if not inside:
            if _ATTRIBUTES_HEADER.match(line):
                inside = True
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if item_indent is None:
            item_indent = indent
        if indent < item_indent:  # the next section (Example:, Note:) or dedented prose
            break
        match = _ITEM.match(line.strip())
        if indent == item_indent and match:
            current = match.group("name")
            out[current] = match.group("text").strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


def type_text(annotation: Any) -> str:
    """Readable text for a type annotation (``Optional[int]``, ``tuple[float, float]``)."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


def describe_section(cls: type, prefix: str = "") -> list[ConfigKey]:
    """Every key of a config dataclass, in definition order.

    A key whose value is itself a dataclass (a nested section, such as SeqGAN's
    ``phases.mle``) is expanded into its own keys, named ``outer.inner``, as ``--set`` takes them.

    Args:
        cls: A dataclass type (a config section).
        prefix: Prepended to every key name (used for nested sections).

    Raises:
        TypeError: if ``cls`` is not a dataclass.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an unresolvable forward reference still leaves the raw annotation
        hints = {}
    docs = attribute_docs(cls)
    keys: list[ConfigKey] = []
    for item in dataclasses.fields(cls):
        has_default = item.default is not dataclasses.MISSING or item.default_factory is not dataclasses.MISSING
        if item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = None
        annotation = hints.get(item.name, item.type)
        nested = annotation if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) else None
        if nested is None and dataclasses.is_dataclass(default) and not isinstance(default, type):
            nested = type(default)
        if nested is not None:
            keys.extend(describe_section(nested, f"{prefix}{item.name}."))
            continue
        keys.append(ConfigKey(
            name=f"{prefix}{item.name}",
            type=type_text(annotation),
            default=default,
            has_default=has_default,
            description=docs.get(item.name, ""),
        ))
    return keys
