from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest

from cloaca.errors import BuildError
from cloaca.packaging import build_package, plan_build
from cloaca.packaging.archive import fingerprint
from cloaca.packaging.manifest import parse_manifest
from cloaca.packaging.targets import host_target
from tests.packaging.conftest import MakeProject
from tests.packaging.fakes import FakeUv

HOST_PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def _read(archive: Path) -> dict[str, bytes | None]:
    with tarfile.open(archive) as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOACA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def test_project_without_dependencies(make_project: MakeProject, tmp_path: Path) -> None:
    root = make_project()
    (built,) = build_package(root, tmp_path / "dist")
    target = host_target()
    assert built.path == tmp_path / "dist" / f"fixture-pkg-0.1.0-{target}.cloaca"
    assert built.target == target and not built.cached
    files = _read(built.path)
    assert sorted(files) == [
        "manifest.json", "requirements.lock", "src", "src/fixture_pkg",
        "src/fixture_pkg/__init__.py", "src/fixture_pkg/tasks.py", "vendor",
    ]  # fmt: skip
    assert files["requirements.lock"] == b""
    manifest = parse_manifest(files["manifest.json"])  # type: ignore[arg-type]
    assert manifest == built.manifest
    assert manifest.package.targets == [target]
    assert manifest.created_at == "2023-11-14T22:13:20Z"
    assert manifest.python is not None and manifest.python.entry_module == "fixture_pkg.tasks"
    assert [(t.id, t.dependencies, t.retries) for t in manifest.tasks] == [
        ("first", [], 2),  # no options: the default policy, 3 attempts
        ("second", ["first"], 2),  # retry_attempts=3: 3 attempts in total
    ]
    content = {k: v for k, v in files.items() if v is not None}
    assert manifest.package.fingerprint == fingerprint(content.items())
    assert [p.name for p in built.path.parent.iterdir()] == [built.path.name]  # no temp files


def test_two_targets_lock_and_vendor_each_platform(
    make_project: MakeProject, tmp_path: Path
) -> None:
    fake = FakeUv()
    root = make_project(deps='["demo"]')
    built = build_package(root, tmp_path / "out", ["linux-arm64", "macos-x86_64"], runner=fake)
    assert [b.target for b in built] == ["linux-arm64", "macos-x86_64"]
    assert fake.count("compile") == 2 and fake.count("install") == 2
    for pkg, platform in zip(built, ["aarch64-manylinux_2_28", "x86_64-apple-darwin"], strict=True):
        files = _read(pkg.path)
        assert files["vendor/demo/__init__.py"] == f"PLATFORM = {platform!r}\n".encode()
        assert "vendor/bin/demo" not in files and "vendor/.lock" not in files
        assert files["requirements.lock"].startswith(b"demo==1.0")  # type: ignore[union-attr]


def test_unchanged_rebuild_comes_from_the_cache(make_project: MakeProject, tmp_path: Path) -> None:
    fake = FakeUv()
    root = make_project(deps='["demo"]')
    (first,) = build_package(root, tmp_path / "a", ["linux-x86_64"], runner=fake)
    (again,) = build_package(root, tmp_path / "b", ["linux-x86_64"], runner=fake)
    assert again.cached and fake.count("compile") == 1 and fake.count("install") == 1
    assert again.path.read_bytes() == first.path.read_bytes()
    assert again.manifest == first.manifest
    # a source change rebuilds the archive but reuses lock and vendor tree
    (root / "src" / "fixture_pkg" / "extra.py").write_text("X = 1\n")
    (changed,) = build_package(root, tmp_path / "c", ["linux-x86_64"], runner=fake)
    assert not changed.cached and fake.count("compile") == 1 and fake.count("install") == 1
    assert "src/fixture_pkg/extra.py" in _read(changed.path)
    # use_cache=False does everything again and gives the same bytes
    (fresh,) = build_package(root, tmp_path / "d", ["linux-x86_64"], runner=fake, use_cache=False)
    assert fake.count("compile") == 2
    assert fresh.path.read_bytes() == changed.path.read_bytes()


def test_failed_target_leaves_no_archive(make_project: MakeProject, tmp_path: Path) -> None:
    fake = FakeUv(fail_platform="aarch64-apple-darwin")
    root = make_project(deps='["demo"]')
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=r"cannot be resolved for macos-arm64"):
        build_package(root, out, ["linux-x86_64", "macos-arm64"], runner=fake)
    assert list(out.iterdir()) == []  # neither the good target's archive nor temp files


