"""Loading ``.cloaca`` packages and running their tasks in worker processes.

- :mod:`.loader` — ``PackageLoaderFactory``, ``PythonPackage`` / ``RustPackage``, staging;
- :mod:`.extract` — safe extraction (limits, links, devices, the ``data`` filter);
- :mod:`.verify` — manifest, required members, fingerprint, target;
- :mod:`.tasks` — ``register_package_tasks``: manifest tasks as proxy ``TaskSpec`` objects;
- :mod:`.workers` — host side of the worker pools; :mod:`.worker_main` — the worker child;
- :mod:`.rust` — the ctypes bridge to a Rust package's ``cloacina_execute_task``.

Names are imported lazily (the loader pulls in pydantic) so ``import cloaca`` stays fast.
"""

from __future__ import annotations

from cloaca._lazy import lazy_getattr

_LAZY = {
    "ArchiveLimits": "cloaca.registry.extract",
    "LoadedPackage": "cloaca.registry.loader",
    "PackageLoaderFactory": "cloaca.registry.loader",
    "PythonPackage": "cloaca.registry.loader",
    "RustPackage": "cloaca.registry.loader",
    "register_package_tasks": "cloaca.registry.tasks",
    "WorkerPool": "cloaca.registry.workers",
    "WorkerPools": "cloaca.registry.workers",
    "default_pools": "cloaca.registry.workers",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = sorted(_LAZY)
