"""Safe extraction of a ``.cloaca`` archive into a fresh directory.

Owns the archive-level defences of the loader, applied member by member while the archive is
streamed (one decompression pass, nothing buffered whole):

- names: relative, no ``..`` component, no NUL, no duplicates (``./`` prefixes are accepted and
  normalised away);
- types: regular files and directories; symbolic and hard links only when they stay inside the
  archive; devices, FIFOs, sparse and unknown members are refused;
- size: member count, per-member size and total size limits (:class:`ArchiveLimits`), checked on
  the tar headers *before* any data is read, plus a cap on the decompressed stream itself so a
  decompression bomb is stopped however its headers look;
- then ``tarfile``'s own ``data`` filter (PEP 706) extracts each member, which re-checks the real
  destination path (symlinks already on disk included).

The caller gives a directory that does not exist yet and removes it when extraction fails (see
:mod:`cloaca.registry.loader`, which extracts into a temp dir inside the staging dir and renames
it into place only once the archive is verified).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloaca.errors import PackageError, UnsafeArchiveError

_MiB = 1024 * 1024
# PEP 706 filters exist from Python 3.11.4; before that our own checks stand alone
_DATA_FILTER: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
_FilterError: type[Exception] = getattr(tarfile, "FilterError", tarfile.ExtractError)
_HEADER_SLACK = 1536  # bytes of tar header / pax record a member may use beyond its data


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits that bound what one archive may unpack to (defaults suit packages with big wheels).

    Attributes
    ----------
    max_members: most members (files, directories, links) an archive may hold.
    max_member_bytes: largest single file, uncompressed.
    max_total_bytes: sum of all file sizes, uncompressed.
    max_manifest_bytes: largest ``manifest.json``.
    """

    max_members: int = 200_000
    max_member_bytes: int = 1024 * _MiB
    max_total_bytes: int = 4096 * _MiB
    max_manifest_bytes: int = 4 * _MiB

    @property
    def max_stream_bytes(self) -> int:
        """Cap on the decompressed tar stream: data plus headers for every allowed member."""
        return self.max_total_bytes + (self.max_members + 2) * _HEADER_SLACK + 10240


@dataclass
class ExtractedArchive:
    """What :func:`extract_archive` found: member paths are normalised (no ``./``).

    ``files`` maps each regular-file member to the hex sha256 of its content; ``links`` lists
    ``(path, "symlink" | "hardlink", target)``; ``dirs`` holds directories, explicit or implied.
    """

    root: Path
    files: dict[str, str] = field(default_factory=dict)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    dirs: set[str] = field(default_factory=set)
    total_bytes: int = 0
    members: set[str] = field(default_factory=set, repr=False)


class _CappedReader(io.RawIOBase):
    """A readable stream over decompressed bytes that refuses to yield more than ``limit``."""

    def __init__(self, raw: Any, limit: int, label: str) -> None:
        self._raw, self._limit, self._label = raw, limit, label
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n: int = self._raw.readinto(buffer)
        self.count += n
        if self.count > self._limit:
            raise UnsafeArchiveError(
                f"the archive decompresses to more than {self._limit} bytes (decompression "
                "bomb?). Raise ArchiveLimits.max_total_bytes if the package is really this big.",
                path=self._label,
                member="<stream>",
            )
        return n


def normalise_member_name(name: str, label: str) -> str:
    """Return ``name`` without ``./`` and empty components; refuse absolute and ``..`` paths.

    Returns ``""`` for the archive root itself (a ``.`` member).
    """
    if "\x00" in name:
        raise UnsafeArchiveError("the name contains a NUL byte", path=label, member=name)
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(
            "absolute paths are not allowed; members must be relative to the archive root",
            path=label,
            member=name,
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            "'..' path components are not allowed (path traversal)", path=label, member=name
        )
    return "/".join(parts)


def _inside(path: str) -> bool:
    return path != ".." and not path.startswith("../") and not path.startswith("/")


def _check_member(
    member: tarfile.TarInfo, name: str, found: ExtractedArchive, label: str
) -> str | None:
    """Refuse unsafe members; return the normalised link target for links."""
    if member.isdir():
        return None
    if member.issparse() or not (member.isreg() or member.issym() or member.islnk()):
        kind = "device file" if (member.ischr() or member.isblk()) else "special member"
        if member.isfifo():
            kind = "FIFO"
        raise UnsafeArchiveError(
            f"{kind}s are not allowed; packages hold regular files, directories and links "
            "that stay inside the archive",
            path=label,
            member=member.name,
        )
    if member.issym():
        if member.linkname.startswith("/"):
            raise UnsafeArchiveError(
                f"symlink to the absolute path {member.linkname!r} leaves the archive",
                path=label,
                member=member.name,
            )
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if not _inside(target):
            raise UnsafeArchiveError(
                f"symlink to {member.linkname!r} leaves the archive", path=label, member=member.name
            )
        return target
    if member.islnk():
        target = posixpath.normpath(member.linkname)
        if member.linkname.startswith("/") or not _inside(target):
            raise UnsafeArchiveError(
                f"hard link to {member.linkname!r} leaves the archive",
                path=label,
                member=member.name,
            )
        target = normalise_member_name(member.linkname, label)
        if target not in found.files:
            raise UnsafeArchiveError(
                f"hard link to {member.linkname!r}, which is not an earlier regular file of the "
                "archive",
                path=label,
                member=member.name,
            )
        return target
    return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _open_stream(data: bytes, limits: ArchiveLimits, label: str) -> tarfile.TarFile:
    gz = gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")
    capped = io.BufferedReader(_CappedReader(gz, limits.max_stream_bytes, label), 1 << 16)
    return tarfile.open(fileobj=capped, mode="r|")


