"""Task namespaces: upstream's ``TaskNamespace`` and ``WorkflowContext`` value objects.

Upstream registers every task under ``tenant::package::workflow::task``. Our registry keys a
task by its id (``package::id`` for a loaded package's task), so these objects describe where
a task lives rather than how it is looked up: ``WorkflowBuilder(name, tenant=, package=,
workflow=)`` keeps one as its ``context`` and answers ``namespace_of(task_id)`` with them.

The accessors (``tenant_id``, ``package_name`` ...) are plain attributes that can also be
called, because upstream's bindings expose them as methods: ``ns.tenant_id`` and
``ns.tenant_id()`` both give the string.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TENANT = "public"
DEFAULT_PACKAGE = "embedded"


class _Field(str):
    """A string that returns itself when called (upstream's accessors are methods)."""

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


def _field(value: str) -> _Field:
    if not isinstance(value, str):
        raise TypeError(f"namespace parts must be strings, got {type(value).__name__}")
    return _Field(value)


@dataclass(frozen=True, init=False)
class TaskNamespace:
    """Where a task lives: ``tenant_id::package_name::workflow_id::task_id``.

    An empty ``task_id`` names the workflow itself (see :meth:`parent`).
    """

    tenant_id: _Field
    package_name: _Field
    workflow_id: _Field
    task_id: _Field

    def __init__(self, tenant_id: str, package_name: str, workflow_id: str, task_id: str) -> None:
        object.__setattr__(self, "tenant_id", _field(tenant_id))
        object.__setattr__(self, "package_name", _field(package_name))
        object.__setattr__(self, "workflow_id", _field(workflow_id))
        object.__setattr__(self, "task_id", _field(task_id))

    @staticmethod
    def from_string(namespace_str: str) -> TaskNamespace:
        """Parse ``"tenant::package::workflow::task"``.

        Raises
        ------
        ValueError
            When the string does not have exactly four ``::``-separated parts.
        """
        parts = namespace_str.split("::")
        if len(parts) != 4:
            raise ValueError(
                f"Invalid namespace format: {namespace_str!r} has {len(parts)} part(s); "
                "expected 'tenant::package::workflow::task'"
            )
        return TaskNamespace(*parts)

    def parent(self) -> TaskNamespace:
        """The workflow's namespace (this one with an empty task id)."""
        return TaskNamespace(self.tenant_id, self.package_name, self.workflow_id, "")

    def _same_workflow(self, other: TaskNamespace) -> bool:
        return (self.tenant_id, self.package_name, self.workflow_id) == (
            other.tenant_id,
            other.package_name,
            other.workflow_id,
        )

    def is_child_of(self, parent: TaskNamespace) -> bool:
        """True when this is a task of the workflow namespace ``parent``."""
        return self._same_workflow(parent) and bool(self.task_id) and not parent.task_id

    def is_sibling_of(self, other: TaskNamespace) -> bool:
        """True when both are different tasks of one workflow."""
        return (
            self._same_workflow(other)
            and bool(self.task_id)
            and bool(other.task_id)
            and self.task_id != other.task_id
        )

    def __str__(self) -> str:
        return f"{self.tenant_id}::{self.package_name}::{self.workflow_id}::{self.task_id}"

    def __repr__(self) -> str:
        parts = (self.tenant_id, self.package_name, self.workflow_id, self.task_id)
        return f"TaskNamespace({', '.join(repr(str(p)) for p in parts)})"


@dataclass(frozen=True, init=False)
class WorkflowContext:
    """The ``tenant::package::workflow`` in which a builder's tasks are declared."""

    tenant_id: _Field
    package_name: _Field
    workflow_id: _Field

    def __init__(self, tenant_id: str, package_name: str, workflow_id: str) -> None:
        object.__setattr__(self, "tenant_id", _field(tenant_id))
        object.__setattr__(self, "package_name", _field(package_name))
        object.__setattr__(self, "workflow_id", _field(workflow_id))

    def task_namespace(self, task_id: str) -> TaskNamespace:
        """The namespace of task ``task_id`` in this workflow."""
        return TaskNamespace(self.tenant_id, self.package_name, self.workflow_id, task_id)

    def resolve_dependency(self, task_name: str) -> TaskNamespace:
        """The namespace a dependency on ``task_name`` refers to (a task of this workflow)."""
        return self.task_namespace(task_name)

    def workflow_namespace(self) -> TaskNamespace:
        """The workflow's own namespace (empty task id)."""
        return self.task_namespace("")

    def contains_namespace(self, namespace: TaskNamespace) -> bool:
        """True when ``namespace`` belongs to this tenant, package and workflow."""
        return (namespace.tenant_id, namespace.package_name, namespace.workflow_id) == (
            self.tenant_id,
            self.package_name,
            self.workflow_id,
        )

    def __str__(self) -> str:
        return f"{self.tenant_id}::{self.package_name}::{self.workflow_id}"

    def __repr__(self) -> str:
        parts = (self.tenant_id, self.package_name, self.workflow_id)
        return f"WorkflowContext({', '.join(repr(str(p)) for p in parts)})"


__all__ = ["DEFAULT_PACKAGE", "DEFAULT_TENANT", "TaskNamespace", "WorkflowContext"]
