"""Reading one ``@task(...)`` decorator's arguments statically (see :mod:`.discovery`).

The manifest fields must be literals in the decorator (dependencies may also be names of other
``@task`` functions of the project); anything else is a :class:`~cloaca.errors.BuildError` that
points at ``[tool.cloaca.tasks]``. Supported retry forms: ``retry_attempts=N``,
``retry=RetryPolicy.default()``, ``retry=RetryPolicy.none()``,
``retry=RetryPolicy(max_attempts=N)``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloaca.errors import BuildError


@dataclass(frozen=True)
class DiscoveredTask:
    """A task read from a decorator.

    ``explicit`` names the manifest fields the decorator set itself (a docstring description is
    not explicit); ``location`` is ``file:line`` for error messages.
    """

    id: str
    function: str
    dependencies: tuple[str, ...] = ()
    description: str | None = None
    retries: int = 0
    timeout_seconds: int | None = None
    explicit: frozenset[str] = frozenset()
    location: str = ""


@dataclass
class ParsedModule:
    """A parsed project module and the names it binds to ``cloaca.task`` and other modules."""

    name: str
    path: Path
    tree: ast.Module
    task_names: set[str] = field(default_factory=set)  # local names bound to cloaca.task
    cloaca_aliases: set[str] = field(default_factory=set)  # local names bound to cloaca module
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, attr)


def kwargs_of(deco: ast.expr) -> dict[str, ast.expr]:
    """Return the keyword arguments of a decorator call (none for a bare ``@task``)."""
    if not isinstance(deco, ast.Call):
        return {}
    return {kw.arg: kw.value for kw in deco.keywords if kw.arg is not None}


def _where(mod: ParsedModule, node: ast.AST) -> str:
    return f"{mod.path}:{getattr(node, 'lineno', 0)}"


def _not_literal(
    mod: ParsedModule, fn: ast.AST, task_id: str, what: str, node: ast.AST
) -> BuildError:
    return BuildError(
        f"task {task_id!r} ({_where(mod, node)}): cannot read {what} statically. Use a literal "
        f"in the decorator, or declare it under [tool.cloaca.tasks.{task_id!r}] in pyproject.toml.",
        path=str(mod.path),
    )


def task_id_of(
    mod: ParsedModule, fn: ast.FunctionDef | ast.AsyncFunctionDef, deco: ast.expr
) -> str:
    """Return the task id a decorator gives ``fn``: its literal ``id=``, else the function name.

    Raises
    ------
    BuildError
        When ``id=`` is not a string literal.
    """
    node = kwargs_of(deco).get("id")
    if node is None:
        return fn.name
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise _not_literal(mod, fn, fn.name, "id=", node)


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return _NOT_LITERAL


_NOT_LITERAL = object()


def read_task(
    mod: ParsedModule,
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    deco: ast.expr,
    ids: dict[tuple[str, str], str],
) -> DiscoveredTask:
    """Read the manifest fields of one decorated function.

    Parameters
    ----------
    mod, fn, deco:
        The module, the function and its ``@task`` decorator node.
    ids:
        ``(module, function name) -> task id`` for every task of the project, to turn function
        references in ``dependencies=[...]`` into ids.

    Raises
    ------
    BuildError
        For an argument that is not a literal (naming the task, file and line).
    """
    task_id = ids[(mod.name, fn.name)]
    kw = kwargs_of(deco)
    explicit: set[str] = set()
    deps: list[str] = []
    if "dependencies" in kw:
        explicit.add("dependencies")
        node = kw["dependencies"]
        if not isinstance(node, ast.List | ast.Tuple):
            raise _not_literal(mod, fn, task_id, "dependencies=", node)
        deps = [_dependency(mod, fn, task_id, elt, ids) for elt in node.elts]
    description = ast.get_docstring(fn)
    if "description" in kw:
        explicit.add("description")
        value = _literal(kw["description"])
        if value is not None and not isinstance(value, str):
            raise _not_literal(mod, fn, task_id, "description=", kw["description"])
        description = value
    retries = _retries(mod, fn, task_id, kw)
    if retries is not None:
        explicit.add("retries")
    timeout: int | None = None
    if "timeout_seconds" in kw:
        value = _literal(kw["timeout_seconds"])
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise _not_literal(
                    mod, fn, task_id, "timeout_seconds= (> 0)", kw["timeout_seconds"]
                )
            timeout = math.ceil(value)  # the manifest stores whole seconds
            explicit.add("timeout_seconds")
    return DiscoveredTask(
        id=task_id,
        function=f"{mod.name}:{fn.name}",
        dependencies=tuple(dict.fromkeys(deps)),
        description=description or None,
        retries=retries or 0,
        timeout_seconds=timeout,
        explicit=frozenset(explicit),
        location=_where(mod, fn),
    )


def _dependency(
    mod: ParsedModule,
    fn: ast.AST,
    task_id: str,
    node: ast.expr,
    ids: dict[tuple[str, str], str],
) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        key = mod.imported.get(node.id, (mod.name, node.id))
        if key in ids:
            return ids[key]
    raise _not_literal(mod, fn, task_id, f"dependency {ast.unparse(node)!r}", node)


def _retries(mod: ParsedModule, fn: ast.AST, task_id: str, kw: dict[str, ast.expr]) -> int | None:
    if "retry_attempts" in kw:
        value = _literal(kw["retry_attempts"])
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _not_literal(
                mod, fn, task_id, "retry_attempts= (an int >= 0)", kw["retry_attempts"]
            )
        return value
    node = kw.get("retry")
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return None
    # RetryPolicy.default() / RetryPolicy.none() / RetryPolicy(max_attempts=N)
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func).rsplit(".", 1)[-1]
        if name == "default" and not node.args:
            return 2
        if name == "none" and not node.args:
            return 0
        attempts = {k.arg: k.value for k in node.keywords}.get("max_attempts")
        if name == "RetryPolicy" and attempts is not None:
            value = _literal(attempts)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                return value - 1
    raise _not_literal(mod, fn, task_id, "retry=", node)
