"""``cloacina execution list | status ID | events ID [--follow]``.

``events --follow`` streams over the delivery WebSocket (a ws-ticket, then the SDK's
protocol) and ends after the execution's last event.
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from cloaca.cli.cloacina._context import EXIT_FAILED, EXIT_OK, Ctx

TERMINAL = ("Completed", "Failed", "Cancelled")
EVENT_COLUMNS = ("sequence_num", "event_type", "task_name", "created_at", "event_data")


def show_execution(ctx: Ctx, detail: dict[str, Any]) -> None:
    """Print an execution: fields, then (tables only) its final context."""
    if ctx.output != "table":
        ctx.emit(detail, id_key="execution_id")
        return
    fields = ("execution_id", "workflow_name", "status", "started_at", "completed_at", "error")
    ctx.emit(detail, fields)
    if detail.get("context") is not None:
        print(json.dumps(detail["context"], indent=2))


def cmd_list(ctx: Ctx, args: argparse.Namespace) -> int:
    """List executions, newest first."""
    page = ctx.client.get(
        ctx.t("/executions"), status=args.status, workflow=args.workflow, limit=args.limit
    )
    ctx.emit(page["items"], ("id", "workflow_name", "status", "started_at", "completed_at"))
    return EXIT_OK


def cmd_status(ctx: Ctx, args: argparse.Namespace) -> int:
    """Show one execution (with its final context once finished)."""
    detail = ctx.client.get(ctx.t(f"/executions/{quote(args.id, safe='')}"))
    show_execution(ctx, detail)
    return EXIT_OK if detail["status"] != "Failed" else EXIT_FAILED


def cmd_events(ctx: Ctx, args: argparse.Namespace) -> int:
    """Print the execution's events; ``--follow`` streams them live."""
    if not args.follow:
        events = ctx.client.get(ctx.t(f"/executions/{quote(args.id, safe='')}/events"))["events"]
        ctx.emit(events, EVENT_COLUMNS)
        return EXIT_OK
    ctx.client.get(ctx.t(f"/executions/{quote(args.id, safe='')}"))  # 404 early, clearly
    _follow(ctx, args.id)
    return EXIT_OK


def _follow(ctx: Ctx, eid: str) -> None:
    from cloaca.remote.events import follow_events

    for event in follow_events(ctx.client, eid):
        if ctx.output == "json":
            print(json.dumps(event), flush=True)
        else:
            task = f" {event['task_name']}" if event.get("task_name") else ""
            print(f"{event['created_at']}  {event['event_type']}{task}", flush=True)


def register(sub: Any) -> None:
    """Add the ``execution`` noun."""
    noun = sub.add_parser("execution", help="list executions, show status and events")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = verbs.add_parser("list", help="list executions, newest first")
    lst.add_argument("--status", help="Pending, Running, Completed or Failed")
    lst.add_argument("--workflow", help="only this workflow")
    lst.add_argument("--limit", type=int, default=50)
    lst.set_defaults(handler=cmd_list)
    status = verbs.add_parser("status", help="show an execution and its final context")
    status.add_argument("id")
    status.set_defaults(handler=cmd_status)
    events = verbs.add_parser("events", help="show an execution's events")
    events.add_argument("id")
    events.add_argument("--follow", action="store_true", help="stream until the run ends")
    events.set_defaults(handler=cmd_events)
