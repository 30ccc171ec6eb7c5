"""The one exception tree of the ``cloaca`` engine.

Every error the engine raises on purpose derives from :class:`CloacaError`. Structured facts
(``task_id``, ``key``, ``member``, ``field`` ...) are attributes, the message is built in
``__str__`` from them, and every error survives pickling (worker processes send them back).

::

    CloacaError
    ├── ContextError                 (key)          also a KeyError, as dict users expect
    │   └── ContextValueError        (key)          a value is not JSON-serialisable
    ├── TaskDefinitionError          (task_id)      bad @task arguments/signature (a ValueError)
    ├── WorkflowError                (workflow)
    │   ├── WorkflowValidationError  (workflow)     DAG problems found at build time
    │   │   ├── UnknownDependencyError (task_id, dependency, suggestions)
    │   │   ├── CycleError           (cycle)
    │   │   ├── DuplicateTaskError   (task_id)
    │   │   └── EmptyWorkflowError                  a workflow with no task
    │   ├── TaskNotFoundError        (task_id, suggestions)  add_task() of an unknown task id
    │   ├── WorkflowInputError       (param)        execute-time params fail the declaration
    │   ├── WorkflowNotFoundError    (workflow, suggestions)
    │   └── TaskSelectionError       (task_id, suggestions)  unknown task in start_from/only/until
    ├── TaskExecutionError           (task_id, error_type, message, traceback)
    │   └── TaskTimeoutError         (task_id, timeout_seconds)
    ├── AttemptVetoed                (task_id, attempt)  a before_attempt gate refused an attempt
    ├── PackageError                 (path)
    │   ├── ManifestError            (field)
    │   ├── UnsafeArchiveError       (member)
    │   ├── IncompatibleTargetError  (target, host)
    │   ├── IncompatiblePythonError  (package, built_for, running, fix)  vendored set vs interpreter
    │   └── BuildError               (path)
    │       └── TaskOptionError      (task_id, field)  a task option the manifest cannot carry
    ├── WorkerError                  (package)      a worker process died or misbehaved
    ├── StorageError                 (url)          the runner's database could not be used
    │   ├── StorageUnavailableError  (url)          a write could not be committed in time
    │   └── TenantAdminError         (schema, username)  DatabaseAdmin could not provision
    ├── SecretError                  (name)         no secret resolver, or it failed
    ├── UnsupportedFeatureError      (feature, issue)  an upstream name this engine only
    │                                               accepts (computation graphs, providers)
    ├── ExecutorError                (address)      a remote executor (Dask) is misconfigured
    │                                               or unreachable
    ├── ClientConfigError            (hint)         a client's server/key/profile settings
    │                                               cannot be used (``cloaca.remote``)
    └── ApiError                     (status, code, request_id)  a REST API error (server and
                                                    its clients: body ``{"error", "code"}``)

:class:`ErrorText` is not an exception: it is what an ``on_failure`` callback receives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _rebuild(cls: type[CloacaError], fields: dict[str, Any]) -> CloacaError:
    return cls(**fields)


class CloacaError(Exception):
    """Base of every error the engine raises on purpose.

    Subclasses list their structured fields in ``_fields``; those become attributes and drive
    pickling. ``__str__`` returns :meth:`describe`.
    """

    _fields: tuple[str, ...] = ("message",)  # subclasses extend this

    def __init__(self, message: str = "", **fields: Any) -> None:
        self.message = message
        for name in self._fields:
            if name != "message":
                setattr(self, name, fields.get(name))
        super().__init__(message)

    def describe(self) -> str:
        """Return the human-readable message (overridden by subclasses that build it)."""
        return self.message

    def __str__(self) -> str:
        return self.describe()

    def __reduce__(self) -> tuple[Any, ...]:
        fields = {name: getattr(self, name, None) for name in self._fields}
        return (_rebuild, (type(self), fields))


def _hint(suggestions: Sequence[str] | None) -> str:
    if not suggestions:
        return ""
    quoted = ", ".join(repr(s) for s in suggestions)
    return f" Did you mean {quoted}?"


# --------------------------------------------------------------------------- context
class ContextError(CloacaError, KeyError):
    """A context operation failed for ``key`` (e.g. ``insert`` of a key that exists)."""

    _fields: tuple[str, ...] = ("message", "key")
    key: str | None

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.describe()


class ContextValueError(CloacaError, TypeError):
    """A value stored under ``key`` is not JSON-serialisable."""

    _fields: tuple[str, ...] = ("message", "key", "value_type")
    key: str | None
    value_type: str | None

    def describe(self) -> str:
        if self.message:
            return self.message
        return (
            f"Context value for key {self.key!r} is not JSON-serialisable "
            f"(got {self.value_type}). Store str, int, float, bool, None, lists or dicts; "
            "convert other objects first (e.g. .isoformat() for datetimes, .tolist() for arrays)."
        )


# --------------------------------------------------------------------------- definitions
class TaskDefinitionError(CloacaError, ValueError):
    """A ``@task`` declaration is invalid (bad id, bad signature, conflicting retry options)."""

    _fields: tuple[str, ...] = ("message", "task_id")
    task_id: str | None

    def describe(self) -> str:
        if self.task_id:
            return f"task {self.task_id!r}: {self.message}"
        return self.message


class WorkflowError(CloacaError):
    """Something is wrong with a workflow as a whole."""

    _fields: tuple[str, ...] = ("message", "workflow")
    workflow: str | None

    def describe(self) -> str:
        if self.workflow:
            return f"workflow {self.workflow!r}: {self.message}"
        return self.message


class WorkflowValidationError(WorkflowError, ValueError):
    """The workflow's DAG is invalid; raised when it is built or registered."""