def extract_archive(
    data: bytes,
    dest: Path,
    *,
    limits: ArchiveLimits | None = None,
    label: str = "archive",
    on_member: Callable[[str, Path], None] | None = None,
) -> ExtractedArchive:
    """Extract the gzip tar ``data`` into the new directory ``dest`` with every check above.

    Parameters
    ----------
    data:
        The archive bytes.
    dest:
        Directory to create and extract into; it must not exist. On error it may hold a partial
        extraction: the caller removes it.
    limits:
        Size and count limits (default :class:`ArchiveLimits`).
    label:
        Names the archive in error messages.
    on_member:
        Called as ``on_member(name, path)`` after each member is extracted (the loader checks
        ``manifest.json`` as soon as it appears, to refuse a wrong target before unpacking more).

    Raises
    ------
    UnsafeArchiveError
        A member is unsafe or a limit is exceeded; ``member`` names it.
    PackageError
        The data is not a readable gzip-compressed tar.
    """
    limits = limits or ArchiveLimits()
    found = ExtractedArchive(root=dest)
    dest.mkdir()
    count = 0
    try:
        with _open_stream(data, limits, label) as tar:
            for member in tar:
                count += 1
                if count > limits.max_members:
                    raise UnsafeArchiveError(
                        f"more than {limits.max_members} members; raise "
                        "ArchiveLimits.max_members if the package is really this big",
                        path=label,
                        member=member.name,
                    )
                name = normalise_member_name(member.name, label)
                _extract_one(tar, member, name, found, limits, label)
                if on_member is not None and name:
                    on_member(name, dest / name)
    except (gzip.BadGzipFile, EOFError, zlib.error, tarfile.ReadError) as exc:
        raise PackageError(
            f"not a valid gzip-compressed tar archive ({exc}). A .cloaca package is a .tar.gz "
            "written by `cloaca build`.",
            path=label,
        ) from exc
    if count == 0:
        raise PackageError("the archive is empty", path=label)
    _check_links_on_disk(found, label)
    return found


def _extract_one(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    name: str,
    found: ExtractedArchive,
    limits: ArchiveLimits,
    label: str,
) -> None:
    if not name:  # the archive root itself ("./")
        if not member.isdir():
            raise UnsafeArchiveError("the root member must be a directory", path=label, member=".")
        return
    if name in found.members:
        raise UnsafeArchiveError(
            "appears more than once in the archive", path=label, member=member.name
        )
    found.members.add(name)
    target = _check_member(member, name, found, label)
    if member.isreg():
        if member.size > limits.max_member_bytes:
            raise UnsafeArchiveError(
                f"is {member.size} bytes, over the {limits.max_member_bytes}-byte member limit "
                "(decompression bomb?)",
                path=label,
                member=member.name,
            )
        found.total_bytes += member.size
        if found.total_bytes > limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"the archive unpacks to more than {limits.max_total_bytes} bytes "
                "(decompression bomb?)",
                path=label,
                member=member.name,
            )
    try:
        tar.extract(member, found.root, set_attrs=True, **_DATA_FILTER)
    except _FilterError as exc:
        raise UnsafeArchiveError(str(exc), path=label, member=member.name) from exc
    parts = name.split("/")
    found.dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    if member.isdir():
        found.dirs.add(name)
    elif member.isreg():
        found.files[name] = _sha256_file(found.root / name)
    else:
        assert target is not None
        found.links.append((name, "symlink" if member.issym() else "hardlink", target))


def _check_links_on_disk(found: ExtractedArchive, label: str) -> None:
    """Belt and braces: every link, resolved on disk, must still point inside the root."""
    root = os.path.realpath(found.root)
    for name, _kind, _target in found.links:
        real = os.path.realpath(found.root / name)
        if real != root and not real.startswith(root + os.sep):
            raise UnsafeArchiveError(
                f"resolves to {real}, outside the package", path=label, member=name
            )


__all__ = ["ArchiveLimits", "ExtractedArchive", "extract_archive", "normalise_member_name"]
