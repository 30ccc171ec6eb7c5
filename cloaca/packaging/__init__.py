"""Package format and builder: manifest model, targets, discovery, lock/vendor, archives.

``build_package`` is the library form of ``cloaca build``; ``plan_build`` checks a project
without building it.
"""

from cloaca.packaging.builder import BuildPlan, BuiltPackage, build_package, plan_build
from cloaca.packaging.targets import TARGETS

__all__ = ["TARGETS", "BuildPlan", "BuiltPackage", "build_package", "plan_build"]
