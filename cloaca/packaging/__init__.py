"""Package format and builder: manifest model, targets, discovery, lock/vendor, archives.

``build_package`` is the library form of ``cloaca build``; ``plan_build`` checks a project
without building it. They are imported on first use, so the loader's ``import
cloaca.packaging.manifest`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloaca._lazy import lazy_getattr

if TYPE_CHECKING:
    from cloaca.packaging.builder import BuildPlan, BuiltPackage, build_package, plan_build
    from cloaca.packaging.targets import TARGETS

_LAZY = {
    "BuildPlan": "cloaca.packaging.builder",
    "BuiltPackage": "cloaca.packaging.builder",
    "build_package": "cloaca.packaging.builder",
    "plan_build": "cloaca.packaging.builder",
    "TARGETS": "cloaca.packaging.targets",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = ["TARGETS", "BuildPlan", "BuiltPackage", "build_package", "plan_build"]
