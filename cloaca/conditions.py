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
