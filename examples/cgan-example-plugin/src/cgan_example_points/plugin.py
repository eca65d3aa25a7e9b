"""The ``points`` plugin: what the ``cgan.plugins`` entry point ``points`` names.

cgan imports this module on every invocation, so it only declares specs: the functions that
need torch are referenced with :func:`cgan_core.lazy`, which imports their module on first
call. Each ``@hookimpl`` receives a ``register`` callback and calls it once per spec.
"""

from __future__ import annotations

from typing import Any, Callable

from cgan_core import DatasetSpec, LossSpec, MetricSpec, ModalitySpec, ModelSpec, hookimpl, lazy

from cgan_example_points.config import MLPGANConfig, PointsDataConfig

PACKAGE = "cgan_example_points"


@hookimpl
def register_modalities(register: Callable[[Any], None]) -> None:
    """Register the ``points`` modality: (N, 2) float32 batches of 2-D points."""
    register(ModalitySpec(
        name="points",
        data_config=PointsDataConfig,
        open_source=lazy(f"{PACKAGE}.datasets", "open_points_source"),
        write_samples=lazy(f"{PACKAGE}.writers", "write_point_samples"),
        write_preview=lazy(f"{PACKAGE}.writers", "write_points_preview"),
        log_preview=lazy(f"{PACKAGE}.writers", "log_points_preview"),
        default_dataset="ring",
        default_metrics=("modes-covered", "high-quality-fraction"),
        default_eval_samples=2500,
        content_formats=("csv", "npy"),
        description="2-D point clouds as float (N, 2): CSV files of x,y rows or (N, 2) .npy arrays",
        # The kit reads written CSV/.npy back and expects the exact samples (9 digits are lossless).
        conformance={"roundtrip_atol": 0.0},
    ))


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    """Register ``mlp-gan``."""
    register(ModelSpec(
        name="mlp-gan",
        modality="points",
        config=MLPGANConfig,
        build=lazy(f"{PACKAGE}.model", "build_mlp_gan"),
        # Measured on the ring: 3000 steps cover all 8 modes with about half the samples within
        # 3 std of a mode; the EMA of the generator smooths its rotation around the ring.
        train_defaults={"max_steps": 3000, "batch_size": 256, "loss": "relativistic-average", "lr_g": 5e-4,
                        "lr_d": 5e-4, "betas": (0.5, 0.999), "ema_decay": 0.99, "checkpoint_every": 1000,
                        "sample_every": 500, "n_preview": 1000, "log_every": 50},
        description="MLP generator and discriminator for 2-D points (the mode-collapse benchmark set-up)",
        conformance={"model.hidden": 16, "model.depth": 1},
    ))


@hookimpl
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register the two classic mixtures; both are generated from ``data.seed``."""
    register(DatasetSpec("ring", "points", lazy(f"{PACKAGE}.datasets", "load_ring"),
                         description="8 Gaussians on a circle of radius 2, std 0.02 (Metz et al. 2017)",
                         conformance={"data.n_points": 64}))
    register(DatasetSpec("grid", "points", lazy(f"{PACKAGE}.datasets", "load_grid"),
                         description="25 Gaussians on a 5x5 grid, spacing 2, std 0.05 (Srivastava et al. 2017)",
                         conformance={"data.n_points": 64}))


@hookimpl
def register_losses(register: Callable[[Any], None]) -> None:
    """Register the relativistic average loss; any model can use it with ``train.loss``."""
    register(LossSpec(
        name="relativistic-average",
        discriminator_loss=lazy(f"{PACKAGE}.losses", "relativistic_average_discriminator_loss"),
        generator_loss=lazy(f"{PACKAGE}.losses", "relativistic_average_generator_loss"),
        generator_needs_real=True,
        description="relativistic average GAN loss, RaSGAN (Jolicoeur-Martineau 2019)",
    ))


@hookimpl
def register_metrics(register: Callable[[Any], None]) -> None:
    """Register the two mode-collapse metrics of the points modality."""
    register(MetricSpec("modes-covered", "points", lazy(f"{PACKAGE}.metrics", "modes_covered"),
                        higher_is_better=True,
                        description="modes with at least one sample within 3 std (VEEGAN, PacGAN)"))
    register(MetricSpec("high-quality-fraction", "points", lazy(f"{PACKAGE}.metrics", "high_quality_fraction"),
                        higher_is_better=True,
                        description="share of samples within 3 std of their nearest mode"))


@hookimpl
def register_commands(app: Any) -> None:
    """Add the ``cgan points`` command group."""
    from cgan_example_points.commands import points_app

    app.add_typer(points_app, name="points")
