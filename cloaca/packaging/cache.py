"""The build cache: locks, vendored trees and whole archives keyed by the hash of their inputs.

Three layers, each content-addressed so a stale entry can never be returned:

* ``locks/<key>.lock`` - a target's ``requirements.lock``; key: dependencies, requires-python,
  uv's platform and Python version.
* ``vendor/<key>/`` - the tree ``uv pip install --target`` produced; key: the lock text, platform
  and Python version.
* ``archives/<key>.cloaca`` (+ ``.json`` manifest) - a finished archive; key: pyproject bytes,
  source digest, lock text, target, Python version and ``SOURCE_DATE_EPOCH``.

The cache lives in ``$CLOACA_CACHE_DIR``, else ``$XDG_CACHE_HOME/cloaca``, else
``~/.cache/cloaca``. Entries are written under a temporary name and renamed, so concurrent
builds and interrupted ones never see half an entry. Deleting the directory is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_LAYOUT = "build-v2"  # bump when the meaning of a key or an entry changes


def default_cache_dir() -> Path:
    """Return the cache directory from the environment (see the module docstring)."""
    env = os.environ.get("CLOACA_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cloaca"


def cache_key(*parts: Any) -> str:
    """Hash JSON-serialisable ``parts`` into a hex key."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class BuildCache:
    """Content-addressed storage for locks, vendor trees and archives.

    Parameters
    ----------
    root:
        The cache directory (``None``: :func:`default_cache_dir`).
    enabled:
        When false, nothing is read; fresh results are still not written.
    """

    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = (root or default_cache_dir()) / _LAYOUT
        self.enabled = enabled

    # ----------------------------------------------------------------- locks
    def lock(self, key: str, compute: Callable[[], str]) -> tuple[str, bool]:
        """Return ``(lock text, was_cached)``, computing and storing it on a miss."""
        path = self.root / "locks" / f"{key}.lock"
        if self.enabled and path.is_file():
            return path.read_text(encoding="utf-8"), True
        text = compute()
        if self.enabled:
            self._write_atomic(path, text.encode("utf-8"))
        return text, False

    # ----------------------------------------------------------------- vendor trees
    def vendor(self, key: str, fill: Callable[[Path], None], scratch: Path) -> tuple[Path, bool]:
        """Return ``(vendor tree, was_cached)``; ``fill(dir)`` installs into a new dir on a miss.

        Without the cache the tree is made under ``scratch``.
        """
        final = self.root / "vendor" / key
        if self.enabled and (final / ".complete").is_file():
            return final / "tree", True
        if not self.enabled:
            tree = scratch / "vendor"
            fill(tree)
            return tree, False
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=final.parent))
        try:
            fill(tmp / "tree")
            (tmp / ".complete").touch()
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except OSError:
            if not (final / ".complete").is_file():  # lost a race to an identical entry otherwise
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final / "tree", False

    # ----------------------------------------------------------------- archives
    def archive(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        """Return ``(archive path, manifest dict)`` for a cached archive, or None."""
        path = self.root / "archives" / f"{key}.cloaca"
        meta = path.with_suffix(".json")
        if not (self.enabled and path.is_file() and meta.is_file()):
            return None
        return path, json.loads(meta.read_text(encoding="utf-8"))

    def store_archive(self, key: str, archive: Path, manifest_json: str) -> None:
        """Copy a finished archive and its manifest into the cache."""
        if not self.enabled:
            return
        path = self.root / "archives" / f"{key}.cloaca"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", dir=path.parent)
        os.close(fd)
        shutil.copyfile(archive, tmp)
        os.replace(tmp, path)
        # the manifest last: a reader that sees it also sees the archive
        self._write_atomic(path.with_suffix(".json"), manifest_json.encode("utf-8"))

    def _write_atomic(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
