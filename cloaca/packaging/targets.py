"""Build targets: the platform names a package is built for and how they map to uv.

A target names an operating system and a CPU (``linux-x86_64``). For vendoring, each target maps
to one ``uv --python-platform`` value. The Linux baseline is **manylinux_2_28** (glibc 2.28:
RHEL/Alma/Rocky 8, Debian 10+, Ubuntu 18.10+), the oldest baseline for which current wheels of
common packages (pydantic-core, cryptography, numpy) are still published. macOS uses uv's
default deployment target (the oldest macOS release still supported by Apple; set
``MACOSX_DEPLOYMENT_TARGET`` to change it).
"""

from __future__ import annotations

import difflib
import platform
import sys
from collections.abc import Iterable

from cloaca.errors import BuildError

#: target name -> ``uv pip ... --python-platform`` value
TARGETS: dict[str, str] = {
    "linux-x86_64": "x86_64-manylinux_2_28",
    "linux-arm64": "aarch64-manylinux_2_28",
    "macos-x86_64": "x86_64-apple-darwin",
    "macos-arm64": "aarch64-apple-darwin",
}

_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
_SYSTEMS = {"linux": "linux", "darwin": "macos"}


def host_target(system: str | None = None, machine: str | None = None) -> str:
    """Return the target name of this machine (``linux-x86_64`` ...).

    Parameters
    ----------
    system, machine:
        Override ``sys.platform`` and ``platform.machine()`` (for tests).

    Raises
    ------
    BuildError
        When the host is not one of the supported targets; pass ``--target`` explicitly then.
    """
    sys_name = _SYSTEMS.get((system or sys.platform).lower())
    arch = _MACHINES.get((machine or platform.machine()).lower())
    name = f"{sys_name}-{arch}"
    if sys_name is None or arch is None or name not in TARGETS:
        raise BuildError(
            f"this host ({system or sys.platform}/{machine or platform.machine()}) is not a "
            f"supported build target; pass --target with one of: {', '.join(TARGETS)}"
        )
    return name


def python_platform(target: str) -> str:
    """Return uv's ``--python-platform`` value for ``target`` (validated)."""
    return TARGETS[validate_target(target)]


def validate_target(target: str) -> str:
    """Return ``target`` unchanged when it is known, else raise :class:`BuildError`.

    The message lists the valid targets and a close match when there is one.
    """
    if target in TARGETS:
        return target
    close = difflib.get_close_matches(target, list(TARGETS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise BuildError(f"unknown target {target!r}.{hint} Valid targets: {', '.join(TARGETS)}.")


def resolve_targets(targets: Iterable[str] | None) -> list[str]:
    """Validate and de-duplicate ``targets`` (order kept); ``None`` or empty means the host."""
    chosen = list(dict.fromkeys(targets or ()))
    if not chosen:
        return [host_target()]
    return [validate_target(t) for t in chosen]
