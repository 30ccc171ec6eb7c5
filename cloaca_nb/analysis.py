"""Static name analysis of notebook cells: which statements a set of tasks needs.

Every cell the session saw is turned into plain Python (IPython's transformer rewrites magics into
``get_ipython()`` calls, which are then dropped) and split into top-level statements. For each
statement :mod:`symtable` tells the names it defines, the names it reads when it runs (decorators,
default values, right-hand sides) and the names its function bodies read later, when called.

Starting from the ``def`` of every task, a name read *now* resolves to the last statement before
it that defines the name; a name read *later* resolves to the last definition in the notebook.
Statements that only mutate a needed name (``config["k"] = v``, ``obj.attr = v``) come along with
it. Everything else -- exploration, displays, plots -- is left out. A name that no statement
defines and that is not a builtin is an :class:`~cloaca_nb.errors.UnresolvedNameError`.
"""

from __future__ import annotations

import ast
import builtins
import symtable
from dataclasses import dataclass, field

from cloaca_nb.errors import ExportError, UnresolvedNameError
from cloaca_nb.session import CellRecord, NotebookSession

_BUILTINS = frozenset(dir(builtins)) | {"__name__", "__doc__", "__file__", "__builtins__"}


@dataclass
class Statement:
    """One top-level statement of a cell and the names it defines and reads."""

    cell: CellRecord
    index: int
    node: ast.stmt
    source: str
    lineno: int  # first line in the cell (decorators included), 1-based
    defines: frozenset[str]
    reads_now: frozenset[str]
    reads_later: frozenset[str]
    mutates: frozenset[str] = field(default_factory=frozenset)
    star: bool = False


def _cell_python(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return str(TransformerManager().transform_cell(source))


def _is_ipython_call(node: ast.stmt) -> bool:
    """``get_ipython().run_line_magic(...)`` and friends left by the transformer."""
    value = node.value if isinstance(node, ast.Expr | ast.Assign) else None
    while isinstance(value, ast.Call | ast.Attribute):
        value = value.func if isinstance(value, ast.Call) else value.value
    return isinstance(value, ast.Name) and value.id == "get_ipython"


def _later_reads(table: symtable.SymbolTable) -> set[str]:
    names = set()
    for child in table.get_children():
        if child.get_type() == "function":
            names |= {
                s.get_name() for s in child.get_symbols() if s.is_global() and s.is_referenced()
            }
        names |= _later_reads(child)
    return names


def _class_reads(table: symtable.SymbolTable) -> set[str]:
    names = set()
    for child in table.get_children():
        if child.get_type() == "class":
            names |= {
                s.get_name() for s in child.get_symbols() if s.is_global() and s.is_referenced()
            }
            names |= _class_reads(child)
    return names


def _mutated(node: ast.stmt) -> frozenset[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    out = set()
    for target in targets:
        base = target
        while isinstance(base, ast.Subscript | ast.Attribute):
            base = base.value
        if base is not target and isinstance(base, ast.Name):
            out.add(base.id)
    return frozenset(out)


def parse_cell(cell: CellRecord, start: int) -> list[Statement]:
    """Split ``cell`` into :class:`Statement` objects numbered from ``start`` (none if invalid)."""
    code = _cell_python(cell.source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    out: list[Statement] = []
    for node in tree.body:
        if _is_ipython_call(node):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        lines = code.splitlines()[first - 1 : node.end_lineno]
        source = "\n".join(lines)
        table = symtable.symtable(ast.unparse(node), "<cell>", "exec")
        symbols = table.get_symbols()
        out.append(
            Statement(
                cell=cell,
                index=start + len(out),
                node=node,
                source=source,
                lineno=first,
                defines=frozenset(
                    s.get_name() for s in symbols if s.is_assigned() or s.is_imported()
                ),
                reads_now=frozenset(
                    {s.get_name() for s in symbols if s.is_referenced()} | _class_reads(table)
                ),
                reads_later=frozenset(_later_reads(table)),
                mutates=_mutated(node),
                star=isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names),
            )
        )
    return out


def notebook_statements(session: NotebookSession) -> list[Statement]:
    """Every statement of every cell the session saw, cells in place order (a re-run cell keeps
    the place where it first ran; see :mod:`cloaca_nb.session`)."""
    statements: list[Statement] = []
    for cell in session.cells_in_place_order():
        statements += parse_cell(cell, len(statements))
    return statements


def task_statement(
    session: NotebookSession, task_id: str, statements: list[Statement]
) -> Statement:
    """The ``def`` statement of ``task_id`` in the cell that defined it."""
    cell, spec = session.cell_of(task_id), session.specs()[task_id]
    name = getattr(spec.fn, "__name__", task_id)
    for stmt in reversed(statements):
        if (
            stmt.cell is cell
            and isinstance(stmt.node, ast.FunctionDef | ast.AsyncFunctionDef)
            and stmt.node.name == name
        ):
            return stmt
    raise ExportError(
        f"cannot find `def {name}` for task {task_id!r} in its cell; define tasks with "
        "`@task(...)` on a `def` at the top level of a cell",
        task_id=task_id,
        name=name,
    )


def needed_statements(
    session: NotebookSession, task_ids: list[str], statements: list[Statement] | None = None
) -> list[Statement]:
    """The statements ``task_ids`` need, in notebook order (see the module docstring).

    Raises
    ------
    UnresolvedNameError
        A task (directly or through a helper) reads a name no cell defines.
    """
    stmts = statements if statements is not None else notebook_statements(session)
    chosen: dict[int, Statement] = {}
    queue: list[tuple[Statement, str]] = []
    for task_id in task_ids:
        queue.append((task_statement(session, task_id, stmts), task_id))

    def definition(name: str, before: int | None) -> Statement | None:
        for stmt in reversed(stmts if before is None else stmts[:before]):
            if name in stmt.defines:
                return stmt
        for stmt in reversed(stmts if before is None else stmts[:before]):
            if stmt.star:
                return stmt
        return None

    while queue:
        stmt, root = queue.pop()
        if stmt.index in chosen:
            continue
        chosen[stmt.index] = stmt
        wanted = [(n, stmt.index) for n in stmt.reads_now] + [(n, None) for n in stmt.reads_later]
        for name, before in wanted:
            found = definition(name, before)
            if found is None:
                if name in _BUILTINS:
                    continue
                raise UnresolvedNameError(task_id=root, name=name)
            queue.append((found, root))
        for name in stmt.defines:  # later mutations of what this statement defines
            for other in stmts[stmt.index + 1 :]:
                if name in other.mutates:
                    queue.append((other, root))
    return [chosen[i] for i in sorted(chosen)]
