"""Static task discovery: read ``@task(...)`` decorators from source without importing it.

A package is built for targets other than the host, so its dependencies (pydantic-core for macOS,
say) cannot be imported here. Discovery therefore parses the entry module, and every module of the
project it imports, with :mod:`ast`, and reads every ``@task`` argument (:mod:`.decorators`
turns each into a manifest entry through the one converter). Arguments must be static (literals,
the engine's declarative helpers, names of module-level functions; for dependencies, names of other
``@task`` functions); anything else is a :class:`~cloaca.errors.BuildError` pointing at
``[tool.cloaca.tasks]``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from cloaca.errors import BuildError
from cloaca.packaging.decorators import DiscoveredTask, ParsedModule, read_task, task_id_of

_CLOACA_MODULES = ("cloaca", "cloaca.task")

__all__ = ["DiscoveredTask", "discover_tasks", "module_path"]


def module_path(source_root: Path, module: str) -> Path | None:
    """Return the file of dotted ``module`` under ``source_root`` (``.py`` or package), or None."""
    base = source_root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def discover_tasks(source_root: Path, entry_module: str) -> list[DiscoveredTask]:
    """Find the ``@task`` functions of the entry module and of the project modules it imports.

    Parameters
    ----------
    source_root:
        The directory put on ``sys.path`` (the project's ``src/`` or its root).
    entry_module:
        Dotted name of the entry module (``[tool.cloaca] entry_module``).

    Returns
    -------
    list[DiscoveredTask]
        In module-visit then source order; ids are not yet checked for duplicates.

    Raises
    ------
    BuildError
        The entry module is missing, a module does not parse, or a decorator argument is not a
        literal.
    """
    entry = module_path(source_root, entry_module)
    if entry is None:
        base = source_root.joinpath(*entry_module.split("."))
        raise BuildError(
            f"entry module {entry_module!r} not found: looked for {base}.py and "
            f"{base}/__init__.py. Fix [tool.cloaca] entry_module or move the module under "
            f"{source_root}.",
            path=str(source_root),
        )
    modules: dict[str, ParsedModule] = {}
    queue = [(entry_module, entry)]
    while queue:
        name, path = queue.pop(0)
        if name in modules:
            continue
        mod = _parse(name, path)
        modules[name] = mod
        for dep in _project_imports(mod):
            dep_path = module_path(source_root, dep)
            if dep_path is not None and dep not in modules:
                queue.append((dep, dep_path))
    raw: list[tuple[ParsedModule, ast.FunctionDef | ast.AsyncFunctionDef, ast.expr]] = []
    for mod in modules.values():
        raw.extend((mod, fn, deco) for fn, deco in _decorated(mod))
    ids = {(mod.name, fn.name): task_id_of(mod, fn, deco) for mod, fn, deco in raw}
    return [read_task(mod, fn, deco, ids) for mod, fn, deco in raw]


def _parse(name: str, path: Path) -> ParsedModule:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise BuildError(
            f"cannot parse module {name!r} ({path}:{exc.lineno}): {exc.msg}", path=str(path)
        ) from exc
    mod = ParsedModule(name, path, tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "cloaca":
                    mod.cloaca_aliases.add(alias.asname or "cloaca")
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, package)
            for alias in node.names:
                local = alias.asname or alias.name
                if source in _CLOACA_MODULES and alias.name == "task":
                    mod.task_names.add(local)
                elif source is not None:
                    mod.imported[local] = (source, alias.name)
    return mod


def _absolute(node: ast.ImportFrom, package: str) -> str | None:
    if not node.level:
        return node.module
    parts = package.split(".") if package else []
    if node.level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base) or None


def _project_imports(mod: ParsedModule) -> Iterator[str]:
    """Yield every module ``mod`` may import; callers keep those that exist in the project."""
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
    for source, attr in mod.imported.values():
        yield source
        yield f"{source}.{attr}"  # `from pkg import submodule`
    # parent packages are imported too (their __init__ may define tasks)
    parts = mod.name.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i])


def _is_task_ref(mod: ParsedModule, node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in mod.task_names
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "task"
        and isinstance(node.value, ast.Name)
        and node.value.id in mod.cloaca_aliases
    )


def _decorated(
    mod: ParsedModule,
) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, ast.expr]]:
    for node in mod.tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for deco in node.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            if _is_task_ref(mod, target):
                yield node, deco
                break