class UnknownDependencyError(WorkflowValidationError):
    """Task ``task_id`` depends on ``dependency``, which no task of the workflow has as id."""

    _fields: tuple[str, ...] = ("message", "workflow", "task_id", "dependency", "suggestions")
    task_id: str | None
    dependency: str | None
    suggestions: list[str] | None

    def describe(self) -> str:
        where = f"workflow {self.workflow!r}: " if self.workflow else ""
        if self.message:  # e.g. which package of a "package::task" dependency is missing
            return f"{where}task {self.task_id!r} depends on {self.dependency!r}: {self.message}"
        return (
            f"{where}task {self.task_id!r} depends on unknown task {self.dependency!r}."
            f"{_hint(self.suggestions)} Check the id in dependencies=[...] or define that task."
        )


class CycleError(WorkflowValidationError):
    """The dependencies form a cycle; ``cycle`` lists it with the first id repeated at the end."""

    _fields: tuple[str, ...] = ("message", "workflow", "cycle")
    cycle: list[str] | None

    def describe(self) -> str:
        where = f"workflow {self.workflow!r}: " if self.workflow else ""
        path = " -> ".join(self.cycle or [])
        return f"{where}dependency cycle: {path}. Remove one of these dependencies."


class DuplicateTaskError(WorkflowValidationError):
    """Two tasks share the id ``task_id``."""

    _fields: tuple[str, ...] = ("message", "workflow", "task_id")
    task_id: str | None

    def describe(self) -> str:
        where = f"workflow {self.workflow!r}: " if self.workflow else ""
        extra = f" ({self.message})" if self.message else ""
        return f"{where}duplicate task id {self.task_id!r}{extra}. Task ids must be unique."


class EmptyWorkflowError(WorkflowValidationError):
    """The workflow has no task (upstream's wording: "cannot be empty")."""

    def describe(self) -> str:
        where = f"workflow {self.workflow!r}" if self.workflow else "workflow"
        return (
            f"{where} cannot be empty: it has no tasks. Declare @task functions inside "
            "`with WorkflowBuilder(...)` or add them with builder.add_task(...)."
        )


