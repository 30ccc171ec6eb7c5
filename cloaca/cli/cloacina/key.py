"""``cloacina key create NAME [--role] | list | revoke ID``.

Keys are created in ``--tenant`` (tenant admin keys may do this); ``--global`` manages the
server-wide key list (the server's admin key only).
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from cloaca.cli.cloacina._context import EXIT_OK, Ctx

COLUMNS = ("id", "name", "permissions", "tenant_id", "revoked", "created_at")


def _base(ctx: Ctx, args: argparse.Namespace) -> str:
    return "/v1/auth/keys" if args.global_ else ctx.t("/keys")


def cmd_create(ctx: Ctx, args: argparse.Namespace) -> int:
    """Create a key; the key itself is shown once."""
    created = ctx.client.post(_base(ctx, args), {"name": args.name, "role": args.role})
    ctx.emit(created, id_key="key")
    if ctx.output == "table":
        ctx.note("store the key now: it cannot be shown again")
    return EXIT_OK


def cmd_list(ctx: Ctx, args: argparse.Namespace) -> int:
    """List keys (never their values)."""
    ctx.emit(ctx.client.get(_base(ctx, args))["items"], COLUMNS)
    return EXIT_OK


def cmd_revoke(ctx: Ctx, args: argparse.Namespace) -> int:
    """Revoke a key."""
    ctx.emit(ctx.client.delete(f"{_base(ctx, args)}/{quote(args.id, safe='')}"))
    return EXIT_OK


def register(sub: Any) -> None:
    """Add the ``key`` noun."""
    noun = sub.add_parser("key", help="create, list and revoke API keys")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, helptext, handler in (
        ("create", "create a key", cmd_create),
        ("list", "list keys", cmd_list),
        ("revoke", "revoke a key", cmd_revoke),
    ):
        p = verbs.add_parser(verb, help=helptext)
        if verb == "create":
            p.add_argument("name")
            p.add_argument("--role", choices=["read", "write", "admin"], default="read")
        if verb == "revoke":
            p.add_argument("id")
        p.add_argument(
            "--global", dest="global_", action="store_true", help="server-wide (admin key only)"
        )
        p.set_defaults(handler=handler)
