"""Finding a second CPython for the Python-version tests (pyenv's, uv's managed ones, or on
PATH): one whose minor version differs from the interpreter running the tests and that can
start a package worker. Tests that need it skip with the reason when there is none.

``CLOACA_TEST_OTHER_PYTHON=/path/to/python3.X`` overrides the search.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import sys
from pathlib import Path

from cloaca.errors import PackageError
from cloaca.registry.interpreters import Interpreter, probe_interpreter

HOST = f"{sys.version_info.major}.{sys.version_info.minor}"


def _candidates() -> list[str]:
    override = os.environ.get("CLOACA_TEST_OTHER_PYTHON")
    if override:
        return [override]
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = sorted(glob.glob(f"{pyenv}/versions/3.*/bin/python3"), reverse=True)
    uv_dir = os.environ.get("UV_PYTHON_INSTALL_DIR") or str(Path.home() / ".local/share/uv/python")
    found += sorted(glob.glob(f"{uv_dir}/cpython-3.*/bin/python3"), reverse=True)
    for minor in range(14, 10, -1):
        path = shutil.which(f"python3.{minor}")
        if path:
            found.append(path)
    return found


def _distance(path: str) -> int:
    m = re.search(r"3\.(\d+)", path)
    return abs(int(m.group(1)) - sys.version_info.minor) if m else 99


@functools.cache
def other_python() -> Interpreter | None:
    """A usable CPython >= 3.11 of another minor version than this one (the nearest), or None."""
    for path in sorted(_candidates(), key=_distance):
        try:
            interp = probe_interpreter(path)
        except PackageError:
            continue  # too old for a worker, not CPython, broken ...
        if interp.short != HOST:
            return interp
    return None


def other_python_or_skip() -> Interpreter:
    """:func:`other_python`, or skip the test saying what was looked for."""
    import pytest

    interp = other_python()
    if interp is None:
        pytest.skip(
            f"needs a second CPython >= 3.11 besides {HOST} (looked in pyenv, uv's managed "
            "Pythons and PATH; set CLOACA_TEST_OTHER_PYTHON=/path/to/python3.X)"
        )
    return interp
