"""Wheel tags of a vendored set: reading them from ``vendor/``, and whether they fit a build
target (platform) and a CPython version (interpreter and ABI). No second interpreter needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloaca.packaging.manifest import VendoredWheel
from cloaca.packaging.wheels import (
    is_pure,
    platform_fits,
    python_mismatches,
    read_wheels,
    runs_on,
    runs_on_cpython,
    target_mismatches,
)


def wheel(*tags: str, name: str = "demo") -> VendoredWheel:
    return VendoredWheel(name=name, version="1.0", tags=list(tags))


@pytest.mark.parametrize(
    ("platform", "target", "fits"),
    [
        ("any", "linux-x86_64", True),
        ("any", "macos-arm64", True),
        ("manylinux_2_17_x86_64", "linux-x86_64", True),
        ("manylinux_2_28_x86_64", "linux-x86_64", True),
        ("manylinux_2_31_x86_64", "linux-x86_64", False),  # newer than the 2_28 baseline
        ("manylinux_2_17_x86_64", "linux-arm64", False),
        ("manylinux2014_aarch64", "linux-arm64", True),
        ("manylinux1_x86_64", "linux-x86_64", True),
        ("musllinux_1_2_x86_64", "linux-x86_64", False),  # musl wheels do not run on glibc
        ("linux_x86_64", "linux-x86_64", True),
        ("macosx_11_0_arm64", "linux-x86_64", False),
        ("macosx_11_0_arm64", "macos-arm64", True),
        ("macosx_11_0_arm64", "macos-x86_64", False),
        ("macosx_10_12_x86_64", "macos-x86_64", True),
        ("macosx_10_9_universal2", "macos-x86_64", True),
        ("macosx_10_9_universal2", "macos-arm64", True),
        ("win_amd64", "linux-x86_64", False),
        ("manylinux_2_17_x86_64", "no-such-target", False),
    ],
)
def test_platform_fits(platform: str, target: str, fits: bool) -> None:
    assert platform_fits(platform, target) is fits


@pytest.mark.parametrize(
    ("tag", "version", "runs"),
    [
        ("cp311-cp311-manylinux_2_17_x86_64", (3, 11), True),
        ("cp311-cp311-manylinux_2_17_x86_64", (3, 12), False),
        ("cp312-cp312-manylinux_2_17_x86_64", (3, 11), False),
        ("cp38-abi3-manylinux_2_17_x86_64", (3, 12), True),  # the stable ABI runs on later ones
        ("cp313-abi3-manylinux_2_17_x86_64", (3, 12), False),  # ... not on earlier ones
        ("py3-none-any", (3, 13), True),
        ("py2.py3-none-any", (3, 11), True),
        ("cp313-cp313t-manylinux_2_17_x86_64", (3, 13), False),  # free-threaded ABI
    ],
)
def test_runs_on_cpython(tag: str, version: tuple[int, int], runs: bool) -> None:
    assert runs_on_cpython(wheel(tag), version) is runs


def test_compressed_tag_sets_are_expanded() -> None:
    w = wheel("cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64")
    assert target_mismatches([w], "linux-x86_64") == []
    assert runs_on_cpython(w, (3, 12))


def test_pure_and_compiled() -> None:
    assert is_pure(wheel("py2-none-any", "py3-none-any"))
    assert not is_pure(wheel("cp311-cp311-manylinux_2_17_x86_64"))
    assert not is_pure(wheel())  # no tags: nothing is known, nothing is assumed


def test_mismatch_messages_name_the_wheel() -> None:
    mac = wheel("cp311-cp311-macosx_11_0_arm64", name="pydantic_core")
    pure = wheel("py3-none-any", name="six")
    assert target_mismatches([pure, mac], "linux-x86_64") == [
        "pydantic_core 1.0 (built for macosx_11_0_arm64)"
    ]
    assert python_mismatches([pure, mac], (3, 12)) == [
        "pydantic_core 1.0 (cp311-cp311-macosx_11_0_arm64)"
    ]
    assert target_mismatches([wheel(name="odd")], "linux-x86_64") == ["odd 1.0 (built for no tags)"]


def test_runs_on_an_interpreter_tag_set() -> None:
    from packaging.tags import cpython_tags

    supported = frozenset(cpython_tags((3, 12), platforms=["manylinux_2_17_x86_64"]))
    assert runs_on(wheel("cp312-cp312-manylinux_2_17_x86_64"), supported)
    assert not runs_on(wheel("cp311-cp311-manylinux_2_17_x86_64"), supported)
    assert not runs_on(wheel("not a tag"), supported)


def test_read_wheels_from_a_vendor_tree(tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    core = vendor / "pydantic_core-2.27.2.dist-info"
    core.mkdir(parents=True)
    (core / "WHEEL").write_text(
        "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
        "Tag: cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64\n"
    )
    six = vendor / "six-1.16.0.dist-info"
    six.mkdir()
    (six / "WHEEL").write_text("Wheel-Version: 1.0\nTag: py3-none-any\nTag: py2-none-any\n")
    (vendor / "broken-0.1.dist-info").mkdir()  # no WHEEL file
    (vendor / "pydantic_core").mkdir()  # not a dist-info: ignored
    assert read_wheels(vendor) == [
        VendoredWheel(name="broken", version="0.1", tags=[]),
        VendoredWheel(
            name="pydantic_core",
            version="2.27.2",
            tags=["cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"],
        ),
        VendoredWheel(name="six", version="1.16.0", tags=["py2-none-any", "py3-none-any"]),
    ]
    assert read_wheels(tmp_path / "missing") == []