def test_progress_reports_each_stage(make_project: MakeProject, tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    build_package(
        make_project(deps='["demo"]'),
        tmp_path / "o",
        ["linux-x86_64"],
        runner=FakeUv(),
        progress=lambda target, stage, message: events.append((target, stage)),
    )
    assert [stage for _, stage in events] == ["lock", "vendor", "archive", "done"]


def test_flat_layout_ships_the_entry_package(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    (root / "flatpkg").mkdir(parents=True)
    (root / "flatpkg" / "__init__.py").write_text("")
    (root / "flatpkg" / "jobs.py").write_text(
        "from cloaca import task\n\n@task\ndef job(context):\n    return context\n"
    )
    (root / "notes.txt").write_text("not shipped")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "flat"\nversion = "2.0"\n[tool.cloaca]\nentry_module = "flatpkg.jobs"\n'
    )
    (built,) = build_package(root)
    assert built.path.parent == root / "dist"
    assert [n for n in _read(built.path) if n.startswith("src")] == [
        "src", "src/flatpkg", "src/flatpkg/__init__.py", "src/flatpkg/jobs.py",
    ]  # fmt: skip


def test_python_version_must_satisfy_requires_python(make_project: MakeProject) -> None:
    root = make_project()
    with pytest.raises(BuildError, match=r"Python 3.10 .* does not satisfy requires-python"):
        plan_build(root, python_version="3.10")
    with pytest.raises(BuildError, match=r"must look like 3.12"):
        plan_build(root, python_version="three")
    assert plan_build(root).python_version == HOST_PY


def test_bad_source_date_epoch(make_project: MakeProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(BuildError, match=r"SOURCE_DATE_EPOCH"):
        build_package(make_project())


def test_plan_lists_outputs_without_building(make_project: MakeProject, tmp_path: Path) -> None:
    plan = plan_build(make_project(), tmp_path / "o", ["macos-arm64"])
    assert (
        plan.archive_path("macos-arm64") == tmp_path / "o" / "fixture-pkg-0.1.0-macos-arm64.cloaca"
    )
    assert [t.id for t in plan.tasks] == ["first", "second"]
    assert not (tmp_path / "o").exists()
    json.dumps([t.model_dump() for t in plan.tasks])


# ---------------------------------------------------------------- Python versions and wheel tags
def test_manifest_records_the_python_and_every_wheel(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project(deps='["demo"]')
    uv = FakeUv(wheel_tag="{abi}-{abi}-manylinux_2_17_x86_64")
    (built,) = build_package(root, tmp_path / "dist", ["linux-x86_64"], runner=uv)
    info = built.manifest.python
    assert info is not None and built.python_version == HOST_PY
    abi = "cp" + HOST_PY.replace(".", "")
    assert (info.python_version, info.abi) == (HOST_PY, abi)
    assert [(w.name, w.version, w.tags) for w in info.wheels or []] == [
        ("demo", "1.0", [f"{abi}-{abi}-manylinux_2_17_x86_64"])
    ]
    assert built.path.name == "fixture-pkg-0.1.0-linux-x86_64.cloaca"  # one Python: no suffix


def test_a_macos_wheel_in_a_linux_build_is_refused(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project(deps='["demo"]')
    uv = FakeUv(wheel_tag="{abi}-{abi}-macosx_11_0_arm64")
    with pytest.raises(BuildError, match="another platform than linux-x86_64") as info:
        build_package(root, tmp_path / "dist", ["linux-x86_64"], runner=uv)
    assert "demo 1.0 (built for macosx_11_0_arm64)" in str(info.value)
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())


def test_a_wheel_for_another_python_is_refused(make_project: MakeProject, tmp_path: Path) -> None:
    root = make_project(deps='["demo"]')
    uv = FakeUv(wheel_tag="cp399-cp399-manylinux_2_17_x86_64")
    with pytest.raises(BuildError, match=f"that Python {HOST_PY} cannot import: demo 1.0"):
        build_package(root, tmp_path / "dist", ["linux-x86_64"], runner=uv)


def test_several_pythons_give_one_archive_each(make_project: MakeProject, tmp_path: Path) -> None:
    root = make_project(deps='["demo"]')
    uv = FakeUv(wheel_tag="{abi}-{abi}-manylinux_2_17_x86_64")
    built = build_package(
        root, tmp_path / "dist", ["linux-x86_64"], python_versions=["3.11", "3.12"], runner=uv
    )
    assert [(b.path.name, b.python_version) for b in built] == [
        ("fixture-pkg-0.1.0-linux-x86_64-py311.cloaca", "3.11"),
        ("fixture-pkg-0.1.0-linux-x86_64-py312.cloaca", "3.12"),
    ]
    for b in built:
        assert b.manifest.python is not None
        assert b.manifest.python.python_version == b.python_version
        tag = b.manifest.python.wheels[0].tags[0]  # type: ignore[index]
        assert tag.startswith("cp" + b.python_version.replace(".", ""))
    versions = sorted(c[c.index("--python-version") + 1] for c in uv.calls if c[2] == "compile")
    assert versions == ["3.11", "3.12"]


def test_tool_cloaca_python_list(make_project: MakeProject) -> None:
    root = make_project(extra='python = ["3.12", "3.11", "3.12"]')
    plan = plan_build(root)
    assert plan.python_versions == ["3.12", "3.11"]
    assert plan.archive_path("linux-x86_64", "3.11").name.endswith("-linux-x86_64-py311.cloaca")
    assert plan_build(root, python_versions=["3.11"]).python_versions == ["3.11"]  # flag wins
    bad = make_project(extra='python = "three"')
    with pytest.raises(BuildError, match=r"\[tool.cloaca\] python must be a list of X.Y"):
        plan_build(bad)
    low = make_project(extra='python = ["3.10"]')
    with pytest.raises(BuildError, match=r"Python 3.10 \(\[tool.cloaca\] python\) does not"):
        plan_build(low)
