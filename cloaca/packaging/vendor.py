"""Vendoring: install a target's locked wheels into a ``vendor/`` tree with uv.

``uv pip install --target DIR --only-binary :all: --require-hashes --no-deps`` installs exactly
the pins of ``requirements.lock`` for the target's platform, never building anything. uv's
``.lock`` file and console scripts (``bin/``) are dropped: the scripts' shebangs point at the
build machine's interpreter and a package server never runs them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from cloaca.errors import BuildError
from cloaca.packaging.lock import Runner, describe_uv_failure, find_uv, run


def install_vendor(
    lock_text: str,
    dest: Path,
    python_platform: str,
    python_version: str,
    target: str,
    *,
    uv: str | None = None,
    runner: Runner = run,
) -> None:
    """Install the pins of ``lock_text`` into the (new or empty) directory ``dest``.

    Parameters
    ----------
    lock_text:
        ``requirements.lock`` contents; empty means nothing to install (``dest`` is still created).
    dest:
        Directory that becomes the archive's ``vendor/``.
    python_platform, python_version, target:
        uv's ``--python-platform``, ``X.Y``, and the target name for messages.
    uv, runner:
        The uv executable and the command runner.

    Raises
    ------
    BuildError
        uv could not install a pin (naming it when uv does).
    """
    dest.mkdir(parents=True, exist_ok=True)
    if not lock_text.strip():
        return
    uv = uv or find_uv()
    with tempfile.TemporaryDirectory(prefix="cloaca-vendor-") as tmp:
        lock = Path(tmp) / "requirements.lock"
        lock.write_text(lock_text, encoding="utf-8")
        argv = [
            uv, "pip", "install", "--target", str(dest), "-r", str(lock), "--quiet",
            "--only-binary", ":all:", "--require-hashes", "--no-deps",
            "--python-platform", python_platform, "--python-version", python_version,
        ]  # fmt: skip
        proc = runner(argv)
    if proc.returncode != 0:
        raise BuildError(describe_uv_failure(proc.stderr or proc.stdout or "", target))
    shutil.rmtree(dest / "bin", ignore_errors=True)
    (dest / ".lock").unlink(missing_ok=True)  # uv's own lock file for the target directory
