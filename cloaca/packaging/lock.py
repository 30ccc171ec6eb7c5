"""Locking: ``uv pip compile --generate-hashes`` for one target platform and Python version.

Also home of the uv plumbing shared with :mod:`cloaca.packaging.vendor`: finding the uv binary and
running it through an injectable runner, so tests and callers can observe or replace the calls.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from cloaca.errors import BuildError

log = logging.getLogger(__name__)

#: runs a command line (uv first) and returns the completed process, stdout/stderr as text
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]

# uv wraps its messages to the terminal width ($COLUMNS), so words may be split by newlines
_SDIST_ONLY = re.compile(
    r"Wheels\s+are\s+required\s+for\s+`([^`]+)`"
    r"|([A-Za-z0-9_.\-]+)(?:==\S+)?\s+has\s+no\s+usable\s+wheels"
)
_NOT_FOUND = re.compile(
    r"Because\s+([A-Za-z0-9_.\-]+)\s+was\s+not\s+found\s+in\s+the\s+package\s+registry"
)


def find_uv() -> str:
    """Return the path of the uv executable.

    Looks at ``$CLOACA_UV``, then the ``uv`` Python package (a dependency of cloaca), then PATH.

    Raises
    ------
    BuildError
        When no uv executable is found.
    """
    override = os.environ.get("CLOACA_UV")
    if override:
        if Path(override).is_file() and os.access(override, os.X_OK):
            return override
        raise BuildError(
            f"uv not found at $CLOACA_UV={override!r}. Unset CLOACA_UV or point it at a uv binary."
        )
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found:
        return found
    raise BuildError(
        "uv not found. It is a dependency of cloaca: reinstall cloaca (`pip install cloaca-nb`) "
        "or install uv (`pip install uv`)."
    )


def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """The default :data:`Runner`: ``subprocess.run`` capturing text output, never raising."""
    log.debug("running %s", " ".join(argv))
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def describe_uv_failure(stderr: str, target: str) -> str:
    """Turn uv's resolution error output into one message that names the offending package."""
    detail = stderr.strip()
    sdist = _SDIST_ONLY.search(stderr)
    if sdist:
        name = sdist.group(1) or sdist.group(2)
        return (
            f"dependency {name!r} has no binary wheel for {target} (sdist only); packages vendor "
            f"wheels only. Pin a version of {name} that ships wheels for {target}, or drop it.\n"
            f"uv said:\n{detail}"
        )
    missing = _NOT_FOUND.search(stderr)
    if missing:
        return (
            f"dependency {missing.group(1)!r} cannot be resolved: it is not in the package index. "
            f"Check its name in [project] dependencies.\nuv said:\n{detail}"
        )
    return (
        f"dependencies cannot be resolved for {target}. Check [project] dependencies.\n"
        f"uv said:\n{detail}"
    )


def compile_lock(
    dependencies: Sequence[str],
    python_platform: str,
    python_version: str,
    target: str,
    *,
    uv: str | None = None,
    runner: Runner = run,
) -> str:
    """Resolve ``dependencies`` for one platform into pip-style pins with hashes.

    Parameters
    ----------
    dependencies:
        PEP 508 requirement strings (``[project] dependencies``).
    python_platform:
        uv's ``--python-platform`` value (see :data:`cloaca.packaging.targets.TARGETS`).
    python_version:
        ``X.Y`` to resolve for.
    target:
        The target name, for messages.
    uv, runner:
        The uv executable (found with :func:`find_uv` by default) and the command runner.

    Returns
    -------
    str
        The lock text (``name==version --hash=sha256:...`` lines); empty for no dependencies.

    Raises
    ------
    BuildError
        Resolution failed (an unknown package, no wheel for this platform ...), naming it.
    """
    if not dependencies:
        return ""
    uv = uv or find_uv()
    with tempfile.TemporaryDirectory(prefix="cloaca-lock-") as tmp:
        req_in = Path(tmp) / "requirements.in"
        req_in.write_text("".join(f"{d}\n" for d in dependencies), encoding="utf-8")
        out = Path(tmp) / "requirements.lock"
        argv = [
            uv, "pip", "compile", str(req_in), "-o", str(out), "--quiet",
            "--generate-hashes", "--no-header", "--no-annotate", "--only-binary", ":all:",
            "--python-platform", python_platform, "--python-version", python_version,
        ]  # fmt: skip
        proc = runner(argv)
        if proc.returncode != 0:
            raise BuildError(describe_uv_failure(proc.stderr or proc.stdout or "", target))
        return out.read_text(encoding="utf-8")
