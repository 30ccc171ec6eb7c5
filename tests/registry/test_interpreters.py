"""The Python a package runs on: the loader refuses a vendored set that runs on none of its
interpreters (naming the package, the built-for and the running Python and the fix), refuses
wheels for another platform, and routes a package to a second interpreter that fits. The choice
itself is tested with synthetic tag sets (no second interpreter needed); the routing with a
real second CPython when the machine has one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.tags import compatible_tags, cpython_tags

from cloaca.errors import IncompatiblePythonError, ManifestError, PackageError
from cloaca.packaging.manifest import parse_manifest
from cloaca.packaging.targets import host_target
from cloaca.registry.interpreters import (
    Interpreter,
    choose_interpreter,
    host_interpreter,
    parse_python_option,
    probe_interpreter,
)
from cloaca.registry.loader import PackageLoaderFactory, PythonPackage
from cloaca.registry.worker_process import worker_command
from cloaca.registry.workers import WorkerPools
from tests.pythons import HOST, other_python_or_skip

from .conftest import manifest_for, python_archive, python_files

LINUX = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "linux_x86_64"]
WHERE = """
import sys

def where(context):
    context["python"] = f"{sys.version_info.major}.{sys.version_info.minor}"
    return context
"""


def synthetic(version: str) -> Interpreter:
    """An interpreter's tag set for CPython ``version`` on Linux x86_64 (nothing is run)."""
    major, minor = (int(p) for p in version.split("."))
    tags = frozenset(
        [
            *cpython_tags((major, minor), platforms=LINUX),
            *compatible_tags((major, minor), f"cp{major}{minor}", platforms=LINUX),
        ]
    )
    return Interpreter(f"/opt/python{version}/bin/python3", f"{version}.4", tags)


def vendored(name: str, tag: str) -> dict[str, str]:
    """``vendor/`` files of one installed wheel with the given ``Tag:`` line."""
    return {
        f"{name}/__init__.py": "VALUE = 1\n",
        f"{name}-1.0.dist-info/WHEEL": f"Wheel-Version: 1.0\nTag: {tag}\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
    }


def manifest(python_version: str | None, *tags: str, requires: str = ">=3.11") -> object:
    wheels = [{"name": f"w{i}", "version": "1.0", "tags": [t]} for i, t in enumerate(tags)]
    raw = manifest_for("demo", python_files({}), [{"id": "t", "function": "pkg.tasks:t"}])
    raw["python"] = {"requires_python": requires, "entry_module": "pkg.tasks", "wheels": wheels}
    if python_version:
        raw["python"]["python_version"] = python_version
    return parse_manifest(raw)


def choose(m: object, *interps: Interpreter) -> Interpreter:
    from cloaca.packaging.manifest import Manifest

    assert isinstance(m, Manifest)
    assert m.python is not None and m.python.wheels is not None
    return choose_interpreter(m, m.python.wheels, list(interps), "demo.cloaca", "linux-x86_64")


# ---------------------------------------------------------------- the choice (no processes)
def test_compiled_set_for_another_python_is_refused_with_the_fix() -> None:
    m = manifest("3.11", "cp311-cp311-manylinux_2_17_x86_64")
    with pytest.raises(IncompatiblePythonError) as info:
        choose(m, synthetic("3.12"))
    err = info.value
    assert (err.package, err.built_for, err.running) == ("demo", "3.11", "3.12")
    text = str(err)
    assert "package 'demo' was built for Python 3.11 but this host runs Python 3.12" in text
    assert "w0 1.0 (cp311-cp311-manylinux_2_17_x86_64) does not run on Python 3.12" in text
    assert "`cloaca build --target linux-x86_64 --python 3.12`" in text
    assert "`cloacina server start --python 3.11=/path/to/python3.11`" in text


def test_a_second_interpreter_that_fits_is_chosen() -> None:
    m = manifest("3.11", "cp311-cp311-manylinux_2_17_x86_64", "py3-none-any")
    assert choose(m, synthetic("3.12"), synthetic("3.11")).short == "3.11"


def test_pure_sets_run_anywhere_requires_python_allows() -> None:
    m = manifest("3.11", "py3-none-any", "cp38-abi3-manylinux_2_17_x86_64")
    assert choose(m, synthetic("3.12")).short == "3.12"  # the first (the host's) when it fits
    # both fit: the Python it was built for is preferred
    assert choose(m, synthetic("3.12"), synthetic("3.11")).short == "3.11"
    with pytest.raises(IncompatiblePythonError, match="requires Python <3.12"):
        choose(manifest("3.11", "py3-none-any", requires="<3.12"), synthetic("3.12"))


def test_older_manifests_infer_the_built_for_python_from_the_tags() -> None:
    m = manifest(None, "cp313-cp313-manylinux_2_17_x86_64")
    with pytest.raises(IncompatiblePythonError) as info:
        choose(m, synthetic("3.12"))
    assert info.value.built_for == "3.13 (from its wheel tags)"
    assert "server start --python" not in str(info.value)  # nothing recorded to suggest


def test_the_manifest_abi_must_match_its_python_version() -> None:
    raw = manifest_for("demo", python_files({}), [{"id": "t", "function": "pkg.tasks:t"}])
    raw["python"].update(python_version="3.12", abi="cp311")
    with pytest.raises(ManifestError, match="abi 'cp311' does not match python_version '3.12'"):
        parse_manifest(raw)


