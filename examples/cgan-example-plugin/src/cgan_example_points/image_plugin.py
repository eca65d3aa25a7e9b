"""The ``mlp-image`` plugin: a new model for an existing modality, in one hook.

It registers a model for the built-in ``image`` modality; the image plugin provides the data
sources, datasets, writers and metrics, found by name through the registry.
"""

from __future__ import annotations

from typing import Any, Callable

from cgan_core import ModelSpec, hookimpl, lazy

from cgan_example_points.config import MLPImageConfig


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    """Register ``mlp-image``."""
    register(ModelSpec(
        name="mlp-image",
        modality="image",
        config=MLPImageConfig,
        build=lazy("cgan_example_points.image_mlp", "build_mlp_image"),
        train_defaults={"max_steps": 2000, "batch_size": 64, "loss": "bce", "lr_g": 2e-4, "lr_d": 2e-4},
        data_defaults={"resolution": 32, "channels": 1},
        description="MLP generator and discriminator on flattened images (an example third-party model)",
        conformance={"model.hidden": 32, "model.latent_dim": 8},
    ))
