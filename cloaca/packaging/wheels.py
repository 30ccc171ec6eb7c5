"""Vendored wheels and their tags: what a ``vendor/`` tree holds and where it can run.

``uv pip install --target`` leaves one ``<name>-<version>.dist-info/WHEEL`` per installed wheel;
its ``Tag:`` lines (``cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64``, ``py3-none-any``)
say which interpreters, ABIs and platforms the wheel was built for. :func:`read_wheels` collects
them (the builder writes them into the manifest, the loader reads the staged tree again), and the
checks here use the ``packaging`` library's tag model:

* :func:`platform_fits` - does a platform tag run on a build target (``linux-x86_64`` takes
  ``manylinux`` wheels up to the ``manylinux_2_28`` baseline, ``macos-arm64`` takes ``arm64`` and
  ``universal2`` ...)? Used at build and at load: a macOS wheel in a Linux archive is refused.
* :func:`runs_on_cpython` - could CPython ``X.Y`` import the wheel (``cp312``/``abi3``/``py3``)?
* :func:`runs_on` - does the wheel match an interpreter's full tag set (``sys_tags()`` of the
  interpreter that would run it)?

A wheel is *pure* when every tag is ``<python>-none-any``: a set of pure wheels runs on any Python
the package's ``requires-python`` allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag

from cloaca.packaging.manifest import VendoredWheel

#: largest WHEEL metadata file read (they are a few hundred bytes; archives are untrusted)
_MAX_WHEEL_FILE = 64 * 1024
#: the manylinux baseline of the Linux targets (see :mod:`cloaca.packaging.targets`)
MANYLINUX_BASELINE = (2, 28)
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_LINUX_ARCH = {"linux-x86_64": "x86_64", "linux-arm64": "aarch64"}
_MACOS_ARCHES = {
    "macos-x86_64": {"x86_64", "intel", "universal", "universal2", "fat3", "fat64"},
    "macos-arm64": {"arm64", "universal2"},
}
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
_LEGACY = re.compile(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)")
_MACOSX = re.compile(r"macosx_\d+_\d+_(\w+)")


def read_wheels(vendor: Path) -> list[VendoredWheel]:
    """The wheels installed in the ``vendor`` tree, sorted by name.

    One entry per top-level ``*.dist-info`` directory: name and version from the directory name,
    tags from its ``WHEEL`` file (empty when the file is missing or unreadable, which the
    checks treat as "runs nowhere").
    """
    found: list[VendoredWheel] = []
    if not vendor.is_dir():
        return found
    for info in sorted(vendor.glob("*.dist-info")):
        if not info.is_dir():
            continue
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found.append(
            VendoredWheel(name=name or version, version=version if name else "", tags=_tags(info))
        )
    return found


def _tags(info: Path) -> list[str]:
    wheel = info / "WHEEL"
    try:
        if not wheel.is_file() or wheel.stat().st_size > _MAX_WHEEL_FILE:
            return []
        text = wheel.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    tags = {
        line.partition(":")[2].strip()
        for line in text.splitlines()
        if line.lower().startswith("tag:")
    }
    return sorted(t for t in tags if t)


def expand(wheel: VendoredWheel) -> frozenset[Tag]:
    """Every tag of ``wheel`` (compressed tag sets expanded); malformed tags are skipped."""
    out: set[Tag] = set()
    for raw in wheel.tags:
        try:
            out |= parse_tag(raw)
        except ValueError:
            continue
    return frozenset(out)


def is_pure(wheel: VendoredWheel) -> bool:
    """True when every tag of ``wheel`` is ``<python>-none-any`` (no compiled code)."""
    tags = expand(wheel)
    return bool(tags) and all(t.abi == "none" and t.platform == "any" for t in tags)


def platform_fits(platform: str, target: str) -> bool:
    """True when a wheel platform tag runs on build ``target`` (``any`` fits every target)."""
    if platform == "any":
        return True
    arch = _LINUX_ARCH.get(target)
    if arch is not None:
        m = _MANYLINUX.fullmatch(platform)
        if m:
            glibc = (int(m.group(1)), int(m.group(2)))
            return m.group(3) == arch and glibc <= MANYLINUX_BASELINE
        m = _LEGACY.fullmatch(platform)
        if m:
            return m.group(2) == arch
        return platform == f"linux_{arch}"
    arches = _MACOS_ARCHES.get(target)
    if arches is not None:
        m = _MACOSX.fullmatch(platform)
        return m is not None and m.group(1) in arches
    return False


def _cpython_pairs(version: tuple[int, int]) -> frozenset[tuple[str, str]]:
    major, minor = version
    interp = f"cp{major}{minor}"
    tags = [
        *cpython_tags(version, abis=[interp], platforms=["any"]),
        *compatible_tags(version, interp, platforms=["any"]),
    ]
    return frozenset((t.interpreter, t.abi) for t in tags)


def runs_on_cpython(wheel: VendoredWheel, version: tuple[int, int]) -> bool:
    """True when CPython ``version`` (``(3, 12)``) can import ``wheel`` (platform aside)."""
    pairs = _cpython_pairs(version)
    return any((t.interpreter, t.abi) in pairs for t in expand(wheel))


def runs_on(wheel: VendoredWheel, supported: frozenset[Tag]) -> bool:
    """True when one of ``wheel``'s tags is in ``supported`` (an interpreter's ``sys_tags``)."""
    return not expand(wheel).isdisjoint(supported)


def target_mismatches(wheels: Iterable[VendoredWheel], target: str) -> list[str]:
    """Describe each wheel none of whose tags runs on ``target`` (empty: all fit)."""
    bad = []
    for wheel in wheels:
        tags = expand(wheel)
        if not any(platform_fits(t.platform, target) for t in tags):
            platforms = ", ".join(sorted({t.platform for t in tags})) or "no tags"
            bad.append(f"{wheel.name} {wheel.version} (built for {platforms})")
    return bad


def python_mismatches(wheels: Iterable[VendoredWheel], version: tuple[int, int]) -> list[str]:
    """Describe each wheel CPython ``version`` cannot import (empty: all can)."""
    return [
        f"{w.name} {w.version} ({', '.join(w.tags) or 'no tags'})"
        for w in wheels
        if not runs_on_cpython(w, version)
    ]


def vendored_set_problem(wheels: Iterable[VendoredWheel], target: str, version: str) -> str:
    """Why a vendored set cannot run on ``target`` with CPython ``version`` (``"3.12"``), or
    ``""`` when it can (the builder's check of what uv installed)."""
    wheels = list(wheels)
    wrong = target_mismatches(wheels, target)
    if wrong:
        return (
            f"vendored wheel(s) for another platform than {target}: {'; '.join(wrong)}. "
            f"Pin versions that publish wheels for {target}."
        )
    major, minor = (int(p) for p in version.split("."))
    wrong = python_mismatches(wheels, (major, minor))
    if wrong:
        return (
            f"vendored wheel(s) that Python {version} cannot import: {'; '.join(wrong)}. "
            f"Pin versions that publish wheels for Python {version}."
        )
    return ""


__all__ = [
    "MANYLINUX_BASELINE",
    "expand",
    "is_pure",
    "platform_fits",
    "python_mismatches",
    "read_wheels",
    "runs_on",
    "runs_on_cpython",
    "target_mismatches",
    "vendored_set_problem",
]
