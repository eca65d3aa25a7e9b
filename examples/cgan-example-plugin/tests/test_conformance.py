"""cgan's conformance kit against both plugins of this package.

``cgan_case`` comes from cgan's pytest plugin (``cgan_core.testing``): pytest collects one test
per component the named plugins register, e.g. ``test_cgan_conformance[model:mlp-gan]``.
"""

import pytest


@pytest.mark.cgan_conformance("points", "mlp-image", compute_metrics=True)
def test_cgan_conformance(cgan_case):
    report = cgan_case.check()
    assert report.checks, "every case runs at least one check"
