"""Workflows: `WorkflowBuilder` (context manager and fluent), the built `Workflow`, and the
process-wide workflow registry (lookup by name, constructors, content versions).
"""

from __future__ import annotations

import difflib
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cloaca import params as _params
from cloaca import secrets as _secrets
from cloaca.dag import Dag, build_dag
from cloaca.errors import (
    DuplicateTaskError,
    EmptyWorkflowError,
    TaskNotFoundError,
    TaskSelectionError,
    WorkflowNotFoundError,
    WorkflowValidationError,
)
from cloaca.namespace import DEFAULT_PACKAGE, DEFAULT_TENANT, TaskNamespace, WorkflowContext
from cloaca.task import TaskSpec, add_task_listener, get_spec, remove_task_listener
from cloaca.task_registry import GLOBAL_REGISTRY, TaskRegistry

if TYPE_CHECKING:
    from cloaca.context import Context
    from cloaca.execution.events import EventCallback
    from cloaca.execution.result import ExecutionResult


def _resolve_dep(dep: str, namespace: str | None, keys: set[str]) -> str:
    if "::" not in dep and namespace and f"{namespace}::{dep}" in keys:
        return f"{namespace}::{dep}"
    return dep


class Workflow:
    """A validated, immutable set of tasks and their DAG.

    ``tasks`` maps node keys (a task id, or ``package::id`` for a loaded package's task) to
    specs. ``version`` is a content hash of the tasks' ids, dependencies and code.
    ``declared_params`` and ``declared_secrets`` are what its tasks declare with
    ``@workflow_params`` / ``@workflow_secrets``.
    """

    def __init__(
        self,
        name: str,
        tasks: Mapping[str, TaskSpec],
        namespaces: Mapping[str, str | None] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        selection: set[str] | None = None,
    ) -> None:
        self.name = name
        self.tasks: dict[str, TaskSpec] = dict(tasks)
        self.namespaces = dict(namespaces or {})
        self.description = description
        self.tags = dict(tags or {})
        keys = set(self.tasks)
        deps = {
            key: tuple(_resolve_dep(d, self.namespaces.get(key), keys) for d in spec.dependencies)
            for key, spec in self.tasks.items()
        }
        self.dag: Dag = build_dag(deps, workflow=name)
        self.selection = selection
        digest = hashlib.sha256()
        for key in self.dag.order:
            spec = self.tasks[key]
            digest.update(f"{key}|{','.join(self.dag.deps[key])}|{spec.code_hash}\n".encode())
        self.version = digest.hexdigest()[:12]
        functions = [spec.fn for spec in self.tasks.values()]
        self.declared_params: dict[str, _params.ParamDecl] = _params.collect(name, functions)
        self.declared_secrets: tuple[str, ...] = _secrets.collect(functions)
        clash = sorted(set(self.declared_params) & set(self.declared_secrets))
        if clash:
            raise WorkflowValidationError(
                f"{clash} declared both as param and as secret; a name is one or the other",
                workflow=name,
            )

    def check_inputs(self, initial: dict[str, Any]) -> dict[str, Any]:
        """Check an initial context against ``declared_params``; return it with defaults added
        (raises :class:`~cloaca.errors.WorkflowInputError`)."""
        return _params.apply(self.name, self.declared_params, initial)

    # ------------------------------------------------------------------ upstream's inspection
    def _selected(self, nodes: Sequence[str]) -> list[str]:
        if self.selection is None:
            return list(nodes)
        return [n for n in nodes if n in self.selection]

    def topological_sort(self) -> list[str]:
        """Task names in a valid execution order (the scheduler's order)."""
        return self._selected(self.dag.order)

    def get_execution_levels(self) -> list[list[str]]:
        """Tasks grouped by level: each level depends only on earlier ones, so its tasks may
        run in parallel."""
        levels = [self._selected(level) for level in self.dag.levels]
        return [level for level in levels if level]

    def get_roots(self) -> list[str]:
        """Tasks with no dependencies."""
        return self._selected(self.dag.roots())

    def get_leaves(self) -> list[str]:
        """Tasks nothing depends on."""
        return self._selected(self.dag.leaves())

    def validate(self) -> None:
        """Check the structure again with :func:`cloaca.dag.build_dag` (a workflow is already
        validated when built); raises :class:`~cloaca.errors.WorkflowValidationError`, a
        ``ValueError``, when it is invalid."""
        if not self.tasks:
            raise EmptyWorkflowError(workflow=self.name)
        build_dag(self.dag.deps, workflow=self.name)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, tasks={list(self.dag.order)!r}, version={self.version!r})"

    @property
    def task_ids(self) -> list[str]:
        """Node keys in topological order."""
        return list(self.dag.order)

    def subset(
        self,
        start_from: str | None = None,
        only: Sequence[str] | None = None,
        until: str | None = None,
    ) -> Workflow:
        """Return this workflow restricted to a sub-DAG (see :meth:`cloaca.dag.Dag.select`).

        Task names may be bare ids when they are unambiguous across packages.
        """

        def res(name: str) -> str:
            if name in self.tasks or "::" in name:
                return name
            hits = [k for k in self.tasks if k.endswith("::" + name)]
            return hits[0] if len(hits) == 1 else name

        selected = self.dag.select(
            start_from=res(start_from) if start_from else None,
            only=[res(n) for n in only] if only else None,
            until=res(until) if until else None,
            workflow=self.name,
        )
        if self.selection is not None:
            selected &= self.selection
        clone = object.__new__(Workflow)
        clone.__dict__.update(self.__dict__)
        clone.selection = selected
        return clone

    def run(
        self, context: Context | Mapping[str, Any] | None = None, **options: Any
    ) -> ExecutionResult:
        """Run in-process and block until done; works inside a running event loop (Jupyter).

        Options are those of :func:`cloaca.execution.scheduler.execute_workflow`.
        """
        from cloaca.execution.blocking import run_blocking

        return run_blocking(self, context, **options)

    async def arun(
        self,
        context: Context | Mapping[str, Any] | None = None,
        *,
        on_event: EventCallback | None = None,
        **options: Any,
    ) -> ExecutionResult:
        """Run in-process on the current event loop and return the result object."""
        from cloaca.execution.scheduler import execute_workflow

        return await execute_workflow(self, context, on_event=on_event, **options)

    async def execute(self, context: Context | Mapping[str, Any] | None = None) -> Context:
        """Cloacina's fluent form: run, return the final context, or raise the first task error."""
        result = await self.arun(context)
        result.raise_for_status()
        return result.final_context


