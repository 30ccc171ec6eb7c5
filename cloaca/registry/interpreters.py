"""The Python interpreters that can run a package's tasks, and the choice among them.

A loader knows one or more :class:`Interpreter` s: the host's own (:func:`host_interpreter`)
and, on a server started with ``--python 3.11=/usr/bin/python3.11``, others found by
:func:`probe_interpreter`. A probe runs the interpreter once the way a worker starts
(``-I -S``, only the host's ``cloaca`` importable), so an interpreter that could not start a
worker is refused when configured rather than when a task runs; it also reports the
interpreter's wheel tags (``packaging.tags.sys_tags()`` run *there*).

:func:`choose_interpreter` picks, for a package, an interpreter inside its ``requires-python``
on which every vendored wheel runs - preferring the Python the package was built for - or raises
:class:`~cloaca.errors.IncompatiblePythonError` naming the package, the Python it was built for,
the Pythons this host runs, the cause and the command that fixes it.
"""

from __future__ import annotations

import functools
import json
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, parse_tag, sys_tags

from cloaca.errors import IncompatiblePythonError, ManifestError, PackageError
from cloaca.packaging.manifest import Manifest, VendoredWheel
from cloaca.packaging.wheels import expand, runs_on

#: oldest Python a worker can run on (cloaca's own ``requires-python``)
MIN_WORKER_PYTHON = (3, 11)
PROBE_TIMEOUT = 60.0

# run as `python -I -S -c _PROBE HOST_ROOT PACKAGING_ROOT`; the worker imports come first, with
# only the host's cloaca on the path, exactly as a worker starts (worker_process._BOOT)
_PROBE = (
    "import sys,json,platform;sys.path.insert(0,sys.argv[1]);"
    "import cloaca.registry.worker_main,cloaca.context,cloaca.task;"
    "sys.path.append(sys.argv[2]);from packaging.tags import sys_tags;"
    "print(json.dumps({'version':platform.python_version(),"
    "'implementation':sys.implementation.name,'tags':[str(t) for t in sys_tags()]}))"
)


@dataclass(frozen=True)
class Interpreter:
    """A Python that can run package workers: its executable, version and wheel tags."""

    executable: str
    version: str  # full, e.g. "3.12.1"
    tags: frozenset[Tag]

    @property
    def short(self) -> str:
        """``X.Y`` (``"3.12"``)."""
        return ".".join(self.version.split(".")[:2])


@functools.cache
def host_interpreter() -> Interpreter:
    """The interpreter running this process (workers default to it)."""
    return Interpreter(sys.executable, platform.python_version(), frozenset(sys_tags()))


def parse_python_option(value: str) -> tuple[str, str]:
    """Split a ``--python X.Y=/path/to/python`` value into ``(X.Y, path)``.

    Raises
    ------
    ValueError
        When it does not look like that (the message shows the expected form).
    """
    version, sep, path = value.partition("=")
    if not sep or not re.fullmatch(r"3\.\d{1,2}", version.strip()) or not path.strip():
        raise ValueError(
            f"invalid --python {value!r}: expected X.Y=/path/to/python, "
            "e.g. --python 3.11=/usr/bin/python3.11"
        )
    return version.strip(), path.strip()


@functools.cache
def probe_interpreter(executable: str | Path, expected: str | None = None) -> Interpreter:
    """Run ``executable`` once as a worker would start and read its version and wheel tags
    (a successful probe is remembered for the life of the process).

    Parameters
    ----------
    executable:
        The interpreter's path.
    expected:
        ``X.Y`` it must be (``--python 3.11=...``); None accepts any supported version.

    Raises
    ------
    PackageError
        It cannot be run, is not CPython, is older than cloaca supports, is not ``expected``,
        or cannot import the worker (the message carries its stderr).
    """
    import packaging

    import cloaca

    exe = str(executable)
    host_root = str(Path(cloaca.__file__).resolve().parent.parent)
    packaging_root = str(Path(packaging.__file__).resolve().parent.parent)
    argv = [exe, "-I", "-S", "-c", _PROBE, host_root, packaging_root]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PackageError(f"cannot run Python interpreter {exe!r}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise PackageError(
            f"Python interpreter {exe!r} cannot start a package worker (exit status "
            f"{proc.returncode}); it needs CPython >= {_dotted(MIN_WORKER_PYTHON)}.\n{tail}"
        )
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        version = str(info["version"])
        tags = frozenset(t for raw in info["tags"] for t in parse_tag(raw))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise PackageError(f"Python interpreter {exe!r} gave an unreadable answer") from exc
    if info.get("implementation") != "cpython":
        raise PackageError(f"{exe!r} is {info.get('implementation')}, not CPython")
    found = Interpreter(exe, version, tags)
    if expected is not None and found.short != expected:
        raise PackageError(
            f"--python {expected}={exe}: that interpreter is Python {found.short}, not {expected}"
        )
    return found


