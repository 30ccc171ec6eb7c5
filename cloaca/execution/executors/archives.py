"""Which archive each loaded package came from, for executors that ship packages elsewhere.

A remote executor (Dask) sends a packaged task's *archive* to the machines that run it; the
loaded package only knows its staged directory. Whoever loads a package records its archive
here with :func:`register_archive` — bytes, or better the path of the stored ``.cloaca`` file,
read only when a remote executor first needs it. Importing this module imports no executor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloaca.registry.loader import LoadedPackage


@dataclass
class PackageArchive:
    """A loaded package's archive: its name, fingerprint, task functions and bytes (or path)."""

    name: str
    fingerprint: str
    functions: dict[str, str]  # task id -> manifest function
    source: bytes | Path = field(repr=False)

    def data(self) -> bytes:
        """The archive bytes (read from disk on first use when registered by path)."""
        if isinstance(self.source, Path):
            self.source = self.source.read_bytes()
        return self.source


_archives: dict[str, PackageArchive] = {}  # staged package root -> its archive
_lock = threading.Lock()


def register_archive(loaded: LoadedPackage, data: bytes | str | Path) -> None:
    """Record that ``loaded`` was loaded from ``data`` (bytes, or the ``.cloaca`` file's path).

    Parameters
    ----------
    loaded:
        The package returned by :meth:`~cloaca.registry.PackageLoaderFactory.load`.
    data:
        The exact archive; remote workers verify and stage it again by fingerprint.
    """
    source = data if isinstance(data, bytes) else Path(data)
    functions = {t.id: t.function for t in loaded.manifest.tasks}
    with _lock:
        _archives[str(loaded.root)] = PackageArchive(
            loaded.name, loaded.fingerprint, functions, source
        )


def archive_at(root: str) -> PackageArchive | None:
    """The archive recorded for the package staged at ``root``, or None."""
    with _lock:
        return _archives.get(root)


__all__ = ["PackageArchive", "archive_at", "register_archive"]
