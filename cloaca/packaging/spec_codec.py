"""The one converter between a live :class:`~cloaca.task.TaskSpec` and a manifest task entry.

Everything a task declares that changes how it runs travels through here, both ways: the whole
retry policy, the trigger-rule tree, a fractional timeout and the ``on_success``/``on_failure``
callbacks as ``"module.path:function"`` references. The builder (via static discovery), the
notebook export, the loader, the package workers and the server all use :func:`spec_to_entry`
and :func:`entry_to_spec`, so a task behaves the same in a notebook, in-process, loaded from a
package and on a server.

An option that cannot be written down (a lambda, a closure, an object not importable by
reference, a retry condition or trigger rule that is code rather than data) raises
:class:`~cloaca.errors.TaskOptionError` naming the task, the option and what to do — it is never
silently dropped.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cloaca.conditions import Condition, condition_from_dict
from cloaca.errors import TaskOptionError
from cloaca.packaging.manifest import (
    RetryConditionEntry,
    RetryEntry,
    TaskEntry,
    TriggerRule,
)
from cloaca.retry import BackoffStrategy, RetryCondition, RetryPolicy
from cloaca.task import TaskSpec, make_spec

_RULE = TypeAdapter(TriggerRule)
_DEFAULT_RETRY = RetryPolicy()
_BACKOFFS = ("fixed", "linear", "exponential")
_CONDITIONS = ("all", "never", "transient", "patterns", "error_types")
#: ``resolve(field, ref)`` turns a reference into the callable a spec holds
Resolver = Callable[[str, str], Callable[..., Any]]


@dataclass(frozen=True)
class FunctionRef:
    """A callable known only by its ``"module.path:function"`` reference.

    Static discovery reads callbacks this way (the project is never imported by the builder);
    calling it imports the target on first use.
    """

    ref: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Import the referenced function and call it."""
        return import_ref(self.ref)(*args, **kwargs)

    @property
    def __name__(self) -> str:  # log messages name callbacks by __name__
        return self.ref


