"""Trigger rules: conditions, evaluated once a task's dependencies are done, that decide whether
the task runs.

``context_value(key, op, value)`` compares one context value; ``task_success(id)``,
``task_failed(id)`` and ``task_skipped(id)`` look at how a dependency ended; ``always()`` is the
rule that always holds; ``all_of``, ``any_of`` and ``none_of`` combine rules. A task whose rule
is false is *skipped*: its dependents still run and see the context without its writes. A task
whose rule names task states is evaluated even when a dependency failed (a fallback); see
"Trigger rules" in ``docs/concepts.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = (
    "Equals", "NotEquals", "GreaterThan", "LessThan",
    "Contains", "NotContains", "Exists", "NotExists",
)  # fmt: skip
"""The canonical operator names (the manifest stores these)."""

_SYMBOLS = {
    "==": "Equals", "=": "Equals", "eq": "Equals",
    "!=": "NotEquals", "<>": "NotEquals", "ne": "NotEquals", "neq": "NotEquals",
    ">": "GreaterThan", "gt": "GreaterThan",
    "<": "LessThan", "lt": "LessThan",
    "in": "Contains", "notin": "NotContains",
}  # fmt: skip
_ALIASES = {op.lower(): op for op in OPERATORS} | _SYMBOLS

TASK_STATES = {"task_success": "Completed", "task_failed": "Failed", "task_skipped": "Skipped"}
"""Task-state condition type → the dependency status that makes it true."""


def canonical_operator(op: str) -> str:
    """The canonical name of ``op``: case, ``_``/``-``/spaces ignored, symbols accepted.

    Raises
    ------
    ValueError
        For an operator that is not one of :data:`OPERATORS` or their aliases.
    """
    if isinstance(op, str):
        key = op.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
        if key in _ALIASES:
            return _ALIASES[key]
    raise ValueError(
        f"unknown trigger operator {op!r}; use one of {list(OPERATORS)} "
        "(any case, snake_case too) or ==, !=, >, <"
    )


@dataclass(frozen=True)
class Condition:
    """Base of trigger rules; :meth:`evaluate` returns whether the task should run."""

    def evaluate(
        self, context: Mapping[str, Any], statuses: Mapping[str, str] | None = None
    ) -> bool:  # pragma: no cover - abstract
        """Return True when the task should run for ``context`` and dependency ``statuses``
        (task id → ``Completed``/``Failed``/``Skipped``)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """A JSON-friendly description."""
        raise NotImplementedError

    def task_refs(self) -> frozenset[str]:
        """The task ids whose state this rule reads (empty: it reads the context only)."""
        return frozenset()


