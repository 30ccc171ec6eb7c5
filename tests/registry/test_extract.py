"""Malicious and malformed archives: each is refused with a clear error, and nothing is left in
the staging dir or written outside it."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from cloaca.errors import PackageError, UnsafeArchiveError
from cloaca.registry.extract import ArchiveLimits, normalise_member_name
from cloaca.registry.loader import PackageLoaderFactory

from .conftest import (
    TOOLBOX,
    Entry,
    build_archive,
    manifest_for,
    package_entries,
    python_files,
    toolbox_task,
)

TASKS = [toolbox_task("record-pid", "record_pid")]


def with_extra(*extra: Entry, files: dict[str, bytes] | None = None) -> bytes:
    """A valid package plus ``extra`` members appended after the legitimate ones."""
    files = files or python_files(TOOLBOX)
    manifest = manifest_for("evil", files, TASKS)
    return build_archive([*package_entries(files, manifest, dirs=("src", "vendor")), *extra])


def assert_nothing_left(tmp_path: Path, staging: Path) -> None:
    assert os.listdir(staging) == []
    assert sorted(os.listdir(tmp_path)) == ["staging"]


@pytest.mark.parametrize(
    ("name", "extra", "fragment"),
    [
        ("path traversal", [Entry("src/../../../escaped.txt", b"x")], "'..'"),
        ("dotdot at start", [Entry("../escaped.txt", b"x")], "'..'"),
        ("symlink escape", [Entry("src/evil", type=tarfile.SYMTYPE, linkname="../../x")], "leaves"),
        (
            # each link looks inside on paper; resolved on disk the second one leaves
            "symlink chain escape",
            [
                Entry("src/up", type=tarfile.SYMTYPE, linkname=".."),
                Entry("src/up2", type=tarfile.SYMTYPE, linkname="up/.."),
            ],
            "outside the destination",
        ),
        (
            "hardlink escape",
            [Entry("src/hard", type=tarfile.LNKTYPE, linkname="../../../../etc/passwd")],
            "hard link",
        ),
        (
            "hardlink absolute",
            [Entry("src/hard", type=tarfile.LNKTYPE, linkname="/etc/passwd")],
            "hard link",
        ),
        ("character device", [Entry("src/tty", type=tarfile.CHRTYPE)], "device file"),
        ("block device", [Entry("src/sda", type=tarfile.BLKTYPE)], "device file"),
        ("fifo", [Entry("src/pipe", type=tarfile.FIFOTYPE)], "FIFO"),
        ("duplicate member", [Entry("src/pkg/tasks.py", b"print('replaced')")], "more than once"),
    ],
)
def test_unsafe_member_is_refused(
    tmp_path: Path,
    staging: Path,
    factory: PackageLoaderFactory,
    name: str,
    extra: list[Entry],
    fragment: str,
) -> None:
    data = with_extra(*extra)
    with pytest.raises(UnsafeArchiveError) as info:
        factory.load(data, source=f"{name}.cloaca")
    assert f"{name}.cloaca" in str(info.value)
    assert fragment in str(info.value)
    assert info.value.member
    assert_nothing_left(tmp_path, staging)
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_absolute_paths_are_refused(
    tmp_path: Path, staging: Path, factory: PackageLoaderFactory
) -> None:
    target = tmp_path / "absolute-escape.txt"
    with pytest.raises(UnsafeArchiveError, match="absolute paths are not allowed") as info:
        factory.load(with_extra(Entry(str(target), b"x")))
    assert info.value.member == str(target)
    assert not target.exists()
    assert_nothing_left(tmp_path, staging)


def test_absolute_symlink_is_refused(
    tmp_path: Path, staging: Path, factory: PackageLoaderFactory
) -> None:
    link = Entry("src/etc", type=tarfile.SYMTYPE, linkname="/etc")
    with pytest.raises(UnsafeArchiveError, match="absolute path '/etc' leaves the archive"):
        factory.load(with_extra(link))
    assert_nothing_left(tmp_path, staging)


def test_decompression_bomb_is_stopped_by_the_member_header(tmp_path: Path, staging: Path) -> None:
    zeros = bytes(64 * 1024 * 1024)  # 64 MiB of zeros: ~64 KiB compressed
    data = with_extra(Entry("src/bomb.bin", zeros))
    assert len(data) < 1024 * 1024
    factory = PackageLoaderFactory(staging, limits=ArchiveLimits(max_member_bytes=8 * 1024**2))
    with pytest.raises(UnsafeArchiveError, match="decompression bomb") as info:
        factory.load(data)
    assert info.value.member == "src/bomb.bin"
    assert_nothing_left(tmp_path, staging)


def test_total_size_limit(tmp_path: Path, staging: Path) -> None:
    chunks = [Entry(f"src/part{i}.bin", bytes(3 * 1024 * 1024)) for i in range(4)]
    factory = PackageLoaderFactory(staging, limits=ArchiveLimits(max_total_bytes=10 * 1024**2))
    with pytest.raises(UnsafeArchiveError, match="unpacks to more than"):
        factory.load(with_extra(*chunks))
    assert_nothing_left(tmp_path, staging)


def test_lying_header_with_default_limits_is_refused_before_reading_data(
    tmp_path: Path, staging: Path, factory: PackageLoaderFactory
) -> None:
    # a header claiming 8 GiB (and no data behind it): refused on the header alone
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("src/huge.bin")
        info.size = 8 * 1024**3
        tar.addfile(info)
    data = gzip.compress(raw.getvalue(), mtime=0)
    with pytest.raises(UnsafeArchiveError, match="member limit"):
        factory.load(data)
    assert_nothing_left(tmp_path, staging)


def test_member_count_limit(tmp_path: Path, staging: Path) -> None:
    many = [Entry(f"src/f{i:05}.txt", b"") for i in range(300)]
    factory = PackageLoaderFactory(staging, limits=ArchiveLimits(max_members=200))
    with pytest.raises(UnsafeArchiveError, match="more than 200 members"):
        factory.load(with_extra(*many))
    assert_nothing_left(tmp_path, staging)


def test_decompressed_stream_cap_catches_oversized_headers(tmp_path: Path, staging: Path) -> None:
    # a 2 MiB pax header record is read by tarfile itself: the stream cap must stop it
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.pax_headers = {"comment": "z" * (2 * 1024 * 1024)}
        tar.addfile(info, io.BytesIO(b""))
    limits = ArchiveLimits(
        max_members=10, max_total_bytes=64 * 1024, max_header_bytes=4 * 1024 * 1024
    )
    factory = PackageLoaderFactory(staging, limits=limits)
    with pytest.raises(UnsafeArchiveError, match="decompresses to more than"):
        factory.load(gzip.compress(raw.getvalue(), mtime=0))
    assert_nothing_left(tmp_path, staging)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"PK\x03\x04 a zip file", "bad magic bytes"),
        (b"", "bad magic bytes"),
        (gzip.compress(b"this is not a tar archive" * 40, mtime=0), "not a valid gzip-compressed"),
        (b"\x1f\x8b\x08\x00garbage", "not a valid gzip-compressed"),
    ],
)
def test_not_a_gzip_tar(
    tmp_path: Path, staging: Path, factory: PackageLoaderFactory, data: bytes, fragment: str
) -> None:
    with pytest.raises(PackageError, match=fragment):
        factory.load(data)
    assert_nothing_left(tmp_path, staging)


def test_truncated_archive(tmp_path: Path, staging: Path, factory: PackageLoaderFactory) -> None:
    data = with_extra()
    with pytest.raises(PackageError):
        factory.load(data[: len(data) // 2])
    assert_nothing_left(tmp_path, staging)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("./src/a.py", "src/a.py"), ("src//pkg/./x", "src/pkg/x"), ("./", ""), ("a", "a")],
)
def test_member_names_are_normalised(name: str, expected: str) -> None:
    assert normalise_member_name(name, "t") == expected
