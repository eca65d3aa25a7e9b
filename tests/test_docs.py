"""The Sphinx documentation: it builds with warnings as errors (nitpicky), its generated
references match the live code, and every hook specification is documented with an example."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
HOOKS_PAGE = DOCS / "reference" / "hooks.md"
sys.path.insert(0, str(DOCS / "_ext"))

from cgan_docs import cli_commands, hookspec_names  # noqa: E402


def _text(page: Path) -> str:
    """The visible text of a built HTML page (tags dropped, entities decoded)."""
    body = page.read_text(encoding="utf-8")
    body = body.split("<article", 1)[1].split("</article>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def _sphinx(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CGAN_DOCS_INTERSPHINX="local", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    command = [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html", *extra,
               str(source), str(out)]
    return subprocess.run(command, capture_output=True, text=True, env=env)


def test_every_hookspec_is_documented_with_signature_and_example():
    page = HOOKS_PAGE.read_text(encoding="utf-8")
    names = hookspec_names()
    assert {"register_modalities", "register_models", "register_commands"} <= set(names)
    for name in names:
        assert f".. autofunction:: cgan_core.hookspecs.{name}" in page, f"{name} has no signature entry"
        section = page.split(f"## {name}", 1)[1].split("\n## ", 1)[0] if f"## {name}" in page else ""
        assert f":pyobject: {name}" in section or f"def {name}(" in section, f"{name} has no example"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    result = _sphinx(DOCS, out)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return out


def test_docs_build_with_warnings_as_errors_offline(built):
    for page in ("index", "installation", "plugins/tutorial", "plugins/testing", "plugins/troubleshooting",
                 "reference/cli", "reference/configuration", "reference/hooks", "reference/api", "deployment",
                 "user-guide/image", "user-guide/text", "user-guide/video", "user-guide/audio"):
        assert (built / f"{page}.html").is_file(), page
    quickstart = _text(built / "installation.html")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for command in re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme):
        assert command in quickstart  # the README's two commands, included verbatim


def _live_commands() -> dict[str, list[str]]:
    """Every command of the live app (walked here, independently of the docs extension) and the
    option names it accepts."""
    import typer

    from cgan_core.cli import build_app

    out: dict[str, list[str]] = {}

    def walk(command, path: str, parent) -> None:
        ctx = command.context_class(command, info_name=path.split()[-1], parent=parent)
        out[path] = [opt for param in command.get_params(ctx) if not getattr(param, "hidden", False)
                     for opt in param.opts if opt.startswith("-")]
        for name in getattr(command, "list_commands", lambda _ctx: [])(ctx):
            sub = command.get_command(ctx, name)
            if not getattr(sub, "hidden", False):
                walk(sub, f"{path} {name}", ctx)

    walk(typer.main.get_command(build_app()), "cgan", None)
    return out


def test_cli_reference_lists_every_command_and_option_of_the_live_app(built, monkeypatch):
    from cgan_core.plugins import reset_registry

    monkeypatch.setenv("CGAN_LOAD_PLUGINS", "")  # what docs/conf.py builds with
    reset_registry()
    page = _text(built / "reference" / "cli.html")
    commands = _live_commands()
    assert {"cgan run", "cgan generate", "cgan plugins"} <= set(commands)
    sections = page.split("¶")
    for command, options in commands.items():
        heading = next((i for i, part in enumerate(sections) if part.rstrip().endswith("\n" + command)
                        or part.strip() == command), None)
        assert heading is not None, f"'{command}' is missing from the CLI reference"
        body = sections[heading + 1]
        for option in options:
            assert re.search(rf"(^|[\s,]){re.escape(option)}([\s,<=/]|$)", body, re.M), f"{command} {option} is not documented"
    assert sum(" ".join(path) in commands for path, _c, _x in cli_commands()) == len(commands)


def test_configuration_reference_has_every_key_of_every_builtin_section(built, monkeypatch):
    from cgan_core.config import CORE_SECTIONS
    from cgan_core.configdoc import describe_section
    from cgan_core.plugins import get_registry, reset_registry

    monkeypatch.setenv("CGAN_LOAD_PLUGINS", "")
    reset_registry()
    registry = get_registry()
    page = _text(built / "reference" / "configuration.html")
    sections = [(name, cls) for name, cls in CORE_SECTIONS.items()]
    sections += [("data", modality.data_config) for modality in registry.modalities.values()]
    for model in registry.models.values():
        sections.append(("model", model.config))
        sections += list(model.extra_sections.items())
    for name, cls in sections:
        for key in describe_section(cls):
            assert f"{name}.{key.name}" in page, f"{name}.{key.name} ({cls.__name__}) is missing"
    assert "Generator learning rate." in page


def test_tutorial_code_comes_from_the_example_plugin(built):
    page = _text(built / "plugins" / "tutorial.html")
    source = REPO / "examples" / "cgan-example-plugin" / "src" / "cgan_example_points"
    for file_name, line in (("model.py", "class MLPGAN(GANModel):"),
                            ("losses.py", "real_vs_fake = real_logits - fake_logits.mean()"),
                            ("image_plugin.py", 'name="mlp-image",'), ("commands.py", "def plot_command(")):
        assert line in (source / file_name).read_text(encoding="utf-8"), f"{source / file_name} changed"
        assert line in page, f"the tutorial does not show {file_name}"
    hooks = _text(built / "reference" / "hooks.html")
    for name in hookspec_names():
        assert f"cgan_core.hookspecs.{name}(" in hooks


def test_build_fails_when_a_hookspec_is_not_documented(tmp_path):
    (tmp_path / "conf.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(DOCS / "_ext")!r})
        extensions = ["sphinx.ext.autodoc", "cgan_docs"]
    """))
    (tmp_path / "index.rst").write_text("Hooks\n=====\n\n.. autofunction:: cgan_core.hookspecs.register_models\n")
    result = _sphinx(tmp_path, tmp_path / "out")
    assert result.returncode != 0
    assert "hookspec 'register_commands' is not documented" in result.stderr
    assert "hookspec 'register_models' is not documented" not in result.stderr
