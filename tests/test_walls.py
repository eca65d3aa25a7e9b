"""The walls of DESIGN.md: the core imports no modality library or plugin; plugins import no other plugin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODALITY_LIBRARIES = {"torchvision", "torchaudio", "av", "gensim", "transformers", "timm", "soundfile"}
PLUGINS = {p.name for p in (REPO / "plugins").iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_source_imports_no_modality_library_or_plugin():
    offenders = {}
    for path in (REPO / "cgan_core").rglob("*.py"):
        bad = _imported_roots(path) & (MODALITY_LIBRARIES | PLUGINS)
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_plugins_import_no_other_plugin_and_only_public_core_api():
    offenders = {}
    for plugin in PLUGINS:
        for path in (REPO / "plugins" / plugin).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    root = name.split(".")[0]
                    if (root in PLUGINS and root != plugin) or name.startswith("cgan_core."):
                        offenders.setdefault(str(path.relative_to(REPO)), []).append(name)
    assert offenders == {}


def test_importing_the_whole_core_loads_no_modality_library():
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for p in (REPO / "cgan_core").rglob("*.py")
        # __main__ runs the CLI; Alembic migration scripts only run inside Alembic's context.
        if p.name != "__main__.py" and "migrations" not in p.parts
    )
    modules = [m[: -len(".__init__")] if m.endswith(".__init__") else m for m in modules]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(sorted(set(k.split('.')[0] for k in sys.modules) & set({sorted(MODALITY_LIBRARIES)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_cli_help_does_not_import_torch():
    code = "import sys; from cgan_core.cli import build_app; build_app(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