class TaskNotFoundError(WorkflowError, ValueError):
    """``add_task`` named a task id no ``@task`` declared (upstream: "not found in registry")."""

    _fields: tuple[str, ...] = ("message", "workflow", "task_id", "suggestions")
    task_id: str | None
    suggestions: list[str] | None

    def describe(self) -> str:
        where = f"workflow {self.workflow!r}: " if self.workflow else ""
        return (
            f"{where}Task {self.task_id!r} not found in registry.{_hint(self.suggestions)} "
            "Make sure it was decorated with @task."
        )


class WorkflowInputError(WorkflowError, ValueError):
    """The execution context does not satisfy the workflow's ``@workflow_params``."""

    _fields: tuple[str, ...] = ("message", "workflow", "param")
    param: str | None

    def describe(self) -> str:
        where = f"workflow {self.workflow!r}: " if self.workflow else ""
        return f"{where}invalid execution context: {self.message}"


class WorkflowNotFoundError(WorkflowError, KeyError):
    """No workflow is registered under ``workflow``."""

    _fields: tuple[str, ...] = ("message", "workflow", "suggestions")
    suggestions: list[str] | None

    def describe(self) -> str:
        return (
            f"no workflow named {self.workflow!r} is registered.{_hint(self.suggestions)} "
            "Register it with WorkflowBuilder(name) or register_workflow_constructor()."
        )

    def __str__(self) -> str:
        return self.describe()


class TaskSelectionError(WorkflowError, ValueError):
    """A sub-DAG selection names a task that is not in the workflow."""

    _fields: tuple[str, ...] = ("message", "workflow", "task_id", "suggestions")
    task_id: str | None
    suggestions: list[str] | None

    def describe(self) -> str:
        where = f"workflow {self.workflow!r}: " if self.workflow else ""
        if self.message:
            return f"{where}{self.message}"
        return f"{where}unknown task {self.task_id!r} in the selection.{_hint(self.suggestions)}"


# --------------------------------------------------------------------------- execution
WORKER_LOST = "WorkerLost"
"""``error_type`` of an attempt lost with its worker process, killed from outside (SIGKILL,
SIGTERM, SIGINT, SIGHUP: an operator or the OOM killer). Such attempts are re-run under the
task's recovery budget, not its retry policy."""

INTERRUPTED = "Interrupted"
"""``error_type`` of a task whose attempts kept being interrupted by the death of the runner
running them until its recovery budget (``max_recovery_attempts``) was used up."""


class TaskExecutionError(CloacaError):
    """Task ``task_id`` raised ``error_type: message``; ``traceback`` is the formatted trace."""

    _fields: tuple[str, ...] = ("message", "task_id", "error_type", "traceback")
    task_id: str | None
    error_type: str | None
    traceback: str | None

    def describe(self) -> str:
        kind = f"{self.error_type}: " if self.error_type else ""
        return f"task {self.task_id!r} failed: {kind}{self.message}"


class TaskTimeoutError(TaskExecutionError):
    """Task ``task_id`` ran longer than ``timeout_seconds``."""

    _fields: tuple[str, ...] = ("message", "task_id", "error_type", "traceback", "timeout_seconds")
    timeout_seconds: float | None

    def describe(self) -> str:
        return (
            f"task {self.task_id!r} timed out after {self.timeout_seconds}s. "
            "Raise timeout_seconds on the task or make it faster."
        )


