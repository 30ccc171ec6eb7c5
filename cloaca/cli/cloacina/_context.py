"""What every ``cloacina`` command shares: resolved global options (flags, then the rules of
:mod:`cloaca.remote.profiles`: environment, profiles in ``<home>/config.toml``, the local
server), the API client, and output (``-o table|json|id``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cloaca.errors import CloacaError
from cloaca.remote.profiles import (
    cloacina_home,
    read_profile,
    resolve_api_key,
    resolve_server,
    resolve_tenant,
)

if TYPE_CHECKING:
    from cloaca.remote.client import ApiClient

EXIT_OK, EXIT_FAILED, EXIT_DOWN, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(CloacaError):
    """A command failed for a reason the user can fix; ``hint`` says how."""

    _fields: tuple[str, ...] = ("message", "hint")
    hint: str | None


class Ctx:
    """Resolved options of one ``cloacina`` invocation and its output helpers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.output: str = args.output
        self.home = cloacina_home(args.home)
        self.profile = read_profile(self.home, args.profile)

    @cached_property
    def server(self) -> str:
        """The server URL."""
        return resolve_server(self.args.server, self.profile, self.home)

    @cached_property
    def api_key(self) -> str | None:
        """The API key, or None when none is configured."""
        return resolve_api_key(self.args.api_key, self.profile, self.home)

    @cached_property
    def tenant(self) -> str:
        """The tenant of tenant-scoped commands."""
        return resolve_tenant(self.args.tenant, self.profile)

    @cached_property
    def client(self) -> ApiClient:
        """The HTTP client for ``server`` with ``api_key``."""
        from cloaca.remote.client import ApiClient

        return ApiClient(self.server, self.api_key)

    def t(self, path: str) -> str:
        """``/v1/tenants/<tenant><path>``."""
        from urllib.parse import quote

        return f"/v1/tenants/{quote(self.tenant, safe='')}{path}"

    # ------------------------------------------------------------------ output
    def emit(
        self,
        data: dict[str, Any] | list[dict[str, Any]],
        columns: Sequence[str] | None = None,
        id_key: str = "id",
        title: str | None = None,
    ) -> None:
        """Print ``data`` as a table (default), JSON (``-o json``) or ids (``-o id``)."""
        if self.output == "json":
            print(json.dumps(data, indent=2, default=str))
        elif self.output == "id":
            for row in data if isinstance(data, list) else [data]:
                print(row.get(id_key, ""))
        else:
            from cloaca.cli.cloacina._output import print_table

            print_table(data, columns, title)

    def note(self, message: str) -> None:
        """An informational line on stderr (kept out of ``-o json`` output)."""
        print(message, file=sys.stderr)

    def fail(self, message: str, hint: str | None = None) -> CliError:
        """An error to raise; the CLI prints it with ``hint`` and exits 1."""
        return CliError(message, hint=hint)
