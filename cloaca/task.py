"""``@task``: turns a function into a task by attaching a frozen :class:`TaskSpec` to it.

The decorator is inert: it validates the declaration, attaches ``fn.__cloaca_task__`` and returns
the same function, so the function stays callable and testable on its own. It also tells the
listeners (the active ``WorkflowBuilder``, the global :class:`~cloaca.task_registry.TaskRegistry`,
the notebook kit) that a task was declared. Graphs are built later, in :mod:`cloaca.dag`.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloaca.conditions import Condition
from cloaca.errors import TaskDefinitionError
from cloaca.retry import RetryPolicy, policy_from_options

_DEFAULT_RETRY = RetryPolicy.default()
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
# a dependency may name a task of another loaded package: "package-name::task-id"
DEPENDENCY_RE = re.compile(r"^(?:[A-Za-z0-9_.\-]{1,214}::)?[A-Za-z0-9_.\-]{1,128}$")


@dataclass(frozen=True)
class SourceInfo:
    """Where a task was defined: module, qualified name, file and first line."""

    module: str
    qualname: str
    filename: str
    lineno: int


@dataclass(frozen=True, eq=False)
class TaskSpec:
    """The frozen public view of a task; every front end schedules these.

    ``fn`` takes the context (a :class:`~cloaca.context.Context`) and, when ``accepts_handle``,
    a :class:`TaskHandle`; it returns the context, a dict or ``None`` (unchanged).
    """

    id: str
    fn: Callable[..., Any]
    dependencies: tuple[str, ...] = ()
    description: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: float | None = None
    trigger_rules: Condition | None = None
    on_success: Callable[[str, Any], Any] | None = None
    on_failure: Callable[[str, str, Any], Any] | None = None
    is_async: bool = False
    accepts_handle: bool = False
    source: SourceInfo | None = None
    code_hash: str = ""
    # upstream's computation-graph hooks: accepted and stored; the graph runs with issue 20
    invokes: Any = None
    post_invocation: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"TaskSpec(id={self.id!r}, dependencies={list(self.dependencies)!r})"


class TaskHandle:
    """Given to tasks that take a second parameter; lets a task wait without holding a slot.

    Sync tasks call ``handle.defer_until(cond)`` (blocks); async tasks ``await
    handle.defer_until(cond)``.
    """

    def __init__(
        self,
        task_id: str,
        release: Callable[[], object] | None = None,
        acquire: Callable[[], object] | None = None,
        arelease: Callable[[], object] | None = None,
        aacquire: Callable[[], Any] | None = None,
    ) -> None:
        self.task_id = task_id
        self._release, self._acquire = release, acquire
        self._arelease, self._aacquire = arelease, aacquire
        self._held = True

    def is_slot_held(self) -> bool:
        """Tell whether the task currently holds one of the runner's concurrency slots."""
        return self._held

    def defer_until(self, condition: Callable[[], bool], poll_interval_ms: int = 100) -> Any:
        """Release the slot, wait until ``condition()`` is true, then take a slot again."""
        import asyncio  # kept out of `import cloaca`: asyncio alone costs ~18 ms

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._defer_blocking(condition, poll_interval_ms)
        return self._defer_async(condition, poll_interval_ms)

    def _defer_blocking(self, condition: Callable[[], bool], poll_interval_ms: int) -> None:
        if self._release:
            self._release()
        self._held = False
        try:
            while not condition():
                time.sleep(poll_interval_ms / 1000.0)
        finally:
            if self._acquire:
                self._acquire()
            self._held = True

    async def _defer_async(self, condition: Callable[[], bool], poll_interval_ms: int) -> None:
        import asyncio

        if self._arelease:
            self._arelease()
        self._held = False
        try:
            while not condition():
                await asyncio.sleep(poll_interval_ms / 1000.0)
        finally:
            if self._aacquire:
                await self._aacquire()
            self._held = True


# ----------------------------------------------------------------------------- listeners
TaskListener = Callable[[TaskSpec], None]
_listeners: list[TaskListener] = []
_lock = threading.Lock()


def add_task_listener(listener: TaskListener) -> None:
    """Call ``listener(spec)`` every time a task is declared (used by builders and notebooks)."""
    with _lock:
        _listeners.append(listener)


def remove_task_listener(listener: TaskListener) -> None:
    """Stop calling ``listener``; unknown listeners are ignored."""
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def get_spec(obj: Any) -> TaskSpec | None:
    """Return the :class:`TaskSpec` attached to ``obj`` (a decorated function), or ``None``."""
    if isinstance(obj, TaskSpec):
        return obj
    return getattr(obj, "__cloaca_task__", None)


