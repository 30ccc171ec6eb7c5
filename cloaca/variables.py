"""Upstream's variable registry: ``var(name)`` / ``var_or(name, default)`` read
``CLOACINA_VAR_<name>`` from the environment, with the name used verbatim (no case change)."""

from __future__ import annotations

import os

PREFIX = "CLOACINA_VAR_"


def var(name: str) -> str:
    """The value of ``CLOACINA_VAR_<name>``.

    Raises
    ------
    KeyError
        When the variable is not set (the message names it).
    """
    value = os.environ.get(PREFIX + name)
    if value is None:
        raise KeyError(
            f"variable {name!r} is not set: export {PREFIX}{name}=... "
            f"or use cloaca.var_or({name!r}, default)"
        )
    return value


def var_or(name: str, default: str) -> str:
    """The value of ``CLOACINA_VAR_<name>``, or ``default`` when it is not set."""
    return os.environ.get(PREFIX + name, default)


__all__ = ["PREFIX", "var", "var_or"]
