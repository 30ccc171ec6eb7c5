"""Evaluating one ``@task(...)`` option expression without importing the project.

A decorator argument becomes a Python value when it is made only of literals, the engine's
declarative helpers (the trigger-rule helpers such as ``context_value``/``task_failed``/
``all_of``, ``RetryPolicy`` and its builder, ``BackoffStrategy``, ``RetryCondition``) and names
of module-level functions, which
become :class:`~cloaca.packaging.spec_codec.FunctionRef` references (for callbacks). Nothing of
the project runs. A lambda is refused with its own message (it can never be carried); anything
else raises :class:`NotStatic` and the caller points at ``[tool.cloaca.tasks]``.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from cloaca import conditions, retry
from cloaca.packaging.spec_codec import FunctionRef

if TYPE_CHECKING:
    from cloaca.packaging.decorators import ParsedModule

#: the helpers a decorator may call, by the modules that export them
HELPERS: dict[str, Any] = {
    "context_value": conditions.context_value,
    "all_of": conditions.all_of,
    "any_of": conditions.any_of,
    "none_of": conditions.none_of,
    "always": conditions.always,
    "task_success": conditions.task_success,
    "task_failed": conditions.task_failed,
    "task_skipped": conditions.task_skipped,
    "RetryPolicy": retry.RetryPolicy,
    "BackoffStrategy": retry.BackoffStrategy,
    "RetryCondition": retry.RetryCondition,
}
_HELPER_MODULES = ("cloaca", "cloaca.conditions", "cloaca.retry")
# objects whose public attributes (static constructors, builder methods) may be used
_OPEN = (retry.RetryPolicy, retry.RetryPolicyBuilder, retry.BackoffStrategy, retry.RetryCondition)


class NotStatic(Exception):
    """The expression cannot be evaluated without running project code."""


class IsLambda(Exception):
    """The expression is (or contains) a lambda."""


def evaluate(mod: ParsedModule, node: ast.expr, functions: set[str]) -> Any:
    """Evaluate ``node`` (see the module docstring).

    Parameters
    ----------
    mod:
        The module the decorator is in (its imports say what names mean).
    node:
        The argument expression.
    functions:
        Names of the module's top-level functions.

    Raises
    ------
    IsLambda, NotStatic
    """
    if isinstance(node, ast.Lambda):
        raise IsLambda
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        try:
            return ast.literal_eval(node)
        except ValueError as exc:
            raise NotStatic from exc
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = [evaluate(mod, elt, functions) for elt in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise NotStatic
        return {
            evaluate(mod, k, functions): evaluate(mod, v, functions)  # type: ignore[arg-type]
            for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.Name):
        return _name(mod, node.id, functions)
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in mod.cloaca_aliases:
            if node.attr in HELPERS:
                return HELPERS[node.attr]
            raise NotStatic
        base = evaluate(mod, node.value, functions)
        if node.attr.startswith("_") or not _is_open(base):
            raise NotStatic
        return getattr(base, node.attr)
    if isinstance(node, ast.Call):
        func = _callee(mod, node.func, functions)
        args = [evaluate(mod, a, functions) for a in node.args if not isinstance(a, ast.Starred)]
        if len(args) != len(node.args) or any(k.arg is None for k in node.keywords):
            raise NotStatic
        kwargs = {str(k.arg): evaluate(mod, k.value, functions) for k in node.keywords}
        return func(*args, **kwargs)  # helpers raise ValueError/TypeError for bad arguments
    raise NotStatic


def _callee(mod: ParsedModule, node: ast.expr, functions: set[str]) -> Any:
    """A callable a decorator may call: a helper, or a public method of a helper object."""
    if isinstance(node, ast.Attribute) and not (
        isinstance(node.value, ast.Name) and node.value.id in mod.cloaca_aliases
    ):
        base = evaluate(mod, node.value, functions)
        if node.attr.startswith("_") or not _is_open(base):
            raise NotStatic
        return getattr(base, node.attr)
    func = evaluate(mod, node, functions)
    if not any(func is helper for helper in HELPERS.values()):
        raise NotStatic
    return func


def _is_open(obj: Any) -> bool:
    return obj in _OPEN or isinstance(obj, _OPEN)


def _name(mod: ParsedModule, name: str, functions: set[str]) -> Any:
    if name in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[name]
    source = mod.imported.get(name)
    if source is not None:
        module, attr = source
        if module in _HELPER_MODULES:
            if attr in HELPERS:
                return HELPERS[attr]
            raise NotStatic
        return FunctionRef(f"{module}:{attr}")  # an imported function, by reference
    if name in functions:
        return FunctionRef(f"{mod.name}:{name}")
    raise NotStatic