@dataclass(frozen=True)
class Always(Condition):
    """The rule that always holds (a task's default)."""

    def evaluate(
        self, context: Mapping[str, Any], statuses: Mapping[str, str] | None = None
    ) -> bool:
        """Always True."""
        return True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description."""
        return {"type": "always"}


@dataclass(frozen=True)
class TaskState(Condition):
    """True when dependency ``task_id`` ended in the state named by ``kind``."""

    kind: str
    task_id: str

    def __post_init__(self) -> None:
        if self.kind not in TASK_STATES:
            raise ValueError(f"unknown task-state rule {self.kind!r}; use {sorted(TASK_STATES)}")
        if not isinstance(self.task_id, str) or not self.task_id:
            raise ValueError(f"{self.kind} needs a task id (a non-empty string)")

    def evaluate(
        self, context: Mapping[str, Any], statuses: Mapping[str, str] | None = None
    ) -> bool:
        """Whether the dependency's status matches (an unknown task matches nothing)."""
        return (statuses or {}).get(self.task_id) == TASK_STATES[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description."""
        return {"type": self.kind, "task_id": self.task_id}

    def task_refs(self) -> frozenset[str]:
        """The one task this condition reads."""
        return frozenset({self.task_id})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class ContextValue(Condition):
    """Compare ``context[key]`` with ``value`` using ``op`` (stored under its canonical name)."""

    key: str
    op: str
    value: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", canonical_operator(self.op))

    def evaluate(
        self, context: Mapping[str, Any], statuses: Mapping[str, str] | None = None
    ) -> bool:
        """Apply the comparison.

        A missing key satisfies only ``NotExists``, ``NotEquals`` and ``NotContains``;
        ``GreaterThan``/``LessThan`` compare numbers (as floats) and are false for anything
        else; ``Contains`` is a substring test on strings and membership on lists.
        """
        present = self.key in context
        if self.op == "Exists":
            return present
        if self.op == "NotExists":
            return not present
        if not present:
            return self.op in ("NotEquals", "NotContains")
        actual = context[self.key]
        if self.op == "Equals":
            return bool(actual == self.value)
        if self.op == "NotEquals":
            return bool(actual != self.value)
        if self.op in ("GreaterThan", "LessThan"):
            a, b = _number(actual), _number(self.value)
            if a is None or b is None:
                return False
            return a > b if self.op == "GreaterThan" else a < b
        return _contains(actual, self.value) == (self.op == "Contains")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description."""
        return {"type": "context_value", "key": self.key, "op": self.op, "value": self.value}


def _contains(actual: Any, value: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(value, str) and value in actual
    if isinstance(actual, list | tuple):
        return value in actual
    return False


@dataclass(frozen=True)
class _Combined(Condition):
    conditions: tuple[Condition, ...]
    kind: str

    def evaluate(
        self, context: Mapping[str, Any], statuses: Mapping[str, str] | None = None
    ) -> bool:
        results = (c.evaluate(context, statuses) for c in self.conditions)
        if self.kind == "all_of":
            return all(results)
        if self.kind == "any_of":
            return any(results)
        return not any(results)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "conditions": [c.to_dict() for c in self.conditions]}

    def task_refs(self) -> frozenset[str]:
        return frozenset().union(*(c.task_refs() for c in self.conditions))


def _check(conditions: tuple[Any, ...], name: str) -> tuple[Condition, ...]:
    for c in conditions:
        if not isinstance(c, Condition):
            raise ValueError(
                f"{name}() takes rules built with cloaca's rule helpers, got {type(c).__name__}"
            )
    return conditions


def always() -> Condition:
    """The rule that always holds (what a task without ``trigger_rules`` gets)."""
    return Always()


def task_success(task_id: str) -> Condition:
    """True when dependency ``task_id`` completed."""
    return TaskState("task_success", task_id)


def task_failed(task_id: str) -> Condition:
    """True when dependency ``task_id`` failed (after its last attempt)."""
    return TaskState("task_failed", task_id)


def task_skipped(task_id: str) -> Condition:
    """True when dependency ``task_id`` was skipped."""
    return TaskState("task_skipped", task_id)


def context_value(key: str, op: str, value: Any = None) -> Condition:
    """Rule on one context value; ``op`` is one of :data:`OPERATORS` or an alias."""
    return ContextValue(key, op, value)


def all_of(*conditions: Condition) -> Condition:
    """True when every rule is true."""
    return _Combined(_check(conditions, "all_of"), "all_of")


def any_of(*conditions: Condition) -> Condition:
    """True when at least one rule is true."""
    return _Combined(_check(conditions, "any_of"), "any_of")


def none_of(*conditions: Condition) -> Condition:
    """True when no rule is true."""
    return _Combined(_check(conditions, "none_of"), "none_of")


_TYPES = "always, context_value, task_success, task_failed, task_skipped, all_of, any_of, none_of"


def _exact(data: dict[str, Any], fields: set[str], what: str) -> None:
    extra = set(data) - fields
    if extra:
        raise ValueError(f"{what}; unknown field(s) {sorted(extra)}")


def condition_from_dict(data: Any) -> Condition:
    """Rebuild a rule from :meth:`Condition.to_dict` output (the manifest's ``trigger_rules``).

    Raises
    ------
    ValueError
        For an unknown ``type`` or operator, or a malformed node (naming what is wrong).
    """
    if not isinstance(data, dict):
        raise ValueError(f"a trigger rule must be an object, got {type(data).__name__}")
    kind = data.get("type")
    if kind == "always":
        _exact(data, {"type"}, "an always rule has only 'type'")
        return Always()
    if kind in TASK_STATES:
        what = f"a {kind} rule has exactly 'type' and 'task_id' (a string)"
        _exact(data, {"type", "task_id"}, what)
        if not isinstance(data.get("task_id"), str):
            raise ValueError(what)
        return TaskState(kind, data["task_id"])
    if kind == "context_value":
        what = "a context_value rule has exactly 'type', 'key' (a string), 'op' and 'value'"
        _exact(data, {"type", "key", "op", "value"}, what)
        if not isinstance(data.get("key"), str):
            raise ValueError(what)
        return ContextValue(data["key"], data.get("op", ""), data.get("value"))
    if kind in ("all_of", "any_of", "none_of"):
        what = f"an {kind} rule has exactly 'type' and 'conditions' (a list)"
        _exact(data, {"type", "conditions"}, what)
        children = data.get("conditions")
        if not isinstance(children, list):
            raise ValueError(what)
        return _Combined(tuple(condition_from_dict(c) for c in children), kind)
    raise ValueError(f"unknown trigger rule type {kind!r}; use one of {_TYPES}")
