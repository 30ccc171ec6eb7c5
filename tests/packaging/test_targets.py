from __future__ import annotations

import pytest

from cloaca.errors import BuildError
from cloaca.packaging.targets import TARGETS, host_target, python_platform, resolve_targets


def test_every_spec_target_maps_to_a_uv_platform() -> None:
    assert TARGETS == {
        "linux-x86_64": "x86_64-manylinux_2_28",
        "linux-arm64": "aarch64-manylinux_2_28",
        "macos-x86_64": "x86_64-apple-darwin",
        "macos-arm64": "aarch64-apple-darwin",
    }


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("linux", "x86_64", "linux-x86_64"),
        ("linux", "aarch64", "linux-arm64"),
        ("darwin", "arm64", "macos-arm64"),
        ("darwin", "x86_64", "macos-x86_64"),
    ],
)
def test_host_target(system: str, machine: str, expected: str) -> None:
    assert host_target(system, machine) == expected


def test_unsupported_host_asks_for_an_explicit_target() -> None:
    with pytest.raises(BuildError, match=r"pass --target"):
        host_target("win32", "AMD64")


def test_default_is_the_host_and_duplicates_collapse() -> None:
    assert resolve_targets(None) == [host_target()]
    assert resolve_targets(["macos-arm64", "linux-x86_64", "macos-arm64"]) == [
        "macos-arm64",
        "linux-x86_64",
    ]


def test_unknown_target_lists_the_valid_ones_with_a_close_match() -> None:
    with pytest.raises(BuildError) as info:
        resolve_targets(["linux-amd64"])
    message = str(info.value)
    assert "unknown target 'linux-amd64'" in message
    assert "Did you mean 'linux-arm64'" in message or "Did you mean 'linux-x86_64'" in message
    assert all(t in message for t in TARGETS)
    with pytest.raises(BuildError):
        python_platform("windows-x86_64")
