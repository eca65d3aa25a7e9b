"""Sphinx configuration of cgan's documentation (MyST Markdown, furo, autodoc + napoleon).

Build: ``sphinx-build -W -n -b html docs docs/_build/html`` (warnings are errors, nitpicky).

Intersphinx links to the Python and PyTorch documentation need their ``objects.inv``
inventories. ``CGAN_DOCS_INTERSPHINX`` chooses where they come from:

- ``local`` (default): inventories found on disk only (``docs/_inventories/python.inv``,
  ``docs/_inventories/torch.inv``, or Debian's ``python3-doc`` for Python). Builds offline.
- ``online``: fetched from docs.python.org and docs.pytorch.org (needs the network).
- ``off``: no intersphinx.

References into a project whose inventory is not loaded are rendered as plain text and
left out of the nitpicky check, so an offline build passes ``-W -n`` too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

# The generated references (CLI, configuration, components) describe cgan and its built-in
# plugins; third-party plugins installed in the same environment stay out of them.
os.environ["CGAN_LOAD_PLUGINS"] = ""

from cgan_core import __version__  # noqa: E402

project = "cgan"
author = "the cgan authors"
copyright = "the cgan authors, Apache-2.0"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "cgan_docs",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"cgan {release}"
pygments_style = "sphinx"
# Command lines are full of "--": keep them as typed instead of turning them into dashes.
smartquotes = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# "short" would write ``dict[str, ~typing.Any]``, which the nitpicky reference check cannot parse.
autodoc_typehints_format = "fully-qualified"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False

# --- intersphinx ------------------------------------------------------------------------------
INVENTORIES = {
    "python": ("https://docs.python.org/3", [DOCS / "_inventories" / "python.inv",
                                             Path("/usr/share/doc/python3/html/objects.inv")]),
    "torch": ("https://docs.pytorch.org/docs/stable", [DOCS / "_inventories" / "torch.inv"]),
}
# What each project's names look like, for the references left unresolved without its inventory.
UNLINKED_WITHOUT_INVENTORY = {
    "python": r"(typing|collections|pathlib|types|contextlib|dataclasses|enum|abc|os|io|importlib)(\..+)?"
              r"|(Any|Callable|Iterable|Iterator|Mapping|Sequence|Optional|Union|Literal|ContextManager"
              r"|Path|TypeVar|F|int|float|str|bool|bytes|dict|list|tuple|set|type|object|None|NoneType)",
    "torch": r"(torch|nn)(\..+)?|Tensor|Module|Generator|Optimizer|Dataset",
}
ALWAYS_UNLINKED = r"(numpy|np|typer|click|pytest|_pytest|pluggy|PluginManager|safetensors|yaml|sqlalchemy|fastapi)(\..+)?"

mode = os.environ.get("CGAN_DOCS_INTERSPHINX", "local")
intersphinx_mapping: dict[str, tuple[str, object]] = {}
nitpick_ignore_regex = [(r"py:.*", ALWAYS_UNLINKED)]
for name, (url, candidates) in INVENTORIES.items():
    local = next((str(path) for path in candidates if path.is_file()), None)
    if mode == "online":
        intersphinx_mapping[name] = (url, None)
    elif mode == "local" and local:
        intersphinx_mapping[name] = (url, local)
    else:
        nitpick_ignore_regex.append((r"py:.*", UNLINKED_WITHOUT_INVENTORY[name]))
