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

import errno
import gzip
import hashlib
import io
import os
import posixpath
import re
import sys
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
# tar metadata members that ``tarfile`` reads whole into memory while parsing headers
_META_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
# CPython before 3.11.10 / 3.12.6 parses pax headers with regexes that are quadratic in a run of
# digits (CVE-2024-6232); on those versions long digit runs in a pax header are refused
_PAX_REGEX_QUADRATIC = sys.version_info < (3, 11, 10) or (3, 12) <= sys.version_info < (3, 12, 6)
_PAX_MAX_DIGIT_RUN = 64
_DIGIT_RUN = re.compile(rb"[0-9]{%d}" % (_PAX_MAX_DIGIT_RUN + 1))
# errors of the extraction itself that are the archive's fault (a file where a directory is
# needed, a name too long for the file system ...); other OSErrors are the host's and propagate
_ARCHIVE_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENOTEMPTY,
     errno.ELOOP, errno.EMLINK, errno.ENOENT, errno.EINVAL, errno.EILSEQ}
)  # fmt: skip


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits that bound what one archive may unpack to (defaults suit packages with big wheels).

    Attributes
    ----------
    max_members: most members (files, directories, links) an archive may hold.
    max_member_bytes: largest single file, uncompressed.
    max_total_bytes: sum of all file sizes, uncompressed.
    max_manifest_bytes: largest ``manifest.json``.
    max_header_bytes: largest pax extended header or GNU long name/link record (``tarfile``
        reads these whole while parsing, before any of our checks sees the member).
    max_ratio: most decompressed bytes per compressed byte, once the decompressed stream is
        past ``ratio_free_bytes`` (a real package is far below it; a bomb is far above).
    ratio_free_bytes: decompressed bytes allowed whatever the ratio (tar headers and padding of
        many small files compress very well).
    """

    max_members: int = 200_000
    max_member_bytes: int = 1024 * _MiB
    max_total_bytes: int = 4096 * _MiB
    max_manifest_bytes: int = 4 * _MiB
    max_header_bytes: int = 16 * 1024
    max_ratio: int = 100
    ratio_free_bytes: int = 64 * _MiB

    @property
    def max_stream_bytes(self) -> int:
        """Cap on the decompressed tar stream: data plus headers for every allowed member."""
        return self.max_total_bytes + (self.max_members + 2) * _HEADER_SLACK + 10240

    def stream_cap(self, compressed_bytes: int) -> int:
        """Cap on the decompressed stream of an archive of ``compressed_bytes``: the absolute
        :attr:`max_stream_bytes`, lowered by :attr:`max_ratio` for small archives."""
        by_ratio = max(self.ratio_free_bytes, self.max_ratio * compressed_bytes)
        return min(self.max_stream_bytes, by_ratio)


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
    link_names: set[str] = field(default_factory=set, repr=False)


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
                "bomb?). Raise ArchiveLimits.max_total_bytes (or max_ratio) if the package is "
                "really this big.",
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
    _require_utf8(name, "the name", label, name)
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


def _require_utf8(text: str, what: str, label: str, member: str) -> None:
    # tarfile decodes undecodable bytes to lone surrogates; paths are hashed as UTF-8
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeArchiveError(
            f"{what} is not valid UTF-8",
            path=label,
            member=member.encode("utf-8", "replace").decode("utf-8"),
        ) from None


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
    if member.issym() or member.islnk():
        if "\x00" in member.linkname:
            raise UnsafeArchiveError("the link target contains a NUL byte", path=label, member=name)
        _require_utf8(member.linkname, "the link target", label, name)
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


class _Replay:
    """A file object that yields ``head`` and then reads on from ``rest`` (see ``_proc_pax``)."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int) -> bytes:
        if not self._head:
            return bytes(self._rest.read(size))
        out, self._head = self._head[:size], self._head[size:]
        if len(out) < size:
            out += self._rest.read(size - len(out))
        return out

    def tell(self) -> int:
        return int(self._rest.tell()) - len(self._head)


def _check_pax_records(data: bytes, label: str, member: str) -> None:
    """Check the framing of pax records (``"<len> key=value\n"``) in linear time."""
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 21)
        length = int(data[pos:space]) if space > pos and data[pos:space].isdigit() else 0
        end = pos + length
        if length < 5 or end > len(data) or data[end - 1] != 0x0A or data[space + 1] == 0x3D:
            raise UnsafeArchiveError("malformed pax extended header", path=label, member=member)
        if data.find(b"=", space + 1, end - 1) < 0:
            raise UnsafeArchiveError("malformed pax extended header", path=label, member=member)
        pos = end
    if _PAX_REGEX_QUADRATIC and _DIGIT_RUN.search(data):
        raise UnsafeArchiveError(
            f"pax extended header with a run of more than {_PAX_MAX_DIGIT_RUN} digits (this "
            "Python parses such headers in quadratic time; CVE-2024-6232)",
            path=label,
            member=member,
        )


def _tarinfo_class(limits: ArchiveLimits, label: str) -> type[tarfile.TarInfo]:
    """A ``TarInfo`` that bounds the metadata records ``tarfile`` reads while parsing headers."""

    class _BoundedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tar: Any) -> Any:
            if self.type in _META_TYPES and not 0 <= self.size <= limits.max_header_bytes:
                raise UnsafeArchiveError(
                    f"extended header of {self.size} bytes, over the "
                    f"{limits.max_header_bytes}-byte limit (ArchiveLimits.max_header_bytes)",
                    path=label,
                    member=self.name,
                )
            return super()._proc_member(tar)  # type: ignore[misc]

        def _proc_pax(self, tar: Any) -> Any:
            buf = tar.fileobj.read(self._block(self.size))  # type: ignore[attr-defined]
            _check_pax_records(buf[: self.size], label, self.name)
            real = tar.fileobj
            tar.fileobj = _Replay(buf, real)  # tarfile's own parser reads the block again
            try:
                return super()._proc_pax(tar)  # type: ignore[misc]
            finally:
                tar.fileobj = real

    return _BoundedTarInfo


def _open_stream(data: bytes, limits: ArchiveLimits, label: str) -> tarfile.TarFile:
    gz = gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")
    capped = io.BufferedReader(_CappedReader(gz, limits.stream_cap(len(data)), label), 1 << 16)
    return tarfile.open(fileobj=capped, mode="r|", tarinfo=_tarinfo_class(limits, label))


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
    except (gzip.BadGzipFile, EOFError, zlib.error, tarfile.TarError, ValueError) as exc:
        # tarfile lets ValueError out of some malformed headers (GNU sparse maps, pax sizes)
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
    parts = name.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent in found.files or parent in found.link_names:
            # a member under a link would alias (and overwrite) another member or manifest.json
            # after it was checked; under a file it cannot be created at all
            raise UnsafeArchiveError(
                f"is inside {parent!r}, which is not a directory of the archive",
                path=label,
                member=member.name,
            )
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
    except (ValueError, OverflowError) as exc:  # e.g. a pax mtime of "inf"
        raise UnsafeArchiveError(
            f"cannot be extracted: {exc}", path=label, member=member.name
        ) from exc
    except OSError as exc:
        if exc.errno not in _ARCHIVE_ERRNOS:
            raise
        raise UnsafeArchiveError(
            f"cannot be extracted: {exc.strerror}", path=label, member=member.name
        ) from exc
    found.dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    if member.isdir():
        found.dirs.add(name)
    elif member.isreg():
        found.files[name] = _sha256_file(found.root / name)
    else:
        assert target is not None
        found.link_names.add(name)
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
