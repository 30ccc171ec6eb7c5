"""Declared workflow inputs: ``@workflow_params`` and their validation at execute time.

``@cloaca.workflow_params(source_id=str, batch_size=(int, 500))`` on any task of a workflow
declares the workflow's typed inputs: ``name=Type`` is required, ``name=(Type, default)`` is
optional. The declaration is kept on the task function; :class:`~cloaca.workflow.Workflow`
collects it from its tasks, and every run (in-process, durable runner, server) checks the
initial context against it before any task starts — a missing required param or a value of
the wrong type is a :class:`~cloaca.errors.WorkflowInputError`; a missing optional param gets
its default; keys that are not declared pass through untouched. Types are checked strictly
(pydantic strict mode: ``"5"`` is not an ``int``, ``True`` is not an ``int``; an ``int`` is a
valid ``float``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cloaca.errors import TaskDefinitionError, WorkflowInputError, WorkflowValidationError

#: the types a param may have, and their JSON Schema type
PARAM_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}
ATTR = "__cloaca_workflow_params__"
_REQUIRED = object()


@dataclass(frozen=True)
class ParamDecl:
    """One declared input: its name, type, and default (``required`` when it has none)."""

    name: str
    type: type
    default: Any = None
    required: bool = True

    def json_schema(self) -> dict[str, Any]:
        """The param as upstream's ``InputSlot``: name, schema, required and default."""
        slot: dict[str, Any] = {
            "name": self.name,
            "schema": {"type": PARAM_TYPES[self.type]},
            "required": self.required,
        }
        if not self.required:
            slot["default"] = self.default
        return slot


def _check(name: str, typ: type, value: Any) -> str | None:
    """Return why ``value`` is not a valid ``typ`` (strict), or None when it is."""
    from pydantic import TypeAdapter, ValidationError  # not imported by `import cloaca`

    try:
        TypeAdapter(typ).validate_python(value, strict=True)
    except ValidationError:
        return (
            f"param {name!r} must be {PARAM_TYPES[typ]} ({typ.__name__}), "
            f"got {type(value).__name__} {value!r}"
        )
    return None


def _parse(name: str, spec: Any) -> ParamDecl:
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise TaskDefinitionError(
                f"@workflow_params: {name}= must be a type or (type, default), got {spec!r}"
            )
        typ, default = spec
    else:
        typ, default = spec, _REQUIRED
    if typ not in PARAM_TYPES:
        allowed = ", ".join(t.__name__ for t in PARAM_TYPES)
        raise TaskDefinitionError(
            f"@workflow_params: {name}= has type {typ!r}; use one of {allowed}"
        )
    if default is _REQUIRED:
        return ParamDecl(name, typ)
    problem = _check(name, typ, default)
    if problem:
        raise TaskDefinitionError(f"@workflow_params: the default of {problem}")
    return ParamDecl(name, typ, default, required=False)


class WorkflowParamsDecorator:
    """What ``@cloaca.workflow_params(...)`` returns: applied to a task function, it records the
    declaration on it and returns the function unchanged."""

    def __init__(self, **params: Any) -> None:
        if not params:
            raise TaskDefinitionError("@workflow_params needs at least one name=Type")
        self.params: dict[str, ParamDecl] = {n: _parse(n, s) for n, s in params.items()}

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Attach the declaration to ``fn`` (merged with one already there)."""
        current: dict[str, ParamDecl] = dict(getattr(fn, ATTR, {}))
        current.update(self.params)
        setattr(fn, ATTR, current)
        return fn

    def __repr__(self) -> str:
        return f"WorkflowParamsDecorator({', '.join(self.params)})"


def workflow_params(**params: Any) -> WorkflowParamsDecorator:
    """Declare a workflow's typed inputs on one of its tasks.

    Each keyword is ``name=Type`` (required) or ``name=(Type, default)`` (optional); ``Type``
    is ``str``, ``int``, ``float``, ``bool``, ``list`` or ``dict``.

    Examples
    --------
    >>> @workflow_params(source_id=str, batch_size=(int, 500))   # doctest: +SKIP
    ... @task()
    ... def prepare(context):
    ...     return context
    """
    return WorkflowParamsDecorator(**params)


def collect(workflow: str, functions: Iterable[Any]) -> dict[str, ParamDecl]:
    """The params declared on ``functions`` (the tasks of one workflow).

    Raises
    ------
    WorkflowValidationError
        Two tasks declare one name differently.
    """
    found: dict[str, ParamDecl] = {}
    for fn in functions:
        for name, decl in getattr(fn, ATTR, {}).items():
            seen = found.get(name)
            if seen is not None and seen != decl:
                raise WorkflowValidationError(
                    f"param {name!r} is declared twice with different types or defaults "
                    f"({seen.type.__name__} and {decl.type.__name__}); declare it once",
                    workflow=workflow,
                )
            found[name] = decl
    return found


def apply(
    workflow: str, params: Mapping[str, ParamDecl], initial: dict[str, Any]
) -> dict[str, Any]:
    """Check ``initial`` against ``params``; return it with the defaults of absent optional
    params added (``initial`` itself when nothing is declared).

    Raises
    ------
    WorkflowInputError
        A required param is missing, or a value has the wrong type.
    """
    if not params:
        return initial
    out = dict(initial)
    for name, decl in params.items():
        if name not in out:
            if decl.required:
                raise WorkflowInputError(
                    f"missing required param {name!r} ({decl.type.__name__})",
                    workflow=workflow,
                    param=name,
                )
            out[name] = decl.default
            continue
        problem = _check(name, decl.type, out[name])
        if problem:
            raise WorkflowInputError(problem, workflow=workflow, param=name)
    return out


__all__ = ["ParamDecl", "WorkflowParamsDecorator", "apply", "collect", "workflow_params"]
