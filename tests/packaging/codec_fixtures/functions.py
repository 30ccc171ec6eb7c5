"""Module-level task functions and callbacks the spec-codec tests refer to by reference."""

from __future__ import annotations

from typing import Any


def plain(context: Any) -> Any:
    return context


async def coro(context: Any) -> Any:
    return context


def with_handle(context: Any, handle: Any) -> Any:
    return context


def on_ok(task_id: str, context: Any) -> None:
    context["ok"] = task_id


def on_err(task_id: str, error: str, context: Any) -> None:
    context["err"] = str(error)


class Holder:
    @staticmethod
    def nested_ok(task_id: str, context: Any) -> None:
        return None


TASK_FUNCTIONS = [plain, coro, with_handle]
SUCCESS_CALLBACKS = [None, on_ok, Holder.nested_ok]
FAILURE_CALLBACKS = [None, on_err]
