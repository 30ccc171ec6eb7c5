"""Tables for humans (rich): a list of rows, or one object as field/value pairs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return str(value)


def print_table(
    data: dict[str, Any] | list[dict[str, Any]],
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Print rows (or one object) as a table on stdout."""
    console = Console(soft_wrap=False)
    if isinstance(data, dict):
        table = Table(title=title, show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key in columns or list(data):
            table.add_row(key, _cell(data.get(key)))
        console.print(table)
        return
    if not data:
        console.print("(none)")
        return
    cols = list(columns or data[0].keys())
    table = Table(title=title)
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in data:
        table.add_row(*(_cell(row.get(c)) for c in cols))
    console.print(table)