def import_ref(ref: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (a dotted attribute path after ``:`` is allowed)."""
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _default_resolver(field: str, ref: str) -> Callable[..., Any]:
    return import_ref(ref)


# ----------------------------------------------------------------------------- references
def callable_ref(
    obj: Any, task_id: str, option: str, modules: Mapping[str, str] | None = None
) -> str:
    """Return the ``"module:qualname"`` reference of ``obj``, or explain why there is none.

    Parameters
    ----------
    obj:
        A task function or callback.
    task_id, option:
        For the error message.
    modules:
        Module renames: a notebook's ``__main__`` becomes the exported module, say.

    Raises
    ------
    TaskOptionError
        ``obj`` is a lambda, a nested function (closure), not a plain function, defined in
        ``__main__`` with no rename, or not reachable under its own module and name.
    """
    given = getattr(obj, "__cloaca_ref__", None) or (
        obj.ref if isinstance(obj, FunctionRef) else None
    )
    if isinstance(given, str):
        return given
    todo = (
        f"Define it as a module-level function (`def name(...)`) in the project and pass it "
        f"by name, e.g. @task(..., {option}=name)."
    )
    name = getattr(obj, "__name__", None)
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if not callable(obj) or not isinstance(qualname, str) or not isinstance(module, str):
        kind = type(obj).__name__
        raise TaskOptionError(
            f"a {kind} object cannot be written into the manifest, only a reference to a "
            f"module-level function. {todo}",
            task_id=task_id,
            field=option,
        )
    if name == "<lambda>":
        raise TaskOptionError(
            f"is a lambda, which cannot be written into the manifest. {todo}",
            task_id=task_id,
            field=option,
        )
    if "<locals>" in qualname:
        raise TaskOptionError(
            f"{qualname} is defined inside another function (a closure), so it cannot be "
            f"imported by reference. {todo}",
            task_id=task_id,
            field=option,
        )
    target = (modules or {}).get(module, module)
    if target == "__main__":
        raise TaskOptionError(
            f"{qualname} is defined in __main__ (a script or a notebook), which a package "
            "cannot import. Move it into a module of the project.",
            task_id=task_id,
            field=option,
        )
    if target == module:  # the reference must lead back to this very object
        try:
            found: Any = import_ref(f"{module}:{qualname}")
        except Exception:  # any import problem means "not importable"
            found = None
        if found is not obj:
            raise TaskOptionError(
                f"{module}:{qualname} does not lead back to this function (it is not a "
                f"module-level name of {module}). {todo}",
                task_id=task_id,
                field=option,
            )
    return f"{target}:{qualname}"


# ----------------------------------------------------------------------------- retry
def retry_to_entry(policy: RetryPolicy, task_id: str) -> RetryEntry | None:
    """The manifest form of ``policy``; ``None`` for the default policy (``RetryPolicy()``).

    Raises
    ------
    TaskOptionError
        A policy or condition subclass (code, not data), an unknown backoff or condition kind,
        or a non-finite delay.
    """
    if type(policy) is not RetryPolicy or type(policy.backoff_strategy) is not BackoffStrategy:
        raise TaskOptionError(
            f"a custom {type(policy).__name__} cannot be written into the manifest. Use "
            "RetryPolicy with BackoffStrategy.fixed()/linear()/exponential().",
            task_id=task_id,
            field="retry",
        )
    cond = policy.retry_condition
    if type(cond) is not RetryCondition or cond.kind not in _CONDITIONS:
        raise TaskOptionError(
            "the retry condition is code, not a declarative condition. Use "
            "RetryCondition.all()/never()/transient_only()/pattern([...])/error_types([...]).",
            task_id=task_id,
            field="retry.condition",
        )
    if policy.backoff_strategy.kind not in _BACKOFFS:
        raise TaskOptionError(
            f"unknown backoff {policy.backoff_strategy.kind!r}; use one of {list(_BACKOFFS)}.",
            task_id=task_id,
            field="retry.backoff",
        )
    if policy == _DEFAULT_RETRY:
        return None
    try:
        return RetryEntry(
            max_attempts=policy.max_attempts,
            backoff=policy.backoff_strategy.kind,  # type: ignore[arg-type]
            initial_delay_seconds=float(policy.initial_delay),
            max_delay_seconds=float(policy.max_delay),
            multiplier=float(policy.backoff_strategy.factor),
            scale=float(policy.backoff_strategy.multiplier),
            jitter=policy.jitter,
            condition=RetryConditionEntry(
                kind=cond.kind,  # type: ignore[arg-type]
                values=list(cond.patterns),
            ),
        )
    except ValidationError as exc:
        raise _option_error(exc, task_id, "retry") from exc


def retry_from_entry(entry: RetryEntry | None, retries: int = 0) -> RetryPolicy:
    """The policy a manifest entry describes (``retries`` alone: the engine's default delays)."""
    if entry is None:
        return RetryPolicy(max_attempts=retries + 1)
    return RetryPolicy(
        max_attempts=entry.max_attempts,
        initial_delay=entry.initial_delay_seconds,
        max_delay=entry.max_delay_seconds,
        backoff_strategy=BackoffStrategy(entry.backoff, entry.multiplier, entry.scale),
        retry_condition=RetryCondition(entry.condition.kind, tuple(entry.condition.values)),
        jitter=entry.jitter,
    )


# ----------------------------------------------------------------------------- trigger rules
def rules_to_json(rules: Condition, task_id: str) -> dict[str, Any]:
    """The trigger-rule tree as JSON, checked to come back as an equal tree.

    Raises
    ------
    TaskOptionError
        A custom ``Condition`` subclass, or a compared value that JSON would change (a tuple,
        a set, a datetime ...).
    """
    what = "Build rules with context_value/all_of/any_of/none_of on JSON values"
    try:
        data = rules.to_dict()
        text = json.dumps(data, allow_nan=False, sort_keys=True)
        back = condition_from_dict(json.loads(text))
    except (NotImplementedError, TypeError, ValueError) as exc:
        raise TaskOptionError(
            f"the trigger rule cannot be written as JSON ({exc}). {what}.",
            task_id=task_id,
            field="trigger_rules",
        ) from exc
    if back != rules or type(back) is not type(rules):
        raise TaskOptionError(
            f"the trigger rule does not survive JSON unchanged ({text}). {what} "
            "(lists, not tuples or sets; str/int/float/bool/None/dict values).",
            task_id=task_id,
            field="trigger_rules",
        )
    return json.loads(text)


# ----------------------------------------------------------------------------- whole task
def spec_to_entry(
    spec: TaskSpec, *, function: str | None = None, modules: Mapping[str, str] | None = None
) -> TaskEntry:
    """Write ``spec`` as a manifest task entry, carrying every behaviour option.

    Parameters
    ----------
    spec:
        The task.
    function:
        The task function's reference when the caller knows it better (static discovery);
        default: derived from ``spec.fn``.
    modules:
        Module renames applied to references (``{"__main__": "pkg.tasks"}`` for a notebook).

    Raises
    ------
    TaskOptionError
        An option the manifest cannot carry (see :func:`callable_ref`, :func:`retry_to_entry`,
        :func:`rules_to_json`).
    """
    tid = spec.id
    refuse_uncarried(spec)
    ref = function or callable_ref(spec.fn, tid, "function", modules)
    rules = rules_to_json(spec.trigger_rules, tid) if spec.trigger_rules is not None else None
    fields: dict[str, Any] = {
        "id": tid,
        "function": ref,
        "dependencies": list(spec.dependencies),
        "description": spec.description,
        "retries": spec.retry.max_attempts - 1,
        "timeout_seconds": spec.timeout_seconds,
        "retry": retry_to_entry(spec.retry, tid),
        "trigger_rules": _RULE.validate_python(rules) if rules is not None else None,
        "on_success": _callback_ref(spec.on_success, tid, "on_success", modules),
        "on_failure": _callback_ref(spec.on_failure, tid, "on_failure", modules),
    }
    try:
        return TaskEntry(**fields)
    except ValidationError as exc:
        raise _option_error(exc, tid, None) from exc


def entry_to_spec(entry: TaskEntry, resolve: Resolver | None = None) -> TaskSpec:
    """Rebuild the live :class:`TaskSpec` a manifest entry describes.

    Parameters
    ----------
    entry:
        The manifest task entry.
    resolve:
        ``resolve(field, ref)`` for ``field`` in ``function``, ``on_success``, ``on_failure``:
        the callable the spec should hold. Default: import it (in-process use). The package
        loader passes proxies that run in the package's worker instead, so the host never
        imports package code.

    Raises
    ------
    TaskDefinitionError
        The entry breaks a rule ``@task`` enforces (the same checks run).
    """
    res = resolve or _default_resolver
    return make_spec(
        res("function", entry.function),
        id=entry.id,
        dependencies=entry.dependencies,
        description=entry.description,
        retry=retry_from_entry(entry.retry, entry.retries),
        timeout_seconds=entry.timeout_seconds,
        trigger_rules=(
            condition_from_dict(entry.trigger_rules.model_dump(mode="json"))
            if entry.trigger_rules is not None
            else None
        ),
        on_success=res("on_success", entry.on_success) if entry.on_success else None,
        on_failure=res("on_failure", entry.on_failure) if entry.on_failure else None,
    )


#: declarations the manifest (format v2) has no field for, and what to do about them
UNCARRIED = {
    "invokes": "a computation graph cannot be packaged yet (computation graphs arrive with "
    "issue 20); remove invokes= for the package build",
    "post_invocation": "it only runs after an invokes= graph, which cannot be packaged yet "
    "(issue 20); remove post_invocation= for the package build",
    "workflow_params": "declared workflow params are not carried by manifest v2 yet, so the "
    "server could not validate them; remove @workflow_params for the package build",
    "workflow_secrets": "declared workflow secrets are not carried by manifest v2 yet; remove "
    "@workflow_secrets for the package build (context.secret(...) still works where a "
    "resolver is installed)",
}


def refuse_uncarried(spec: TaskSpec) -> None:
    """Raise :class:`TaskOptionError` when ``spec`` declares something the manifest cannot
    carry (``invokes=``, ``post_invocation=``, ``@workflow_params``, ``@workflow_secrets``) —
    a package must never silently lose a declaration."""
    from cloaca import params, secrets

    present = {
        "invokes": spec.invokes is not None,
        "post_invocation": spec.post_invocation is not None,
        "workflow_params": bool(getattr(spec.fn, params.ATTR, None)),
        "workflow_secrets": bool(getattr(spec.fn, secrets.ATTR, None)),
    }
    for option, given in present.items():
        if given:
            raise TaskOptionError(UNCARRIED[option], task_id=spec.id, field=option)


def _callback_ref(
    fn: Any, task_id: str, option: str, modules: Mapping[str, str] | None
) -> str | None:
    return None if fn is None else callable_ref(fn, task_id, option, modules)


def _option_error(exc: ValidationError, task_id: str, option: str | None) -> TaskOptionError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = ".".join(p for p in (option, loc) if p) or None
    return TaskOptionError(
        f"{err['msg']}. Fix the value in the @task decorator or [tool.cloaca.tasks].",
        task_id=task_id,
        field=field,
    )


__all__ = [
    "FunctionRef",
    "callable_ref",
    "entry_to_spec",
    "import_ref",
    "refuse_uncarried",
    "retry_from_entry",
    "retry_to_entry",
    "rules_to_json",
    "spec_to_entry",
]
