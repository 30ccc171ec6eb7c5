"""``cloacina package upload FILE | list | inspect ID | delete ID [--force]``.

A package is one uploaded ``.cloaca`` archive (one version of a workflow). ``ID`` is the
package id, or a package name (its newest version), or ``name@version``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cloaca.cli.cloacina._context import EXIT_OK, Ctx

COLUMNS = ("id", "package_name", "version", "tasks", "created_at")


def find(ctx: Ctx, ident: str) -> dict[str, Any]:
    """The package (list item) named by ``ident``."""
    items: list[dict[str, Any]] = ctx.client.get(ctx.t("/workflows"))["items"]
    name, _, version = ident.partition("@")
    hits = [i for i in items if i["id"] == ident] or [
        i for i in items if i["package_name"] == name and (not version or i["version"] == version)
    ]
    if not hits:
        raise ctx.fail(
            f"no package {ident!r} in tenant {ctx.tenant!r}",
            "list them with `cloacina package list`",
        )
    return hits[-1]


def cmd_upload(ctx: Ctx, args: argparse.Namespace) -> int:
    """Upload a ``.cloaca`` archive."""
    path = Path(args.file)
    if not path.is_file():
        raise ctx.fail(f"no such file: {path}", "build one with `cloaca build`")
    result = ctx.client.upload(ctx.t("/workflows"), path)
    ctx.emit(result, id_key="package_id")
    return EXIT_OK


def cmd_list(ctx: Ctx, args: argparse.Namespace) -> int:
    """List the tenant's packages."""
    ctx.emit(ctx.client.get(ctx.t("/workflows"))["items"], COLUMNS)
    return EXIT_OK


def cmd_inspect(ctx: Ctx, args: argparse.Namespace) -> int:
    """Show one package with its task graph."""
    item = find(ctx, args.id)
    detail = ctx.client.get(ctx.t(f"/workflows/{quote(item['package_name'], safe='')}"))
    if detail["id"] != item["id"]:  # an older version: the list item is what we have
        detail = {**item, "active": False}
    ctx.emit(detail)
    return EXIT_OK


def cmd_delete(ctx: Ctx, args: argparse.Namespace) -> int:
    """Delete one package version."""
    item = find(ctx, args.id)
    name, version = quote(item["package_name"], safe=""), quote(item["version"], safe="")
    result = ctx.client.delete(
        ctx.t(f"/workflows/{name}/{version}"), force="true" if args.force else None
    )
    ctx.emit({**result, "id": item["id"]})
    return EXIT_OK


def register(sub: Any) -> None:
    """Add the ``package`` noun."""
    noun = sub.add_parser("package", help="upload, list, inspect and delete packages")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)
    upload = verbs.add_parser("upload", help="upload a .cloaca archive")
    upload.add_argument("file", help="the archive (built with `cloaca build`)")
    upload.set_defaults(handler=cmd_upload)
    verbs.add_parser("list", help="list packages").set_defaults(handler=cmd_list)
    inspect = verbs.add_parser("inspect", help="show a package")
    inspect.add_argument("id", help="package id, name, or name@version")
    inspect.set_defaults(handler=cmd_inspect)
    delete = verbs.add_parser("delete", help="delete a package version")
    delete.add_argument("id", help="package id, name, or name@version")
    delete.add_argument("--force", action="store_true", help="even with running executions")
    delete.set_defaults(handler=cmd_delete)
