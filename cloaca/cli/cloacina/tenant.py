"""``cloacina tenant create NAME | list | delete NAME`` (the server's admin key only)."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from cloaca.cli.cloacina._context import EXIT_OK, Ctx


def cmd_create(ctx: Ctx, args: argparse.Namespace) -> int:
    """Create a tenant."""
    body = {"name": args.name, "description": args.description}
    ctx.emit(ctx.client.post("/v1/tenants", body), id_key="name")
    return EXIT_OK


def cmd_list(ctx: Ctx, args: argparse.Namespace) -> int:
    """List tenants."""
    ctx.emit(ctx.client.get("/v1/tenants")["items"], ("name",), id_key="name")
    return EXIT_OK


def cmd_delete(ctx: Ctx, args: argparse.Namespace) -> int:
    """Delete a tenant with its executions and packages; revoke its keys."""
    ctx.emit(ctx.client.delete(f"/v1/tenants/{quote(args.name, safe='')}"), id_key="schema_name")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add the ``tenant`` noun."""
    noun = sub.add_parser("tenant", help="create, list and delete tenants")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = verbs.add_parser("create", help="create a tenant")
    create.add_argument("name")
    create.add_argument("--description")
    create.set_defaults(handler=cmd_create)
    verbs.add_parser("list", help="list tenants").set_defaults(handler=cmd_list)
    delete = verbs.add_parser("delete", help="delete a tenant and its data")
    delete.add_argument("name")
    delete.set_defaults(handler=cmd_delete)
