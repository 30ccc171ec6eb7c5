"""``cloacina`` (also ``cloacinactl``): the noun-verb CLI for the server.

Nouns: ``package``, ``workflow``, ``execution``, ``key``, ``tenant``, ``server`` (one module
each). This module parses the global options and is the one error boundary: it prints
``error: ...`` and a hint on stderr and picks the exit status (1 failure, 2 usage or server
down, 130 interrupted).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cloaca.cli.cloacina import execution, key, package, server, tenant, workflow
from cloaca.cli.cloacina._context import (
    EXIT_DOWN,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    CliError,
    Ctx,
)
from cloaca.errors import ApiError, ClientConfigError, CloacaError

_HINTS = {
    "unauthorized": "pass a valid key with --api-key (raw, env:VAR or file:PATH)",
    "tenant_access_denied": "use a key of this tenant, or pick its tenant with --tenant",
    "insufficient_permissions": "use a key with a stronger role (read < write < admin)",
    "admin_required": "use the server's admin key (<home>/bootstrap-key)",
    "workflow_not_found": "list workflows with `cloacina workflow list`",
    "execution_not_found": "list executions with `cloacina execution list`",
    "tenant_not_found": "list tenants with `cloacina tenant list`",
    "upload_failed": "rebuild the package with `cloaca build`",
    "workflow_running": "wait for its executions, or pass --force",
    "package_exists": "bump the version in pyproject.toml, or delete the installed one",
}


def _add_globals(parser: argparse.ArgumentParser, *, leaf: bool) -> None:
    """The global options; on verbs too (``cloacina package list -o json``), where they
    only override what was given before the noun."""
    default = argparse.SUPPRESS if leaf else None
    taken = parser._option_string_actions
    options = [
        (("--server",), "server URL (default: profile, or the local server)"),
        (("--api-key",), "API key: raw, env:VAR or file:PATH"),
        (("--tenant",), "tenant (default: public)"),
        (("--profile",), "profile in <home>/config.toml"),
        (("--home",), "cloacina home (default: $CLOACINA_HOME or ~/.cloacina)"),
    ]
    for flags, text in options:
        if flags[0] not in taken:
            parser.add_argument(*flags, default=default, help=text)
    parser.add_argument(
        "-o",
        "--output",
        choices=["table", "json", "id"],
        default=argparse.SUPPRESS if leaf else "table",
        help="output format (default: table)",
    )


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    return [leaf for child in subs[0].choices.values() for leaf in _leaves(child)]


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``cloacina``."""
    parser = argparse.ArgumentParser(
        prog="cloacina", description="Drive a Cloacina-compatible workflow server."
    )
    _add_globals(parser, leaf=False)
    sub = parser.add_subparsers(dest="noun", metavar="NOUN", required=True)
    for noun in (package, workflow, execution, key, tenant, server):
        noun.register(sub)
    for leaf in _leaves(parser):
        _add_globals(leaf, leaf=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cloacina``; return the exit status."""
    args = make_parser().parse_args(argv)
    try:
        ctx = Ctx(args)
        code: int = args.handler(ctx, args)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ApiError as exc:
        print(f"error: {exc.message} (HTTP {exc.status}, {exc.code})", file=sys.stderr)
        hint = _HINTS.get(exc.code or "")
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return EXIT_FAILED
    except (CliError, ClientConfigError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_FAILED
    except CloacaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as exc:  # malformed flags found after parsing (e.g. --bind)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DOWN
    except Exception as exc:
        if not _unreachable(exc):
            raise
        where = getattr(args, "server", None) or "the server"
        print(f"error: cannot reach {where}: {exc}", file=sys.stderr)
        print("hint: is it running? `cloacina server status`, or pass --server", file=sys.stderr)
        return EXIT_FAILED


def _unreachable(exc: Exception) -> bool:
    httpx = sys.modules.get("httpx")  # imported only by commands that talk to a server
    return isinstance(exc, OSError) or (httpx is not None and isinstance(exc, httpx.TransportError))


if __name__ == "__main__":
    sys.exit(main())