def dependency_id(dep: Any, task_id: str) -> str:
    """Turn one ``dependencies=[...]`` entry (an id or a decorated function) into an id."""
    if isinstance(dep, str):
        if not DEPENDENCY_RE.match(dep):
            raise TaskDefinitionError(
                f"dependency {dep!r} is not a valid task id (letters, digits, '_', '-', '.'; "
                "'package::task' for another package's task)",
                task_id=task_id,
            )
        return dep
    spec = get_spec(dep)
    if spec is None:
        name = getattr(dep, "__name__", repr(dep))
        raise TaskDefinitionError(
            f"dependency {name} is neither a task id nor a @task function; "
            "decorate it with @task or pass its id as a string",
            task_id=task_id,
        )
    return spec.id


def _hash_code(code: Any, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _hash_code(const, digest)
        else:
            digest.update(repr(const).encode())


def _code_hash(fn: Callable[..., Any]) -> str:
    # bytecode, names and constants: cheap (no source file read) and changes with the code
    code = getattr(fn, "__code__", None)
    digest = hashlib.sha256()
    if code is None:
        digest.update(repr(fn).encode())
    else:
        _hash_code(code, digest)
    return digest.hexdigest()[:16]


_HANDLE_BY_CODE: dict[Any, bool] = {}  # code object -> accepts a TaskHandle (signature checked)


def _check_signature(fn: Callable[..., Any], task_id: str) -> bool:
    code = getattr(fn, "__code__", None)
    # defaults live on the function, not the code object: only cache when there are none
    key = code if code is not None and not _has_defaults(fn) else None
    cached = _HANDLE_BY_CODE.get(key) if key is not None else None
    if cached is not None:
        return cached
    accepts = _inspect_signature(fn, task_id)
    if key is not None:
        if len(_HANDLE_BY_CODE) > 4096:  # notebooks redefine tasks endlessly: stay bounded
            _HANDLE_BY_CODE.clear()
        _HANDLE_BY_CODE[key] = accepts
    return accepts


def _has_defaults(fn: Callable[..., Any]) -> bool:
    return bool(getattr(fn, "__defaults__", None) or getattr(fn, "__kwdefaults__", None))


def _inspect_signature(fn: Callable[..., Any], task_id: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TaskDefinitionError(f"cannot read the signature: {exc}", task_id=task_id) from exc
    params = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in params if p.default is p.empty]
    has_varargs = any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    kw_required = [
        p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY and p.default is p.empty
    ]
    if kw_required or len(required) > 2 or (not params and not has_varargs):
        raise TaskDefinitionError(
            f"function {fn.__qualname__}{sig} must take the context as its first parameter "
            "and optionally a TaskHandle as its second, e.g. `def my_task(context):`",
            task_id=task_id,
        )
    # a second parameter receives the TaskHandle when it is required or named like one
    # (an optional second parameter with another name is left to its default)
    return len(required) >= 2 or (len(params) >= 2 and params[1].name in ("handle", "task_handle"))


def make_spec(fn: Callable[..., Any], **options: Any) -> TaskSpec:
    """Validate ``@task`` options for ``fn`` and build its :class:`TaskSpec` (no side effects)."""
    task_id = options.get("id") or getattr(fn, "__name__", None)
    if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id):
        raise TaskDefinitionError(
            f"invalid task id {task_id!r}: use 1-128 letters, digits, '_', '-' or '.'",
            task_id=str(task_id),
        )
    if not callable(fn):
        raise TaskDefinitionError(
            f"@task needs a function, got {type(fn).__name__}", task_id=task_id
        )
    flat = ("retry_attempts", "retry_backoff", "retry_delay_ms", "retry_max_delay_ms",
            "retry_condition", "retry_jitter")  # fmt: skip
    given_flat = [k for k in flat if options.get(k) is not None]
    retry = options.get("retry")
    if retry is not None and given_flat:
        raise TaskDefinitionError(
            f"give either retry=RetryPolicy or the retry_attempts/retry_* options, not both "
            f"(got retry and {', '.join(given_flat)})",
            task_id=task_id,
        )
    if retry is None:
        try:
            values = (options.get(k) for k in flat)
            retry = policy_from_options(*values) if given_flat else _DEFAULT_RETRY
        except ValueError as exc:
            raise TaskDefinitionError(str(exc), task_id=task_id) from exc
    elif not isinstance(retry, RetryPolicy):
        raise TaskDefinitionError(
            f"retry must be a RetryPolicy, got {type(retry).__name__}", task_id=task_id
        )
    timeout = options.get("timeout_seconds")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise TaskDefinitionError(f"timeout_seconds must be > 0, got {timeout!r}", task_id=task_id)
    rules = options.get("trigger_rules")
    if rules is not None and not isinstance(rules, Condition):
        raise TaskDefinitionError(
            "trigger_rules must be built with cloaca's rule helpers (context_value, task_success, "
            "task_failed, task_skipped, always, all_of, any_of, none_of)",
            task_id=task_id,
        )
    invokes, post_invocation = options.get("invokes"), options.get("post_invocation")
    if post_invocation is not None and invokes is None:
        raise TaskDefinitionError(
            "post_invocation= runs after the graph given with invokes=; set invokes= too",
            task_id=task_id,
        )
    if post_invocation is not None and not callable(post_invocation):
        raise TaskDefinitionError("post_invocation must be callable", task_id=task_id)
    deps = tuple(dependency_id(d, task_id) for d in options.get("dependencies") or ())
    if task_id in deps:
        raise TaskDefinitionError("a task cannot depend on itself", task_id=task_id)
    unknown = sorted(rules.task_refs() - set(deps)) if rules is not None else []
    if unknown:
        raise TaskDefinitionError(
            f"trigger_rules reads the state of {', '.join(map(repr, unknown))}, which is not "
            "among this task's dependencies; add it to dependencies=[...]",
            task_id=task_id,
        )
    accepts_handle = _check_signature(fn, task_id)
    code = getattr(fn, "__code__", None)
    source = SourceInfo(
        module=getattr(fn, "__module__", "") or "",
        qualname=getattr(fn, "__qualname__", task_id),
        filename=code.co_filename if code else "",
        lineno=code.co_firstlineno if code else 0,
    )
    return TaskSpec(
        id=task_id,
        fn=fn,
        dependencies=tuple(dict.fromkeys(deps)),
        description=options.get("description") or (inspect.getdoc(fn) or None),
        retry=retry,
        timeout_seconds=float(timeout) if timeout is not None else None,
        trigger_rules=rules,
        on_success=options.get("on_success"),
        on_failure=options.get("on_failure"),
        is_async=inspect.iscoroutinefunction(fn),
        accepts_handle=accepts_handle,
        source=source,
        code_hash=_code_hash(fn),
        invokes=invokes,
        post_invocation=post_invocation,
    )


