"""Plugin loading through real entry points: isolation of broken plugins, selection, provenance."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

from cgan_core.errors import CganRuntimeError
from cgan_core.plugins import get_registry, reset_registry


def make_distribution(root: Path, dist: str, plugins: dict[str, str], requires: list[str] = ()) -> None:
    """Write an installed-looking distribution: modules plus a .dist-info with entry points."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = [f"Metadata-Version: 2.1", f"Name: {dist}", "Version: 1.0"] + [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    entries = "[cgan.plugins]\n" + "".join(f"{name} = {name}_mod\n" for name in plugins)
    (info / "entry_points.txt").write_text(entries)
    for name, source in plugins.items():
        (root / f"{name}_mod.py").write_text(textwrap.dedent(source))


GOOD = """
from cgan_core import hookimpl, LossSpec
@hookimpl
def register_losses(register):
    register(LossSpec("extra-loss", lambda r, f: (f - r).mean(), lambda f: -f.mean(), description="test"))
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    for var in ("CGAN_LOAD_PLUGINS", "CGAN_DISABLE_PLUGINS", "CGAN_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    importlib.invalidate_caches()
    reset_registry()
    return tmp_path


def _record(name):
    record = get_registry().record(name)
    assert record is not None, f"plugin {name} not seen"
    return record


def test_third_party_plugin_registers_with_provenance(plugin_dir):
    make_distribution(plugin_dir, "cgan-extra", {"extra": GOOD})
    registry = get_registry()
    assert registry.owner("losses", "extra-loss") == "extra"
    record = _record("extra")
    assert (record.status, record.package, record.version) == ("ok", "cgan-extra", "1.0")
    assert record.registered == {"losses": ["extra-loss"]}
    assert _record("image").status == "ok"  # the built-ins still load


def test_import_error_and_raising_hook_are_isolated(plugin_dir, capsys):
    make_distribution(plugin_dir, "cgan-broken", {
        "broken_import": "import this_module_does_not_exist\n",
        "broken_hook": """
            from cgan_core import hookimpl
            @hookimpl
            def register_models(register):
                raise RuntimeError("boom")
        """,
        "extra": GOOD,
    })
    registry = get_registry()
    assert _record("broken_import").status == "failed"
    assert "ModuleNotFoundError" in _record("broken_import").error
    assert _record("broken_hook").status == "failed" and "boom" in _record("broken_hook").error
    assert "extra-loss" in registry.losses and "dcgan" in registry.models
    err = capsys.readouterr().err
    assert "plugin 'broken_hook' (cgan-broken 1.0) failed" in err and "Traceback" not in err


def test_duplicate_name_is_an_error_naming_both_packages(plugin_dir):
    make_distribution(plugin_dir, "cgan-dupe", {"dupe": """
        from cgan_core import hookimpl, LossSpec
        @hookimpl
        def register_losses(register):
            register(LossSpec("ok-loss", lambda r, f: r.mean(), lambda f: f.mean()))
            register(LossSpec("hinge", lambda r, f: r.mean(), lambda f: f.mean()))
    """})
    registry = get_registry()
    record = _record("dupe")
    assert record.status == "failed"
    assert "'hinge' is registered twice" in record.error and "cgan" in record.error and "cgan-dupe" in record.error
    assert "ok-loss" not in registry.losses  # the plugin is skipped as a whole
    assert registry.owner("losses", "hinge") == "core"


def test_incompatible_cgan_version_and_unknown_hooks(plugin_dir):
    make_distribution(plugin_dir, "cgan-future", {"future": GOOD}, requires=["cgan>=99"])
    make_distribution(plugin_dir / "b", "cgan-odd", {"odd": """
        from cgan_core import hookimpl
        @hookimpl
        def register_samplers(register):
            pass
    """})
    import sys
    sys.path.insert(0, str(plugin_dir / "b"))
    try:
        importlib.invalidate_caches()
        get_registry()
        assert _record("future").status == "incompatible" and "cgan>=99" in _record("future").error
        assert _record("odd").status == "incompatible" and "register_samplers" in _record("odd").error
        assert "extra-loss" not in get_registry().losses
    finally:
        sys.path.remove(str(plugin_dir / "b"))


def test_disable_and_load_selection(plugin_dir, monkeypatch):
    make_distribution(plugin_dir, "cgan-extra", {"extra": GOOD})
    monkeypatch.setenv("CGAN_DISABLE_PLUGINS", "extra")
    assert _record("extra").status == "disabled"
    assert "extra-loss" not in get_registry().losses
    reset_registry()
    monkeypatch.delenv("CGAN_DISABLE_PLUGINS")
    monkeypatch.setenv("CGAN_LOAD_PLUGINS", "")  # built-ins only
    assert _record("extra").status == "disabled" and _record("image").status == "ok"
    reset_registry()
    monkeypatch.setenv("CGAN_LOAD_PLUGINS", "extra")
    assert _record("extra").status == "ok"


def test_strict_mode_makes_a_failure_fatal(plugin_dir, monkeypatch):
    make_distribution(plugin_dir, "cgan-broken", {"broken_import": "raise ImportError('nope')\n"})
    monkeypatch.setenv("CGAN_STRICT_PLUGINS", "1")
    with pytest.raises(CganRuntimeError, match="broken_import.*CGAN_STRICT_PLUGINS"):
        get_registry()


def test_plugins_command_reports_failed_plugin_in_one_line(plugin_dir, cli):
    make_distribution(plugin_dir, "cgan-broken", {"broken_import": "raise ImportError('nope')\n"})
    import json

    result = cli("plugins", "--json")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["broken_import"]["status"] == "failed" and "nope" in rows["broken_import"]["error"]
    assert rows["image"]["status"] == "ok" and "dcgan" in rows["image"]["registered"]["models"]
