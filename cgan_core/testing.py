"""The conformance kit as a pytest plugin, for the test suites of cgan plugin packages.

pytest loads this module through the ``pytest11`` entry point of the ``cgan`` distribution, but
it does nothing until a test opts in: it only adds the ``cgan_conformance`` marker, the
``--cgan-plugin`` option, the ``cgan_conformance_plugins`` ini key and the ``cgan_case`` fixture.
A test that requests ``cgan_case`` is parametrised with one case per component the named plugins
register (see :mod:`cgan_core.conformance` for the checks)::

    import pytest

    @pytest.mark.cgan_conformance("points", compute_metrics=True)
    def test_cgan_conformance(cgan_case):
        cgan_case.check()

which collects ``test_cgan_conformance[plugin:points]``, ``[modality:points]``,
``[model:mlp-gan]``, ``[dataset:points/ring]``, ``[loss:relativistic-average]``, ... Plugins
may instead be named with ``pytest --cgan-plugin points`` or in the ini file::

    [tool.pytest.ini_options]
    cgan_conformance_plugins = ["points"]

Outside pytest, :func:`cgan_core.conformance.check_plugins` runs the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from cgan_core.conformance import Case, CaseReport, ConformanceError, check_plugins, collect_cases, run_case

MARKER = "cgan_conformance"
FIXTURE = "cgan_case"


@dataclass
class BoundCase:
    """A conformance case bound to a test's temporary directory.

    Attributes:
        case: The component being checked.
        workdir: Empty directory for runs and content files.
        compute_metrics: Whether metric cases compute values.
        registry: Registry override (default: the process-wide registry).
        report: Filled in by :meth:`check`.
    """

    case: Case
    workdir: Path
    compute_metrics: bool = False
    registry: Any = None
    report: Optional[CaseReport] = field(default=None)

    def check(self) -> CaseReport:
        """Run the case's checks; a failure raises :class:`~cgan_core.conformance.ConformanceError`."""
        self.report = run_case(self.case, self.workdir, self.registry, self.compute_metrics)
        return self.report


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--cgan-plugin`` and the ``cgan_conformance_plugins`` ini key."""
    group = parser.getgroup("cgan", "cgan plugin conformance kit")
    group.addoption("--cgan-plugin", action="append", default=[], dest="cgan_plugins", metavar="NAME",
                    help="check this cgan plugin (entry-point name) in tests that request the cgan_case fixture; "
                         "repeatable")
    parser.addini("cgan_conformance_plugins", type="args", default=[],
                  help="cgan plugins (entry-point names) checked by tests that request the cgan_case fixture")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*plugins, compute_metrics=False): run the cgan conformance kit against these plugins "
        f"(entry-point names) in a test that requests the '{FIXTURE}' fixture",
    )


def _named_plugins(metafunc: pytest.Metafunc) -> tuple[list[str], dict[str, Any]]:
    marker = metafunc.definition.get_closest_marker(MARKER)
    names = list(marker.args) if marker else []
    names += list(metafunc.config.getoption("cgan_plugins") or [])
    names += list(metafunc.config.getini("cgan_conformance_plugins") or [])
    unique = list(dict.fromkeys(names))
    return unique, dict(marker.kwargs) if marker else {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise tests that request ``cgan_case`` with the named plugins' cases."""
    if FIXTURE not in metafunc.fixturenames:
        return
    plugins, options = _named_plugins(metafunc)
    if not plugins:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid} requests '{FIXTURE}' but names no cgan plugin: add "
            f"@pytest.mark.{MARKER}('NAME'), pass --cgan-plugin NAME, or set cgan_conformance_plugins in the ini file"
        )
    unknown = set(options) - {"compute_metrics"}
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} got unknown options {sorted(unknown)}; valid: compute_metrics")
    cases = collect_cases(plugins)
    params = [pytest.param((case, options), id=case.id) for case in cases]
    metafunc.parametrize(FIXTURE, params, indirect=True)


@pytest.fixture
def cgan_case(request: pytest.FixtureRequest, tmp_path: Path) -> BoundCase:
    """The conformance case of this test item, with a fresh working directory."""
    param = getattr(request, "param", None)
    if param is None:
        raise pytest.UsageError(f"'{FIXTURE}' is parametrised by the {MARKER} marker; name a plugin")
    case, options = param
    return BoundCase(case, tmp_path, compute_metrics=bool(options.get("compute_metrics", False)))


__all__ = ["BoundCase", "Case", "CaseReport", "ConformanceError", "check_plugins", "collect_cases", "run_case"]
