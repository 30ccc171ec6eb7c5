"""``cloacina workflow list | inspect NAME | run NAME [--context FILE|-] [--wait] | pause NAME |
resume NAME``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cloaca.cli.cloacina._context import EXIT_FAILED, EXIT_OK, Ctx
from cloaca.cli.cloacina.execution import TERMINAL, show_execution

COLUMNS = ("workflow_name", "version", "tasks", "description")


def cmd_list(ctx: Ctx, args: argparse.Namespace) -> int:
    """List the tenant's workflows."""
    ctx.emit(ctx.client.get(ctx.t("/workflows"))["items"], COLUMNS, id_key="workflow_name")
    return EXIT_OK


def cmd_inspect(ctx: Ctx, args: argparse.Namespace) -> int:
    """Show a workflow and its task graph."""
    detail = ctx.client.get(ctx.t(f"/workflows/{quote(args.name, safe='')}"))
    if ctx.output == "table":
        ctx.emit({k: v for k, v in detail.items() if k != "task_graph"})
        ctx.emit(detail["task_graph"], ("id", "dependencies", "description"), title="tasks")
    else:
        ctx.emit(detail, id_key="workflow_name")
    return EXIT_OK


def read_context(ctx: Ctx, source: str | None) -> dict[str, Any]:
    """The JSON object in ``source`` (a file, or ``-`` for stdin); ``{}`` when None."""
    if source is None:
        return {}
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        data = json.loads(text)
    except OSError as exc:
        raise ctx.fail(f"cannot read the context {source}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ctx.fail(f"the context in {source} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ctx.fail(f"the context in {source} must be a JSON object")
    return data


def wait(ctx: Ctx, eid: str, poll: float = 0.25) -> dict[str, Any]:
    """Poll the execution until it ends, showing task progress on stderr."""
    from rich.console import Console

    console = Console(stderr=True)
    detail: dict[str, Any] = {}
    with console.status("waiting for the execution...") as status:
        while True:
            detail = ctx.client.get(ctx.t(f"/executions/{eid}"))
            if detail["status"] in TERMINAL:
                return detail
            tasks = ctx.client.get(ctx.t(f"/executions/{eid}/tasks"))["tasks"]
            done = sum(t["status"] in ("Completed", "Failed", "Skipped") for t in tasks)
            running = [t["task_name"] for t in tasks if t["status"] == "Running"]
            status.update(
                f"{detail['status']}: {done}/{len(tasks)} tasks done"
                + (f" (running {', '.join(running)})" if running else "")
            )
            time.sleep(poll)


def cmd_run(ctx: Ctx, args: argparse.Namespace) -> int:
    """Start an execution; with ``--wait`` follow it to the end."""
    context = read_context(ctx, args.context)
    accepted = ctx.client.post(
        ctx.t(f"/workflows/{quote(args.name, safe='')}/execute"), {"context": context}
    )
    if not args.wait:
        ctx.emit(accepted, id_key="execution_id")
        return EXIT_OK
    detail = wait(ctx, accepted["execution_id"])
    show_execution(ctx, detail)
    return EXIT_OK if detail["status"] == "Completed" else EXIT_FAILED


def cmd_pause(ctx: Ctx, args: argparse.Namespace) -> int:
    """Pause a workflow: new executions are refused until it is resumed."""
    done = ctx.client.post(ctx.t(f"/workflows/{quote(args.name, safe='')}/pause"), {})
    ctx.emit(done, id_key="name")
    return EXIT_OK


def cmd_resume(ctx: Ctx, args: argparse.Namespace) -> int:
    """Resume a paused workflow: new executions are accepted again."""
    done = ctx.client.post(ctx.t(f"/workflows/{quote(args.name, safe='')}/resume"), {})
    ctx.emit(done, id_key="name")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add the ``workflow`` noun."""
    noun = sub.add_parser("workflow", help="list, inspect, run, pause and resume workflows")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("list", help="list workflows").set_defaults(handler=cmd_list)
    inspect = verbs.add_parser("inspect", help="show a workflow and its tasks")
    inspect.add_argument("name")
    inspect.set_defaults(handler=cmd_inspect)
    run = verbs.add_parser("run", help="execute a workflow")
    run.add_argument("name")
    run.add_argument("--context", metavar="FILE", help="input context: a JSON file, or - (stdin)")
    run.add_argument("--wait", action="store_true", help="wait for the end, showing progress")
    run.set_defaults(handler=cmd_run)
    pause = verbs.add_parser("pause", help="refuse new executions of a workflow until resumed")
    pause.add_argument("name")
    pause.set_defaults(handler=cmd_pause)
    resume = verbs.add_parser("resume", help="accept new executions of a paused workflow again")
    resume.add_argument("name")
    resume.set_defaults(handler=cmd_resume)
