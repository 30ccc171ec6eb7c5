"""``cloaca build`` of the reference example for two targets: cold, warm and cached.

* **cold** - empty cloaca build cache *and* an empty uv cache: every wheel is downloaded.
* **warm** - empty cloaca build cache, uv's cache already filled: lock + vendor + archive.
* **cached** - nothing changed since the last build: the archive comes from the build cache.
* **uv alone** - ``uv pip compile --generate-hashes`` + ``uv pip install --target`` for the same
  targets, run one after the other: the floor a warm build is compared with.

Figures are wall-clock seconds, best of a few runs (cold: one run). Needs network access to the
package index. Run with ``python -m benchmarks.bench_build``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cloaca.packaging import build_package
from cloaca.packaging.lock import compile_lock, find_uv
from cloaca.packaging.targets import python_platform
from cloaca.packaging.vendor import install_vendor

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "features" / "python-workflow"
TARGETS = ["linux-x86_64", "macos-arm64"]
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def _time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _build(targets: list[str], cache: Path | None, out: Path) -> None:
    build_package(EXAMPLE, out, targets, cache_dir=cache, use_cache=cache is not None)


def _uv_alone(targets: list[str], scratch: Path) -> None:
    deps = ["httpx>=0.25", "pydantic>=2"]
    for target in targets:
        platform = python_platform(target)
        lock = compile_lock(deps, platform, PY, target)
        dest = Path(tempfile.mkdtemp(dir=scratch))
        install_vendor(lock, dest / "vendor", platform, PY, target)


def _cli_cached(targets: list[str], cache: Path, out: Path) -> None:
    argv = [sys.executable, "-m", "cloaca.cli.build", "build", str(EXAMPLE), "-o", str(out)]
    for target in targets:
        argv += ["--target", target]
    env = {**os.environ, "CLOACA_CACHE_DIR": str(cache)}
    subprocess.run(argv, check=True, capture_output=True, env=env)


def measure(targets: list[str], repeat: int = 3) -> dict[str, float]:
    """Time the build of the example for ``targets``; return seconds per scenario."""
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cloaca-bench-") as tmp:
        root = Path(tmp)
        old_uv_cache = os.environ.get("UV_CACHE_DIR")
        os.environ["UV_CACHE_DIR"] = str(root / "uv-cold")
        try:
            results["cold (no caches)"] = _time(
                lambda: _build(targets, root / "c-cold", root / "o-cold"), 1
            )
        finally:
            if old_uv_cache is None:
                os.environ.pop("UV_CACHE_DIR", None)
            else:
                os.environ["UV_CACHE_DIR"] = old_uv_cache
        find_uv()
        _uv_alone(targets, root)  # fill uv's own cache for the warm figures
        results["uv alone (compile + install)"] = _time(lambda: _uv_alone(targets, root), repeat)
        results["warm (uv cache only)"] = _time(lambda: _build(targets, None, root / "o1"), repeat)
        cache = root / "cache"
        _build(targets, cache, root / "o2")
        results["cached rebuild (library)"] = _time(
            lambda: _build(targets, cache, root / "o2"), repeat
        )
        results["cached rebuild (CLI process)"] = _time(
            lambda: _cli_cached(targets, cache, root / "o3"), repeat
        )
    return results


def main() -> None:
    """Print a table of the build figures for one target and for two targets."""
    rows = {"1 target": measure(TARGETS[:1]), "2 targets": measure(TARGETS)}
    names = list(next(iter(rows.values())))
    width = max(len(n) for n in names)
    print(f"cloaca build of {EXAMPLE.name} (httpx + pydantic), Python {PY}, seconds")
    print(f"{'scenario':<{width}}  " + "  ".join(f"{c:>9}" for c in rows))
    for name in names:
        print(f"{name:<{width}}  " + "  ".join(f"{rows[c][name]:>9.3f}" for c in rows))


if __name__ == "__main__":
    main()