class ErrorText(str):
    """The failure an ``on_failure(task_id, error, context)`` callback receives.

    A ``str``, as in Cloacina (``"ValueError: bad input"``), that also carries the structured
    :class:`TaskExecutionError` (``.error``) and its ``task_id``, ``error_type``, ``message``
    and ``traceback``.
    """

    error: TaskExecutionError

    def __new__(cls, error: TaskExecutionError) -> ErrorText:
        kind = f"{error.error_type}: " if error.error_type else ""
        text = super().__new__(cls, f"{kind}{error.message}")
        text.error = error
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (ErrorText, (self.error,))

    @property
    def task_id(self) -> str | None:
        """The failed task."""
        return self.error.task_id

    @property
    def error_type(self) -> str | None:
        """The exception's type name (e.g. ``"KeyError"``, ``"TaskTimeoutError"``)."""
        return self.error.error_type

    @property
    def message(self) -> str:
        """The exception's message."""
        return self.error.message

    @property
    def traceback(self) -> str | None:
        """The formatted traceback, when known."""
        return self.error.traceback


class AttemptVetoed(CloacaError):
    """A ``before_attempt`` gate refused attempt ``attempt`` of ``task_id``.

    The attempt did not run and the whole run stops (``execute_workflow`` raises this); the
    durable runner's per-attempt claims raise it when another runner owns the execution.
    """

    _fields: tuple[str, ...] = ("message", "task_id", "attempt")
    task_id: str | None
    attempt: int | None

    def describe(self) -> str:
        return self.message or f"attempt {self.attempt} of task {self.task_id!r} was refused"


# --------------------------------------------------------------------------- packages
class PackageError(CloacaError):
    """A package archive or project could not be built, read or loaded."""

    _fields: tuple[str, ...] = ("message", "path")
    path: str | None

    def describe(self) -> str:
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


class ManifestError(PackageError):
    """``manifest.json`` is missing or invalid; ``field`` names the offending field."""

    _fields: tuple[str, ...] = ("message", "path", "field")
    field: str | None

    def describe(self) -> str:
        where = f"{self.path}: " if self.path else ""
        fld = f"manifest field {self.field!r}: " if self.field else "manifest: "
        return f"{where}{fld}{self.message}"


class UnsafeArchiveError(PackageError):
    """Archive member ``member`` is unsafe (escaping path, link, device, too large ...)."""

    _fields: tuple[str, ...] = ("message", "path", "member")
    member: str | None

    def describe(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}archive member {self.member!r} rejected: {self.message}"


class IncompatibleTargetError(PackageError):
    """The package was built for ``target`` but this host is ``host``."""

    _fields: tuple[str, ...] = ("message", "path", "target", "host")
    target: str | None
    host: str | None

    def describe(self) -> str:
        return (
            f"package built for {self.target} cannot run on this host ({self.host}). "
            f"Build it with `cloaca build --target {self.host}`."
        )


class IncompatiblePythonError(PackageError):
    """Package ``package``'s vendored set was built for Python ``built_for`` and cannot run on
    the interpreter(s) ``running``; ``fix`` is the command that makes it run (the message says
    which wheel or requirement is the cause)."""

    _fields: tuple[str, ...] = ("message", "path", "package", "built_for", "running", "fix")
    package: str | None
    built_for: str | None
    running: str | None
    fix: str | None

    def describe(self) -> str:
        where = f"{self.path}: " if self.path else ""
        text = (
            f"{where}package {self.package!r} was built for Python {self.built_for} but this "
            f"host runs Python {self.running}: {self.message}"
        )
        return f"{text}. Fix: {self.fix}" if self.fix else text


class BuildError(PackageError):
    """``cloaca build`` failed for the project at ``path``."""


class TaskOptionError(BuildError):
    """Option ``field`` of task ``task_id`` cannot be written into a manifest (a lambda, a
    closure, an object not importable by reference ...); the message says what to do instead."""

    _fields: tuple[str, ...] = ("message", "path", "task_id", "field")
    task_id: str | None
    field: str | None

    def describe(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}task {self.task_id!r}, option {self.field}: {self.message}"


class WorkerError(CloacaError):
    """A worker process for package ``package`` died or broke the protocol."""

    _fields: tuple[str, ...] = ("message", "package")
    package: str | None

    def describe(self) -> str:
        if self.package:
            return f"worker for package {self.package!r}: {self.message}"
        return self.message


