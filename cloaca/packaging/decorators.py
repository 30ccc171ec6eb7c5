"""Reading one ``@task(...)`` decorator statically into a manifest entry (see :mod:`.discovery`).

The decorator's arguments are evaluated without importing the project
(:mod:`.static_eval`: literals, the engine's declarative helpers, names of module-level
functions), handed to :func:`cloaca.task.make_spec` — the very checks ``@task`` runs — and the
resulting :class:`~cloaca.task.TaskSpec` is written by the one converter,
:func:`cloaca.packaging.spec_codec.spec_to_entry`. Anything that is not static is a
:class:`~cloaca.errors.BuildError` pointing at ``[tool.cloaca.tasks]``; a lambda or another
option the manifest cannot carry is a :class:`~cloaca.errors.TaskOptionError`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloaca.errors import BuildError, TaskDefinitionError, TaskOptionError
from cloaca.packaging.manifest import TaskEntry
from cloaca.packaging.spec_codec import UNCARRIED, spec_to_entry
from cloaca.packaging.static_eval import IsLambda, NotStatic, evaluate
from cloaca.task import make_spec

#: ``@task`` keyword -> the manifest field it sets
OPTION_FIELDS: dict[str, tuple[str, ...]] = {
    "retry": ("retries", "retry"),
    "retry_attempts": ("retries", "retry"),
    "retry_backoff": ("retry",),
    "retry_delay_ms": ("retry",),
    "retry_max_delay_ms": ("retry",),
    "retry_condition": ("retry",),
    "retry_jitter": ("retry",),
    "timeout_seconds": ("timeout_seconds",),
    "trigger_rules": ("trigger_rules",),
    "on_success": ("on_success",),
    "on_failure": ("on_failure",),
}


@dataclass(frozen=True)
class DiscoveredTask:
    """A task read from a decorator: its manifest entry, as the one converter writes it.

    ``explicit`` names the manifest fields the decorator set itself (a docstring description is
    not explicit); ``location`` is ``file:line`` for error messages.
    """

    entry: TaskEntry
    explicit: frozenset[str] = frozenset()
    location: str = ""

    @property
    def id(self) -> str:
        """The task id."""
        return self.entry.id

    @property
    def function(self) -> str:
        """``"module.path:function_name"``."""
        return self.entry.function


def _placeholder(context: Any) -> Any:  # stands for the task function, which is never imported
    return context


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
    """Read one decorated function into its manifest entry.

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
        An argument that is not static, an unknown option, or an option ``@task`` itself would
        refuse (naming the task, file and line).
    TaskOptionError
        An option the manifest cannot carry (a lambda callback, say).
    """
    task_id = ids[(mod.name, fn.name)]
    where = _where(mod, fn)
    kw = kwargs_of(deco)
    _refuse_uncarried(mod, fn, task_id, kw)
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
    functions = {
        n.name for n in mod.tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    options: dict[str, Any] = {}
    for name, node in kw.items():
        if name in ("id", "dependencies", "description"):
            continue
        if name not in OPTION_FIELDS:
            raise BuildError(
                f"task {task_id!r} ({_where(mod, node)}): unknown @task option {name!r}; "
                f"known: id, dependencies, description, {', '.join(OPTION_FIELDS)}.",
                path=str(mod.path),
            )
        try:
            options[name] = evaluate(mod, node, functions)
        except IsLambda:
            raise TaskOptionError(
                f"is a lambda ({_where(mod, node)}), which cannot be written into the manifest. "
                f"Define a module-level function (`def name(...)`) and pass it: {name}=name.",
                path=str(mod.path),
                task_id=task_id,
                field=name,
            ) from None
        except NotStatic:
            if name in ("on_success", "on_failure") and isinstance(node, ast.Name):
                raise TaskOptionError(
                    f"{node.id!r} ({_where(mod, node)}) is not a module-level function of "
                    f"{mod.name} nor an imported one (a nested function or a variable?), so it "
                    "cannot be written into the manifest by reference. Define it with `def` at "
                    "the top level of a project module.",
                    path=str(mod.path),
                    task_id=task_id,
                    field=name,
                ) from None
            raise _not_literal(mod, fn, task_id, f"{name}=", node) from None
        except (ValueError, TypeError) as exc:  # a helper refused its arguments
            raise BuildError(
                f"task {task_id!r} ({_where(mod, node)}): invalid {name}=: {exc}",
                path=str(mod.path),
            ) from exc
        if options[name] is not None:
            explicit.update(OPTION_FIELDS[name])
    function = f"{mod.name}:{fn.name}"
    try:
        spec = make_spec(
            _placeholder,
            id=task_id,
            dependencies=list(dict.fromkeys(deps)),
            description=description or None,
            **options,
        )
        entry = spec_to_entry(spec, function=function)
    except TaskOptionError as exc:
        raise TaskOptionError(
            f"{exc.message} ({where})", path=str(mod.path), task_id=task_id, field=exc.field
        ) from exc
    except TaskDefinitionError as exc:
        raise BuildError(f"{exc} ({where})", path=str(mod.path)) from exc
    return DiscoveredTask(entry=entry, explicit=frozenset(explicit), location=where)


def _refuse_uncarried(
    mod: ParsedModule,
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    task_id: str,
    kw: dict[str, ast.expr],
) -> None:
    """Refuse what the manifest cannot carry: ``invokes=``/``post_invocation=`` and the
    ``@workflow_params``/``@workflow_secrets`` decorators stacked on the task."""
    found: list[tuple[str, ast.AST]] = [
        (n, kw[n]) for n in ("invokes", "post_invocation") if n in kw
    ]
    for other in fn.decorator_list:
        target = other.func if isinstance(other, ast.Call) else other
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("workflow_params", "workflow_secrets"):
            found.append((name, other))
    if found:
        option, node = found[0]
        raise TaskOptionError(
            f"{UNCARRIED[option]} ({_where(mod, node)})",
            path=str(mod.path),
            task_id=task_id,
            field=option,
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