def built_for(manifest: Manifest, wheels: Sequence[VendoredWheel]) -> str:
    """The Python a package's vendored set was built for, for messages."""
    assert manifest.python is not None
    if manifest.python.python_version:
        return manifest.python.python_version
    abis = sorted({t.interpreter for w in wheels for t in expand(w) if t.abi.startswith("cp")})
    if abis:
        return "/".join(f"{a[2]}.{a[3:]}" for a in abis) + " (from its wheel tags)"
    return "an unrecorded version (an older manifest)"


def choose_interpreter(
    manifest: Manifest,
    wheels: Sequence[VendoredWheel],
    interpreters: Sequence[Interpreter],
    label: str,
    target: str,
) -> Interpreter:
    """The interpreter that runs the Python package ``manifest`` (vendored ``wheels``).

    It must satisfy ``requires-python`` and run every wheel; among those, the one of the Python
    the package was built for is preferred, then the first (the host's).

    Raises
    ------
    IncompatiblePythonError
        None fits; the message names the cause (the requirement or the first wheel that does
        not run) and the fix.
    ManifestError
        ``requires_python`` is not a valid specifier.
    """
    assert manifest.python is not None and interpreters
    spec = _requires(manifest, label)
    causes: list[str] = []
    fits: list[Interpreter] = []
    for interp in interpreters:
        if spec is not None and not spec.contains(interp.version, prereleases=True):
            causes.append(f"the package requires Python {spec} (Python {interp.short} does not)")
            continue
        stuck = [w for w in wheels if not runs_on(w, interp.tags)]
        if stuck:
            w = stuck[0]
            more = f" (and {len(stuck) - 1} more)" if len(stuck) > 1 else ""
            causes.append(
                f"its vendored wheel {w.name} {w.version} ({', '.join(w.tags) or 'no tags'}) "
                f"does not run on Python {interp.short}{more}"
            )
            continue
        fits.append(interp)
    if fits:
        wanted = manifest.python.python_version
        return next((i for i in fits if i.short == wanted), fits[0])
    running = ", ".join(dict.fromkeys(i.short for i in interpreters))
    origin = built_for(manifest, wheels)
    fix = (
        f"rebuild it for this host's Python with `cloaca build --target {target} "
        f"--python {interpreters[0].short}` and load the new archive"
    )
    if manifest.python.python_version:
        fix += (
            f", or give the server a Python {manifest.python.python_version} interpreter "
            f"(`cloacina server start --python {manifest.python.python_version}="
            f"/path/to/python{manifest.python.python_version}`)"
        )
    raise IncompatiblePythonError(
        "; ".join(dict.fromkeys(causes)),
        path=label,
        package=manifest.package.name,
        built_for=origin,
        running=running,
        fix=fix,
    )


def _requires(manifest: Manifest, label: str) -> SpecifierSet | None:
    assert manifest.python is not None
    raw = manifest.python.requires_python
    if not raw:
        return None
    try:
        return SpecifierSet(raw)
    except InvalidSpecifier as exc:
        raise ManifestError(str(exc), path=label, field="python.requires_python") from exc


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))


__all__ = [
    "Interpreter",
    "built_for",
    "choose_interpreter",
    "host_interpreter",
    "parse_python_option",
    "probe_interpreter",
]
