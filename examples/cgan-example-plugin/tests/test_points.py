"""Behaviour of the points plugin beyond the conformance kit: the maths, the files, the command."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cgan_core import CganRuntimeError, DataRequest, EvalContext, SampleInfo, UsageError
from cgan_example_points.config import PointsDataConfig
from cgan_example_points.datasets import load_grid, load_ring, open_points_source
from cgan_example_points.losses import relativistic_average_discriminator_loss, relativistic_average_generator_loss
from cgan_example_points.metrics import high_quality_fraction, modes_covered
from cgan_example_points.mixtures import grid_centres, mode_statistics, ring_centres, sample_mixture
from cgan_example_points.writers import write_point_samples


def _ring(n: int = 4000):
    return load_ring(DataRequest("ring", PointsDataConfig(n_points=n)))


def test_the_classic_mixtures_have_their_published_geometry():
    ring = ring_centres()
    assert ring.shape == (8, 2)
    assert torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))
    grid = grid_centres()
    assert grid.shape == (25, 2)
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    data = load_grid(DataRequest("grid", PointsDataConfig(n_points=500)))
    assert data.info["std"] == 0.05 and len(data.info["modes"]) == 25 and len(data) == 500


def test_data_of_a_mixture_is_seeded_and_the_reference_split_is_a_fresh_draw():
    first, second = _ring(256), _ring(256)
    assert torch.equal(first.dataset.samples, second.dataset.samples)
    reference = load_ring(DataRequest("ring", PointsDataConfig(n_points=256), split="reference"))
    assert not torch.equal(first.dataset.samples, reference.dataset.samples)


def test_real_points_are_high_quality_and_cover_every_mode():
    data = _ring(10000)
    stats = mode_statistics(data.dataset.samples, torch.tensor(data.info["modes"]), data.info["std"])
    assert stats.covered == 8
    # For a 2-D Gaussian, P(r <= 3 std) = 1 - exp(-9/2) = 0.989.
    assert abs(stats.high_quality_fraction - (1 - math.exp(-4.5))) < 0.005


def _context(fake: torch.Tensor, info: dict) -> EvalContext:
    return EvalContext(modality="points", real=fake, fake=fake, data_info=info)


def test_metrics_tell_a_collapsed_generator_from_a_good_one():
    data = _ring(2000)
    good = data.dataset.samples
    collapsed = sample_mixture(ring_centres()[:1], 0.02, 2000, seed=1)  # all mass on one mode
    blurred = sample_mixture(ring_centres(), 0.5, 2000, seed=2)  # every mode, poor samples
    assert modes_covered(_context(good, data.info)) == {"modes-covered": 8.0}
    assert modes_covered(_context(collapsed, data.info)) == {"modes-covered": 1.0}
    assert high_quality_fraction(_context(collapsed, data.info))["high-quality-fraction"] > 0.95
    assert high_quality_fraction(_context(blurred, data.info))["high-quality-fraction"] < 0.1
    ctx = _context(good, data.info)
    modes_covered(ctx)
    assert ctx.provenance["modes-covered"]["modes"] == 8


def test_metrics_need_a_mixture_with_known_modes():
    with pytest.raises(UsageError, match="known modes"):
        modes_covered(_context(torch.zeros(4, 2), {"shape": [2]}))


def test_relativistic_average_loss_matches_its_definition():
    real = torch.tensor([2.0, 0.0, 1.0])
    fake = torch.tensor([-1.0, 0.5])
    softplus = lambda t: math.log1p(math.exp(t))  # noqa: E731 - -log sigmoid(-t)
    mean_real, mean_fake = 1.0, -0.25
    expected_d = (sum(softplus(-(r - mean_fake)) for r in real.tolist()) / 3
                  + sum(softplus(f - mean_real) for f in fake.tolist()) / 2)
    expected_g = (sum(softplus(r - mean_fake) for r in real.tolist()) / 3
                  + sum(softplus(-(f - mean_real)) for f in fake.tolist()) / 2)
    assert float(relativistic_average_discriminator_loss(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    assert float(relativistic_average_generator_loss(fake, real)) == pytest.approx(expected_g, rel=1e-6)


def test_csv_and_npy_content_reads_back_exactly(tmp_path):
    samples = torch.randn(10, 2) * 3
    for fmt in ("csv", "npy"):
        (path,) = write_point_samples(samples, tmp_path / fmt, SampleInfo(seed=3), {}, fmt=fmt)
        assert path.name == f"seed3-points-000000.{fmt}"
        back = open_points_source(DataRequest(str(path), PointsDataConfig()))
        assert torch.equal(back.dataset.samples, samples)
    with pytest.raises(UsageError, match="csv or npy"):
        write_point_samples(samples, tmp_path, SampleInfo(), {}, fmt="png")


def test_bad_rows_are_skipped_and_counted_or_fatal_with_strict_data(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("x,y\n1,2\nnot,a number\n3,4\n5\n", encoding="utf-8")
    data = open_points_source(DataRequest(str(path), PointsDataConfig()))
    assert data.dataset.samples.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert data.skipped.count == 2 and "points.csv:3" in data.skipped.reasons[0]
    with pytest.raises(CganRuntimeError, match="points.csv:3"):
        open_points_source(DataRequest(str(path), PointsDataConfig(), strict=True))
    np.save(tmp_path / "wrong.npy", np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(UsageError, match=r"\(N, 2\)"):
        open_points_source(DataRequest(str(tmp_path / "wrong.npy"), PointsDataConfig()))
    with pytest.raises(UsageError, match="not a file"):
        open_points_source(DataRequest(str(tmp_path / "missing.csv"), PointsDataConfig()))


def test_the_plugin_module_does_not_import_torch():
    code = "import sys, cgan_example_points.plugin, cgan_example_points.image_plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


TINY = ["--set", "model.hidden=32", "--set", "model.depth=2", "--set", "data.n_points=512", "--no-progress"]


def test_train_then_plot_and_generate_from_the_command_line(tmp_path):
    from cgan_core.cli import build_app

    runner = CliRunner()
    run_dir = tmp_path / "ring"
    result = runner.invoke(build_app(), ["run", "--modality", "points", "--plugin", "mlp-gan", "--max-steps", "50",
                                         "--seed", "1", "--out", str(run_dir), *TINY])
    assert result.exit_code == 0, result.output
    assert "relativistic-average" in (run_dir / "config.yaml").read_text()
    result = runner.invoke(build_app(), ["points", "plot", str(run_dir), "-n", "500", "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.search(r"modes covered [0-8]/8, high-quality fraction [01]\.\d{3}", result.output), result.output
    result = runner.invoke(build_app(), ["generate", str(run_dir), "-n", "7", "--seed", "2", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    (csv,) = (tmp_path / "c").glob("*.csv")
    assert len(csv.read_text().splitlines()) == 1 + 7


def test_plot_refuses_a_directory_that_is_not_a_run(tmp_path):
    from cgan_core.cli import build_app

    result = CliRunner().invoke(build_app(), ["points", "plot", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a cgan run directory" in result.output
