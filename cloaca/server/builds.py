"""Building a package's workflow on the server, cross-package dependencies included.

A task may depend on a task of another package of the same tenant (``"other-pkg::task-id"``).
The workflow a package registers is then made of its own tasks plus, transitively, the tasks of
the referenced packages they need (their active versions) — each task still runs in its own
package's workers. Packages may arrive in any order: a package whose references cannot be
resolved yet is stored with a failed build (``build_error`` names the package and the task),
and is built again whenever a package of its tenant is installed or removed.

Problems inside the package itself (a cycle, a dependency on an unknown task of its own) are
found at upload by :func:`check_alone` and reject the upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from cloaca.errors import CloacaError
from cloaca.registry.tasks import register_package_tasks
from cloaca.task_registry import TaskRegistry
from cloaca.workflow import Workflow, WorkflowBuilder

if TYPE_CHECKING:
    from cloaca.registry.loader import LoadedPackage
    from cloaca.registry.workers import WorkerPools


def foreign_dependencies(loaded: LoadedPackage) -> list[tuple[str, str, str]]:
    """``(task id, package, task)`` for each dependency on another package's task."""
    out = []
    for entry in loaded.manifest.tasks:
        for dep in entry.dependencies:
            package, sep, task_id = dep.partition("::")
            if sep and package != loaded.name:
                out.append((entry.id, package, task_id))
    return out


def check_alone(loaded: LoadedPackage, pools: WorkerPools) -> None:
    """Build ``loaded``'s own tasks with its cross-package dependencies left out.

    Raises
    ------
    CloacaError
        The package is broken by itself (a cycle, an unknown local dependency, ...).
    """
    registry = TaskRegistry()
    register_package_tasks(registry, loaded, pools=pools)
    own = loaded.name + "::"
    for key, spec in registry.items():
        local = tuple(d for d in spec.dependencies if "::" not in d or d.startswith(own))
        if local != spec.dependencies:
            registry.add(replace(spec, dependencies=local), namespace=registry.namespace_of(key))
    WorkflowBuilder(loaded.name).with_registry(registry).build()


def build_workflow(
    name: str, packages: Mapping[str, LoadedPackage], pools: WorkerPools, tenant: str
) -> tuple[Workflow | None, str | None]:
    """Build the workflow of package ``name`` from ``packages`` (the tenant's active ones).

    Parameters
    ----------
    name:
        The package (and workflow) name.
    packages:
        Every active package of the tenant by name, ``name`` included.
    pools:
        Worker pools the tasks run in.
    tenant:
        The tenant (for messages).

    Returns
    -------
    (workflow, None) when it builds, else (None, why) — the error names the missing package
    and the task that needs it.
    """
    closure = [name]
    missing: list[str] = []
    for pkg in closure:
        for task_id, other, other_task in foreign_dependencies(packages[pkg]):
            if other in packages:
                if other not in closure:
                    closure.append(other)
            else:
                missing.append(
                    f"task {task_id!r} of package {pkg!r} depends on '{other}::{other_task}', "
                    f"but package {other!r} is not installed in tenant {tenant!r}"
                )
    if missing:
        why = "; ".join(missing)
        return None, f"{why}. Upload the missing package: this workflow is built once it is in."
    registry = TaskRegistry()
    for pkg in closure:
        register_package_tasks(registry, packages[pkg], pools=pools)
    builder = WorkflowBuilder(name).with_registry(registry)
    description = packages[name].manifest.package.description
    if description:
        builder.description(description)
    try:
        workflow = builder.build()
    except CloacaError as exc:
        return None, str(exc)
    return _needed_only(workflow, name), None


def _needed_only(workflow: Workflow, name: str) -> Workflow:
    """``workflow`` without the referenced packages' tasks its own tasks do not need."""
    own = {k for k, ns in workflow.namespaces.items() if ns == name}
    needed = set(own)
    for key in own:
        needed.update(workflow.dag.ancestors(key))
    if len(needed) == len(workflow.tasks):
        return workflow
    keep = [k for k in workflow.tasks if k in needed]
    return Workflow(
        workflow.name,
        {k: workflow.tasks[k] for k in keep},
        {k: workflow.namespaces[k] for k in keep},
        workflow.description,
        workflow.tags,
    )