class StorageError(CloacaError):
    """The runner's database at ``url`` could not be opened or used."""

    _fields: tuple[str, ...] = ("message", "url")
    url: str | None

    def describe(self) -> str:
        if self.url:
            return f"database {self.url}: {self.message}"
        return self.message


class StorageUnavailableError(StorageError):
    """A change (a new execution) could not be committed within its bound: the database was
    unreachable, out of space or kept refusing the write. Nothing of it is left behind; the
    server answers 503 and the caller may try again later."""


class TenantAdminError(StorageError, RuntimeError):
    """``DatabaseAdmin`` could not create or remove the tenant ``schema`` / ``username``."""

    _fields: tuple[str, ...] = ("message", "url", "schema", "username")
    schema: str | None
    username: str | None

    def describe(self) -> str:
        who = f"tenant schema {self.schema!r}" if self.schema else "tenant"
        if self.username:
            who += f" (user {self.username!r})"
        return f"{who}: {self.message}"


class SecretError(CloacaError, RuntimeError):
    """Secret ``name`` could not be read: no resolver is configured, or it failed."""

    _fields: tuple[str, ...] = ("message", "name")
    name: str | None

    def describe(self) -> str:
        return f"secret {self.name!r}: {self.message}" if self.name else self.message


class UnsupportedFeatureError(CloacaError, NotImplementedError):
    """An upstream name that imports here but whose ``feature`` this engine does not run yet;
    ``issue`` is the cloaca-nb issue that brings it."""

    _fields: tuple[str, ...] = ("message", "feature", "issue")
    feature: str | None
    issue: str | None

    def describe(self) -> str:
        later = f" It arrives with {self.issue}." if self.issue else ""
        return f"{self.feature} is not supported by this engine yet: {self.message}{later}"


class ExecutorError(CloacaError):
    """The remote executor at ``address`` (a Dask scheduler) is misconfigured or unreachable."""

    _fields: tuple[str, ...] = ("message", "address")
    address: str | None

    def describe(self) -> str:
        if self.address:
            return f"Dask scheduler {self.address}: {self.message}"
        return self.message


class ClientConfigError(CloacaError):
    """A client cannot tell which server, key or tenant to use; ``hint`` says what to do."""

    _fields: tuple[str, ...] = ("message", "hint")
    hint: str | None

    def describe(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class ApiError(CloacaError):
    """A REST API error: HTTP ``status``, machine-readable ``code`` (e.g. ``workflow_not_found``).

    The server raises it to answer ``{"error": message, "code": code}``; the ``cloacina`` CLI
    raises it for such an answer, with the ``x-request-id`` of the response as ``request_id``.
    """

    _fields: tuple[str, ...] = ("message", "status", "code", "request_id")
    status: int | None
    code: str | None
    request_id: str | None

    def describe(self) -> str:
        return self.message or f"HTTP {self.status} [{self.code}]"


__all__ = [
    "ApiError",
    "AttemptVetoed",
    "BuildError",
    "ClientConfigError",
    "CloacaError",
    "ContextError",
    "ContextValueError",
    "CycleError",
    "DuplicateTaskError",
    "EmptyWorkflowError",
    "ErrorText",
    "ExecutorError",
    "IncompatiblePythonError",
    "IncompatibleTargetError",
    "ManifestError",
    "PackageError",
    "SecretError",
    "StorageError",
    "TaskDefinitionError",
    "TaskExecutionError",
    "TaskNotFoundError",
    "TaskSelectionError",
    "TaskTimeoutError",
    "TenantAdminError",
    "UnknownDependencyError",
    "UnsafeArchiveError",
    "UnsupportedFeatureError",
    "WorkerError",
    "WorkflowError",
    "WorkflowInputError",
    "WorkflowNotFoundError",
    "WorkflowValidationError",
]
