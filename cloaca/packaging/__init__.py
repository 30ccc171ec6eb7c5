"""Package format and builder: manifest model, targets, discovery, lock/vendor, archives.

``build_package`` is the library form of ``cloaca build``; ``plan_build`` checks a project
without building it; ``spec_to_entry``/``entry_to_spec`` are the one converter between a live
task spec and a manifest task entry. They are imported on first use, so the loader's ``import
cloaca.packaging.manifest`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloaca._lazy import lazy_getattr

if TYPE_CHECKING:
    from cloaca.packaging.builder import BuildPlan, BuiltPackage, build_package, plan_build
    from cloaca.packaging.spec_codec import entry_to_spec, spec_to_entry
    from cloaca.packaging.targets import TARGETS

_LAZY = {
    "BuildPlan": "cloaca.packaging.builder",
    "BuiltPackage": "cloaca.packaging.builder",
    "build_package": "cloaca.packaging.builder",
    "plan_build": "cloaca.packaging.builder",
    "TARGETS": "cloaca.packaging.targets",
    "entry_to_spec": "cloaca.packaging.spec_codec",
    "spec_to_entry": "cloaca.packaging.spec_codec",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = [
    "TARGETS",
    "BuildPlan",
    "BuiltPackage",
    "build_package",
    "entry_to_spec",
    "plan_build",
    "spec_to_entry",
]