@pytest.mark.parametrize("bad", ["3.11", "=/usr/bin/python3", "python3.11=/x", "3.11="])
def test_python_option_form(bad: str) -> None:
    assert parse_python_option("3.11=/usr/bin/python3.11") == ("3.11", "/usr/bin/python3.11")
    with pytest.raises(ValueError, match="expected X.Y=/path/to/python"):
        parse_python_option(bad)


# ---------------------------------------------------------------- the loader
def test_load_refuses_a_compiled_set_for_another_python(staging: Path) -> None:
    other = "3.12" if HOST != "3.12" else "3.13"
    tag = f"cp{other.replace('.', '')}-cp{other.replace('.', '')}-manylinux_2_17_x86_64"
    data = python_archive(
        "compiled-pkg",
        {"pkg/__init__.py": "", "pkg/tasks.py": WHERE},
        [{"id": "where", "function": "pkg.tasks:where"}],
        vendor=vendored("fastcore", tag),
        python={"python_version": other},
    )
    if host_target() != "linux-x86_64":
        pytest.skip("the fixture's wheel tag is for linux-x86_64")
    with pytest.raises(IncompatiblePythonError) as info:
        PackageLoaderFactory(staging).load(data, source="compiled-pkg.cloaca")
    assert (info.value.built_for, info.value.running) == (other, HOST)
    assert f"--python {HOST}`" in str(info.value)
    assert sorted(p.name for p in staging.iterdir()) == []  # nothing staged


def test_load_refuses_a_macos_wheel_in_a_linux_archive(staging: Path) -> None:
    data = python_archive(
        "mixed-pkg",
        {"pkg/__init__.py": "", "pkg/tasks.py": WHERE},
        [{"id": "where", "function": "pkg.tasks:where"}],
        vendor=vendored("fastcore", "cp311-cp311-macosx_11_0_arm64"),
    )
    with pytest.raises(PackageError, match="vendors wheel\\(s\\) for another platform") as info:
        PackageLoaderFactory(staging).load(data)
    assert "fastcore 1.0 (built for macosx_11_0_arm64)" in str(info.value)
    assert list(staging.iterdir()) == []


def test_recorded_wheels_must_match_vendor(staging: Path) -> None:
    lie = [{"name": "fastcore", "version": "1.0", "tags": ["py3-none-any"]}]
    data = python_archive(
        "lying-pkg",
        {"pkg/__init__.py": "", "pkg/tasks.py": WHERE},
        [{"id": "where", "function": "pkg.tasks:where"}],
        vendor=vendored("fastcore", f"cp{HOST.replace('.', '')}-abi3-manylinux_2_17_x86_64"),
        python={"wheels": lie},
    )
    with pytest.raises(ManifestError) as info:
        PackageLoaderFactory(staging).load(data)
    assert info.value.field == "python.wheels"


def test_pure_set_built_for_another_python_loads_on_the_host(staging: Path) -> None:
    data = python_archive(
        "pure-pkg",
        {"pkg/__init__.py": "", "pkg/tasks.py": WHERE},
        [{"id": "where", "function": "pkg.tasks:where"}],
        vendor=vendored("helper", "py3-none-any"),
        python={"python_version": "3.13" if HOST != "3.13" else "3.12"},
    )
    loaded = PackageLoaderFactory(staging).load(data)
    assert isinstance(loaded, PythonPackage)
    assert loaded.interpreter == host_interpreter()
    assert worker_command(loaded)[0] == sys.executable
    # loading the same bytes again (the staging index) makes the same choice
    again = PackageLoaderFactory(staging).load(data)
    assert isinstance(again, PythonPackage) and again.interpreter == host_interpreter()


# ---------------------------------------------------------------- a real second interpreter
def test_probe_reads_a_real_interpreter() -> None:
    here = probe_interpreter(sys.executable, expected=HOST)
    assert here.version == host_interpreter().version
    assert here.tags == host_interpreter().tags
    with pytest.raises(PackageError, match=f"that interpreter is Python {HOST}, not 3.99"):
        probe_interpreter(sys.executable, expected="3.99")
    with pytest.raises(PackageError, match="cannot run Python interpreter"):
        probe_interpreter("/nonexistent/python3")


def test_probe_refuses_a_python_too_old_for_a_worker() -> None:
    old = next(iter(sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3"))), None)
    if old is None:
        pytest.skip("no CPython 3.10 under ~/.pyenv to show the refusal with")
    with pytest.raises(PackageError, match="cannot start a package worker .*CPython >= 3.11"):
        probe_interpreter(old)


async def test_a_package_built_for_the_second_python_runs_on_it(
    staging: Path, pools: WorkerPools
) -> None:
    other = other_python_or_skip()
    if host_target() != "linux-x86_64":
        pytest.skip("the fixture's wheel tag is for linux-x86_64")
    abi = "cp" + other.short.replace(".", "")
    data = python_archive(
        "routed-pkg",
        {"pkg/__init__.py": "", "pkg/tasks.py": WHERE},
        [{"id": "where", "function": "pkg.tasks:where"}],
        vendor=vendored("fastcore", f"{abi}-{abi}-manylinux_2_17_x86_64"),
        python={"python_version": other.short},
    )
    with pytest.raises(IncompatiblePythonError):  # the host alone cannot run it
        PackageLoaderFactory(staging).load(data)
    factory = PackageLoaderFactory(staging, interpreters=[host_interpreter(), other])
    loaded = factory.load(data)
    assert isinstance(loaded, PythonPackage)
    assert loaded.interpreter == other
    out = await pools.pool_for(loaded).run("where", "pkg.tasks:where", {})
    assert out["python"] == other.short