class WorkflowBuilder:
    """Collect tasks into a workflow.

    As a context manager, every ``@task`` declared inside the block joins the workflow, which
    is validated and registered under ``name`` on exit. Fluently,
    ``WorkflowBuilder("w").add_task(a).add_task(b).build()`` or
    ``WorkflowBuilder().with_registry(reg).start_from_task("x").build()``.

    ``tenant``, ``package`` and ``workflow`` are upstream's namespace of the builder's tasks
    (defaults ``"public"``, ``"embedded"`` and ``name``), kept as :attr:`context`; tasks are
    still looked up by id.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        tenant: str | None = None,
        package: str | None = None,
        workflow: str | None = None,
    ) -> None:
        self.name = name or "workflow"
        self.context = WorkflowContext(
            tenant or DEFAULT_TENANT, package or DEFAULT_PACKAGE, workflow or self.name
        )
        self._description: str | None = None
        self._tags: dict[str, str] = {}
        self._specs: list[tuple[TaskSpec, str | None, str]] = []  # spec, namespace, key
        self._start_from: str | None = None
        self._only: list[str] | None = None
        self._until: str | None = None
        self._registry: TaskRegistry | None = None

    # ------------------------------------------------------------------ fluent configuration
    def description(self, text: str) -> WorkflowBuilder:
        """Set the workflow's description."""
        self._description = text
        return self

    def tag(self, key: str, value: str) -> WorkflowBuilder:
        """Attach a string tag."""
        self._tags[key] = value
        return self

    def add_task(self, task: TaskSpec | Callable[..., Any] | str) -> WorkflowBuilder:
        """Add a ``@task`` function, a spec, or the id of a task in the global registry.

        Raises :class:`~cloaca.errors.TaskNotFoundError` (a ``ValueError``; upstream's
        "not found in registry") for an id or function no ``@task`` declared.
        """
        spec: TaskSpec | None
        if isinstance(task, str):
            try:
                spec = GLOBAL_REGISTRY.get(task)
            except TaskSelectionError as exc:
                if exc.message:  # ambiguous among packages: that error says which to pick
                    raise
                spec = None
        else:
            spec = get_spec(task)
        if spec is None:
            name = task if isinstance(task, str) else getattr(task, "__name__", repr(task))
            raise TaskNotFoundError(
                workflow=self.name,
                task_id=name,
                suggestions=difflib.get_close_matches(name, GLOBAL_REGISTRY.keys(), n=3),
            )
        self._specs.append((spec, None, spec.id))
        return self

    def namespace_of(self, task_id: str) -> TaskNamespace:
        """Upstream's namespace of task ``task_id`` in this builder."""
        return self.context.task_namespace(task_id)

    def with_registry(self, registry: TaskRegistry) -> WorkflowBuilder:
        """Use every task of ``registry`` (e.g. the tasks of loaded packages)."""
        self._registry = registry
        return self

    def start_from_task(self, task_id: str) -> WorkflowBuilder:
        """Run only ``task_id`` and what depends on it."""
        self._start_from = task_id
        return self

    def only_tasks(self, task_ids: Sequence[str]) -> WorkflowBuilder:
        """Run exactly these tasks (their unselected dependencies are assumed done)."""
        self._only = list(task_ids)
        return self

    def until_task(self, task_id: str) -> WorkflowBuilder:
        """Run ``task_id`` and what it depends on."""
        self._until = task_id
        return self

    # ------------------------------------------------------------------ context manager
    def _collect(self, spec: TaskSpec) -> None:
        self._specs.append((spec, None, spec.id))

    def __enter__(self) -> WorkflowBuilder:
        add_task_listener(self._collect)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        remove_task_listener(self._collect)
        if exc_type is None:
            register_workflow(self.build())

    # ------------------------------------------------------------------ build
    def build(self) -> Workflow:
        """Validate and return the :class:`Workflow` (raises :class:`WorkflowValidationError`)."""
        tasks: dict[str, TaskSpec] = {}
        namespaces: dict[str, str | None] = {}
        entries = list(self._specs)
        if self._registry is not None:
            entries += [(s, self._registry.namespace_of(k), k) for k, s in self._registry.items()]
        for spec, namespace, key in entries:
            if key in tasks and tasks[key] is not spec:
                raise DuplicateTaskError(
                    workflow=self.name, task_id=key, message="declared twice in this workflow"
                )
            tasks[key] = spec
            namespaces[key] = namespace
        if not tasks:
            raise EmptyWorkflowError(workflow=self.name)
        workflow = Workflow(self.name, tasks, namespaces, self._description, self._tags)
        if self._start_from or self._only or self._until:
            workflow = workflow.subset(self._start_from, self._only, self._until)
        return workflow


