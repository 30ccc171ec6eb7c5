"""Deterministic ``.cloaca`` archives and the package fingerprint.

An archive is built from an in-memory plan (:class:`Member` list) so that the same inputs always
give the same bytes: members sorted by path, directories listed explicitly, mtime fixed (from
``SOURCE_DATE_EPOCH``), uid/gid 0 with empty owner names, modes normalised to 0o755 / 0o644, and a
gzip header with mtime 0 and no file name. The archive is written to a temporary file next to its
destination and renamed into place by the caller (:func:`write_archive` returns the temp path), so a
failed build never leaves a half-written ``.cloaca`` behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cloaca.errors import BuildError

#: member mtime when SOURCE_DATE_EPOCH is unset (1980-01-01, the zip/wheel epoch)
DEFAULT_MTIME = 315532800
_SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Member:
    """One archive member: a directory (``source`` and ``data`` None) or a regular file.

    A file's content comes from ``data`` or is read from ``source``; ``executable`` selects mode
    0o755 over 0o644.
    """

    path: str
    source: Path | None = None
    data: bytes | None = None
    executable: bool = False

    @property
    def is_dir(self) -> bool:
        """True for a directory member."""
        return self.source is None and self.data is None

    def read(self) -> bytes:
        """Return the file's content."""
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()


def tree_members(root: Path, prefix: str, *, skip_egg_info: bool = True) -> list[Member]:
    """List ``root`` recursively as members under ``prefix`` (``src`` or ``vendor``).

    Caches (``__pycache__``, ``*.pyc``, VCS and tool directories) and ``*.egg-info`` are left out.
    A symlink is stored as the file it points to when that file is inside ``root``.

    Raises
    ------
    BuildError
        For a symlink leaving ``root`` or a special file (socket, FIFO, device).
    """
    members = [Member(prefix)]
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _SKIP_DIRS and not (skip_egg_info and d.endswith(".egg-info"))
        )
        rel_dir = here.relative_to(root).as_posix()
        base = prefix if rel_dir == "." else f"{prefix}/{rel_dir}"
        for d in list(dirnames):
            if (here / d).is_symlink():
                _check_inside(here / d, real_root)
                dirnames.remove(d)  # stored through its target, which is inside root already
                continue
            members.append(Member(f"{base}/{d}"))
        for name in sorted(filenames):
            if name.endswith(_SKIP_SUFFIXES):
                continue
            path = here / name
            if path.is_symlink():
                _check_inside(path, real_root)
            if not path.is_file():
                raise BuildError(f"{path} is not a regular file; remove it from the project.")
            members.append(
                Member(f"{base}/{name}", source=path, executable=os.access(path, os.X_OK))
            )
    return members


def _check_inside(path: Path, real_root: Path) -> None:
    target = path.resolve()
    if not target.is_relative_to(real_root):
        raise BuildError(
            f"{path} is a symlink to {target}, outside the project; packages hold no links that "
            "leave them. Copy the file in instead."
        )


def fingerprint(files: Iterable[tuple[str, bytes]]) -> str:
    """Compute ``package.fingerprint`` over ``(path, content)`` pairs, per the spec.

    The lowercase-hex sha256 of the UTF-8 concatenation of the sorted lines
    ``path + "\\0" + hex_sha256(content) + "\\n"``; ``manifest.json`` is excluded.
    """
    lines = sorted(
        f"{path}\0{hashlib.sha256(content).hexdigest()}\n"
        for path, content in files
        if path != "manifest.json"
    )
    return "sha256:" + hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def member_fingerprint(members: Sequence[Member]) -> str:
    """:func:`fingerprint` of the regular-file members of ``members``."""
    return fingerprint((m.path, m.read()) for m in members if not m.is_dir)


def _tarinfo(member: Member, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member.path)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if member.is_dir:
        info.type, info.mode, info.size = tarfile.DIRTYPE, 0o755, 0
    else:
        info.type, info.size = tarfile.REGTYPE, size
        info.mode = 0o755 if member.executable else 0o644
    return info


def write_archive(
    members: Sequence[Member], dest: Path, *, mtime: int = DEFAULT_MTIME, compresslevel: int = 6
) -> Path:
    """Write ``members`` as a deterministic gzip tar into a temp file beside ``dest``.

    Parameters
    ----------
    members:
        The archive contents; sorted by path here. Paths must be relative without ``..``.
    dest:
        Final archive path; its directory is created. The caller renames the returned temp file
        onto it (``os.replace``) once every archive of the build is written.
    mtime:
        The mtime of every member (``SOURCE_DATE_EPOCH`` when set).
    compresslevel:
        gzip level; 6 is ~2.5x faster than 9 for under 1 % larger archives.

    Returns
    -------
    Path
        The temporary file holding the complete archive.
    """
    for m in members:
        if m.path.startswith("/") or ".." in m.path.split("/"):
            raise BuildError(f"refusing to write unsafe archive member {m.path!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0o600; archives are meant to be shared
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel
            ) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for member in sorted(members, key=lambda m: m.path):
                if member.is_dir:
                    tar.addfile(_tarinfo(member, 0, mtime))
                    continue
                data = member.read()
                tar.addfile(_tarinfo(member, len(data), mtime), io.BytesIO(data))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
