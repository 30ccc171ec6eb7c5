from __future__ import annotations

import gzip
import hashlib
import tarfile
from pathlib import Path

import pytest

from cloaca.errors import BuildError
from cloaca.packaging.archive import Member, fingerprint, tree_members, write_archive


def _spec_fingerprint(files: dict[str, bytes]) -> str:
    # the spec's formula, written out independently of the implementation
    lines = [f"{p}\0{hashlib.sha256(c).hexdigest()}\n" for p, c in files.items()]
    return "sha256:" + hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def test_fingerprint_follows_the_spec_and_ignores_the_manifest() -> None:
    files = {"src/b.py": b"b", "requirements.lock": b"", "src/a.py": b"a"}
    expected = _spec_fingerprint(files)
    assert fingerprint(files.items()) == expected
    assert fingerprint([*files.items(), ("manifest.json", b"{}")]) == expected
    assert fingerprint([("src/a.py", b"changed"), *list(files.items())[:2]]) != expected


def test_tree_members_skip_caches_and_keep_modes(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "pkg" / "m.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "pkg" / "run.sh").chmod(0o755)
    (tmp_path / "x.egg-info").mkdir()
    members = {m.path: m for m in tree_members(tmp_path, "src")}
    assert sorted(members) == ["src", "src/pkg", "src/pkg/m.py", "src/pkg/run.sh"]
    assert members["src/pkg/run.sh"].executable and not members["src/pkg/m.py"].executable


def test_symlink_leaving_the_tree_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "link.txt").symlink_to(outside)
    with pytest.raises(BuildError, match=r"outside the project"):
        tree_members(tmp_path / "tree", "src")


def test_symlink_inside_the_tree_is_stored_as_a_file(tmp_path: Path) -> None:
    (tmp_path / "real.py").write_text("x = 1\n")
    (tmp_path / "alias.py").symlink_to(tmp_path / "real.py")
    members = {m.path: m for m in tree_members(tmp_path, "src")}
    assert members["src/alias.py"].read() == b"x = 1\n"


def _write(tmp_path: Path, name: str, members: list[Member], mtime: int) -> bytes:
    tmp = write_archive(members, tmp_path / name, mtime=mtime)
    data = tmp.read_bytes()
    tmp.unlink()
    return data


def test_archive_is_deterministic_and_normalised(tmp_path: Path) -> None:
    src = tmp_path / "f.py"
    src.write_text("print(1)\n")
    members = [Member("vendor"), Member("src"), Member("src/f.py", source=src),
               Member("manifest.json", data=b"{}")]  # fmt: skip
    one = _write(tmp_path, "a.cloaca", members, 1_700_000_000)
    src.touch()  # a newer file mtime must not matter
    two = _write(tmp_path, "b.cloaca", list(reversed(members)), 1_700_000_000)
    assert one == two
    assert one[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    assert gzip.decompress(one)  # a valid gzip stream
    (tmp_path / "c.cloaca").write_bytes(one)
    with tarfile.open(tmp_path / "c.cloaca") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == ["manifest.json", "src", "src/f.py", "vendor"]
    for info in infos:
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (
            1_700_000_000, 0, 0, "", ""
        )  # fmt: skip
        assert info.mode == (0o755 if info.isdir() else 0o644)
    assert _write(tmp_path, "d.cloaca", members, 1_700_000_001) != one


def test_write_goes_to_a_temp_file_beside_the_destination(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "p.cloaca"
    tmp = write_archive([Member("src")], dest)
    assert tmp.parent == dest.parent and tmp.name.startswith(".p.cloaca.")
    assert not dest.exists()
    assert tmp.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("bad", ["../evil", "/etc/passwd", "src/../../x"])
def test_unsafe_member_paths_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(BuildError, match=r"unsafe"):
        write_archive([Member(bad, data=b"")], tmp_path / "x.cloaca")
    assert list(tmp_path.iterdir()) == []