# ---------------------------------------------------------------------------- registry
_workflows: dict[str, Workflow] = {}
_constructors: dict[str, Callable[[], Workflow]] = {}
_wf_lock = threading.Lock()


def register_workflow(workflow: Workflow) -> Workflow:
    """Register ``workflow`` under its name, replacing an earlier one of that name."""
    with _wf_lock:
        _workflows[workflow.name] = workflow
    return workflow


def register_workflow_constructor(name: str, constructor: Callable[[], Workflow]) -> None:
    """Register a zero-argument function returning a built workflow; it is called on lookup."""
    with _wf_lock:
        _constructors[name] = constructor
        _workflows.pop(name, None)


def get_workflow(name: str) -> Workflow:
    """Return the workflow registered as ``name`` (raises :class:`WorkflowNotFoundError`)."""
    with _wf_lock:
        wf = _workflows.get(name)
        ctor = _constructors.get(name)
    if wf is not None:
        return wf
    if ctor is not None:
        built = ctor()
        if built.name != name:
            built.name = name
        return built
    raise WorkflowNotFoundError(
        workflow=name, suggestions=difflib.get_close_matches(name, list_workflows(), n=3)
    )


def list_workflows() -> list[str]:
    """Names of every registered workflow and constructor, sorted."""
    with _wf_lock:
        return sorted(set(_workflows) | set(_constructors))


def unregister_workflow(name: str) -> None:
    """Forget ``name`` (no error when unknown)."""
    with _wf_lock:
        _workflows.pop(name, None)
        _constructors.pop(name, None)


def _register_globally(spec: TaskSpec) -> None:
    GLOBAL_REGISTRY.add(spec)


add_task_listener(_register_globally)
