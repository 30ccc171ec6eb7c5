"""Lazy re-exports (PEP 562) for packages that keep heavy imports out of ``import cloaca``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(namespace: dict[str, Any], names: Mapping[str, str]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` importing ``names[attr]`` (a module path) on first access.

    ``namespace`` is the package's ``globals()``; the value is cached there, so later lookups
    cost nothing.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
