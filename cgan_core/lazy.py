"""Lazily imported callables, so plugin modules can register specs without importing torch.

``cgan --help`` loads every plugin to collect its commands; a plugin module that imports torch,
torchvision or gensim at import time would make every invocation slow. Registering
``lazy("my_plugin.model", "build")`` instead of ``build`` defers that import to first use.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy(module: str, name: str) -> Callable[..., Any]:
    """Return a function that imports ``module`` and calls ``module.name`` on first call.

    Args:
        module: Dotted module path.
        name: Attribute of the module to call.
    """
    target: list[Callable[..., Any]] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        if not target:
            target.append(getattr(importlib.import_module(module), name))
        return target[0](*args, **kwargs)

    call.__name__ = name
    call.__qualname__ = name
    call.__doc__ = f"Calls {module}.{name} (imported on first use)."
    call.__wrapped_target__ = f"{module}:{name}"  # type: ignore[attr-defined]
    return call
