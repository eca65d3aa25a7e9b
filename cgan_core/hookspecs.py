"""The pluggy hook specifications: the public extension contract of cgan.

Every ``register_*`` hook receives a host-owned ``register`` callback instead of returning
values (the pattern of simonw/llm). The host therefore knows which plugin registered what, and
can later pass more keyword arguments to ``register`` without breaking existing plugins.

Example:
    A plugin module listed under the ``cgan.plugins`` entry-point group::

        from cgan_core import hookimpl, ModelSpec

        @hookimpl
        def register_models(register):
            register(ModelSpec(name="my-gan", modality="image", config=MyConfig, build=build))
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT_NAME = "cgan"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_modalities(register: Callable[[Any], None]) -> None:
    """Register modalities with ``register(ModalitySpec(...))``."""


@hookspec
def register_models(register: Callable[[Any], None]) -> None:
    """Register GAN models with ``register(ModelSpec(...))``."""


@hookspec
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register named datasets with ``register(DatasetSpec(...))``."""


@hookspec
def register_losses(register: Callable[[Any], None]) -> None:
    """Register adversarial losses with ``register(LossSpec(...))``."""


@hookspec
def register_metrics(register: Callable[[Any], None]) -> None:
    """Register evaluation metrics with ``register(MetricSpec(...))``."""


@hookspec
def register_commands(app: Any) -> None:
    """Add Typer sub-commands or groups to the ``cgan`` command-line app ``app``."""
