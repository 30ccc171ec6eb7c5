from __future__ import annotations

import pytest

from cloaca.errors import BuildError
from cloaca.packaging.lock import compile_lock, describe_uv_failure, find_uv
from cloaca.packaging.vendor import install_vendor
from tests.packaging.fakes import FakeUv

SDIST = """error: No solution found when resolving dependencies
  cause: Because docopt==0.6.2 has no usable wheels and you require docopt==0.6.2, we can
  conclude that your requirements are unsatisfiable.

hint: Wheels are required for `docopt` because building from source is disabled for all packages"""
MISSING = """error: No solution found when resolving dependencies
  cause: Because no-such-pkg was not found in the package registry and you require no-such-pkg,
  we can conclude that your requirements are unsatisfiable."""


def test_sdist_only_failure_names_the_package() -> None:
    message = describe_uv_failure(SDIST, "macos-arm64")
    assert message.startswith("dependency 'docopt' has no binary wheel for macos-arm64")
    assert "uv said:" in message


def test_missing_package_failure_names_it() -> None:
    assert describe_uv_failure(MISSING, "linux-x86_64").startswith(
        "dependency 'no-such-pkg' cannot be resolved"
    )
    assert "cannot be resolved for linux-x86_64" in describe_uv_failure("weird", "linux-x86_64")


def test_no_dependencies_needs_no_uv() -> None:
    fake = FakeUv()
    assert compile_lock([], "x86_64-manylinux_2_28", "3.11", "linux-x86_64", runner=fake) == ""
    assert fake.calls == []


def test_compile_passes_platform_version_and_hashes() -> None:
    fake = FakeUv()
    text = compile_lock(
        ["demo"], "aarch64-apple-darwin", "3.12", "macos-arm64", uv="uv", runner=fake
    )
    assert text.startswith("demo==1.0")
    (argv,) = fake.calls
    for flag in ("--generate-hashes", "--only-binary", ":all:"):
        assert flag in argv
    assert argv[argv.index("--python-platform") + 1] == "aarch64-apple-darwin"
    assert argv[argv.index("--python-version") + 1] == "3.12"


def test_compile_failure_is_a_build_error() -> None:
    fake = FakeUv(fail_platform="x86_64-manylinux_2_28", stderr=SDIST)
    with pytest.raises(BuildError, match=r"'docopt' has no binary wheel"):
        compile_lock(
            ["docopt"], "x86_64-manylinux_2_28", "3.11", "linux-x86_64", uv="uv", runner=fake
        )


def test_install_requires_hashes_and_drops_scripts(tmp_path) -> None:
    fake = FakeUv()
    dest = tmp_path / "vendor"
    install_vendor("demo==1.0\n", dest, "x86_64-manylinux_2_28", "3.11", "t", uv="uv", runner=fake)
    (argv,) = fake.calls
    assert {"--require-hashes", "--no-deps", "--only-binary"} <= set(argv)
    assert sorted(p.name for p in dest.iterdir()) == ["demo"]


def test_install_of_an_empty_lock_creates_an_empty_dir(tmp_path) -> None:
    install_vendor("", tmp_path / "v", "x86_64-manylinux_2_28", "3.11", "t", runner=FakeUv())
    assert list((tmp_path / "v").iterdir()) == []


def test_uv_override_that_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOACA_UV", "/nonexistent/uv")
    with pytest.raises(BuildError, match=r"uv not found"):
        find_uv()
    monkeypatch.delenv("CLOACA_UV")
    assert find_uv().endswith("uv")


def test_messages_wrapped_to_the_terminal_width_are_still_understood() -> None:
    wrapped = (
        "  cause: Because cloaca-test-no-such-package-3f9a was not found in the package\n"
        "         registry and you require cloaca-test-no-such-package-3f9a, we can\n"
    )
    assert describe_uv_failure(wrapped, "t").startswith(
        "dependency 'cloaca-test-no-such-package-3f9a' cannot be resolved"
    )
    assert "'docopt' has no binary" in describe_uv_failure(
        "Wheels are\n  required for `docopt`", "t"
    )
