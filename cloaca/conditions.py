"""Trigger rules: run-time conditions on the context that decide whether a task runs.

``context_value(key, op, value)`` compares one context value; ``all_of``, ``any_of`` and
``none_of`` combine rules. A task whose rule is false is *skipped*: its dependents still run and
see the context without its writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPERATORS = ("Equals", "NotEquals", "GreaterThan", "LessThan", "Contains", "Exists", "NotExists")


@dataclass(frozen=True)
class Condition:
    """Base of trigger rules; :meth:`evaluate` returns whether the task should run."""

    def evaluate(self, context: dict[str, Any]) -> bool:  # pragma: no cover - abstract
        """Return True when the task should run for ``context``."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """A JSON-friendly description."""
        raise NotImplementedError


@dataclass(frozen=True)
class ContextValue(Condition):
    """Compare ``context[key]`` with ``value`` using ``op``."""

    key: str
    op: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown trigger operator {self.op!r}; use one of {list(OPERATORS)}")

    def evaluate(self, context: dict[str, Any]) -> bool:
        """Apply the comparison (a missing key only satisfies ``NotExists``/``NotEquals``)."""
        present = self.key in context
        if self.op == "Exists":
            return present
        if self.op == "NotExists":
            return not present
        if not present:
            return self.op == "NotEquals"
        actual = context[self.key]
        try:
            if self.op == "Equals":
                return bool(actual == self.value)
            if self.op == "NotEquals":
                return bool(actual != self.value)
            if self.op == "GreaterThan":
                return bool(actual > self.value)
            if self.op == "LessThan":
                return bool(actual < self.value)
            return self.value in actual  # Contains
        except TypeError:
            return False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description."""
        return {"type": "context_value", "key": self.key, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class _Combined(Condition):
    conditions: tuple[Condition, ...]
    kind: str

    def evaluate(self, context: dict[str, Any]) -> bool:
        results = (c.evaluate(context) for c in self.conditions)
        if self.kind == "all_of":
            return all(results)
        if self.kind == "any_of":
            return any(results)
        return not any(results)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "conditions": [c.to_dict() for c in self.conditions]}


def context_value(key: str, op: str, value: Any = None) -> Condition:
    """Rule on one context value; ``op`` is one of :data:`OPERATORS`."""
    return ContextValue(key, op, value)


def all_of(*conditions: Condition) -> Condition:
    """True when every rule is true."""
    return _Combined(tuple(conditions), "all_of")


def any_of(*conditions: Condition) -> Condition:
    """True when at least one rule is true."""
    return _Combined(tuple(conditions), "any_of")


def none_of(*conditions: Condition) -> Condition:
    """True when no rule is true."""
    return _Combined(tuple(conditions), "none_of")


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
    if kind == "context_value":
        extra = set(data) - {"type", "key", "op", "value"}
        if extra or not isinstance(data.get("key"), str):
            raise ValueError(
                "a context_value rule has exactly 'type', 'key' (a string), 'op' and 'value'"
                + (f"; unknown field(s) {sorted(extra)}" if extra else "")
            )
        return ContextValue(data["key"], data.get("op", ""), data.get("value"))
    if kind in ("all_of", "any_of", "none_of"):
        extra = set(data) - {"type", "conditions"}
        children = data.get("conditions")
        if extra or not isinstance(children, list):
            raise ValueError(f"an {kind} rule has exactly 'type' and 'conditions' (a list)")
        return _Combined(tuple(condition_from_dict(c) for c in children), kind)
    raise ValueError(
        f"unknown trigger rule type {kind!r}; use context_value, all_of, any_of or none_of"
    )