def task(
    fn: Callable[..., Any] | None = None,
    *,
    id: str | None = None,
    dependencies: Sequence[Any] | None = None,
    description: str | None = None,
    retry: RetryPolicy | None = None,
    retry_attempts: int | None = None,
    retry_backoff: str | None = None,
    retry_delay_ms: int | None = None,
    retry_max_delay_ms: int | None = None,
    retry_condition: str | list[str] | None = None,
    retry_jitter: bool | None = None,
    timeout_seconds: float | None = None,
    trigger_rules: Condition | None = None,
    on_success: Callable[[str, Any], Any] | None = None,
    on_failure: Callable[[str, str, Any], Any] | None = None,
    invokes: Any = None,
    post_invocation: Callable[..., Any] | None = None,
) -> Any:
    """Declare a task.

    Usable bare (``@task``) or with options (``@task(id="fetch", dependencies=[...])``).
    The function is returned unchanged apart from its ``__cloaca_task__`` attribute.
    ``invokes=`` (a computation graph) and ``post_invocation=`` are upstream's
    computation-graph hooks: accepted and kept on the spec; running the graph comes with the
    computation-graph issue, and ``cloaca build`` refuses them until the manifest carries them.

    Raises
    ------
    TaskDefinitionError
        For an invalid id, signature, dependency entry, timeout or conflicting retry options.
    """
    options = {k: v for k, v in locals().items() if k != "fn"}
    decorator = TaskDecorator(options)
    if fn is not None:
        return decorator(fn)
    return decorator


class TaskDecorator:
    """What ``@task(...)`` returns (upstream's name): holds the options; calling it on a
    function attaches the :class:`TaskSpec`, tells the listeners and returns the function."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Declare ``func`` as a task with the held options."""
        spec = make_spec(func, **self.options)
        func.__cloaca_task__ = spec  # type: ignore[attr-defined]
        with _lock:
            listeners = list(_listeners)
        for listener in listeners:
            listener(spec)
        return func

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.options.items() if v is not None)
        return f"TaskDecorator({given})"
