"""What every ``cloacina`` command shares: resolved global options (flags, environment,
profiles in ``<home>/config.toml``), the API client, and output (``-o table|json|id``).

Resolution order for ``--server``, ``--api-key`` and ``--tenant``: the flag, then
``CLOACINA_SERVER`` / ``CLOACINA_API_KEY`` / ``CLOACINA_TENANT``, then the profile
(``--profile``, ``$CLOACINA_PROFILE`` or ``default``), then defaults: the URL of the server
running from ``--home`` (else ``http://127.0.0.1:8080``), its bootstrap key file, ``public``.
An API key may be given raw, as ``env:VAR`` or as ``file:PATH``. Example ``config.toml``::

    [profiles.default]
    server = "http://127.0.0.1:8080"
    api_key = "file:~/.cloacina/bootstrap-key"
    tenant = "public"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloaca.errors import CloacaError

if TYPE_CHECKING:
    from cloaca.cli.cloacina._client import ApiClient

EXIT_OK, EXIT_FAILED, EXIT_DOWN, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_SERVER = "http://127.0.0.1:8080"


class CliError(CloacaError):
    """A command failed for a reason the user can fix; ``hint`` says how."""

    _fields: tuple[str, ...] = ("message", "hint")
    hint: str | None


def resolve_key(spec: str) -> str:
    """The key named by ``spec``: raw, ``env:VAR`` or ``file:PATH``."""
    if spec.startswith("env:"):
        value = os.environ.get(spec[4:])
        if not value:
            raise CliError(f"environment variable {spec[4:]} is not set", hint="export it first")
        return value.strip()
    if spec.startswith("file:"):
        path = Path(spec[5:]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read the API key file {path}: {exc.strerror}") from exc
    return spec.strip()


class Ctx:
    """Resolved options of one ``cloacina`` invocation and its output helpers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.output: str = args.output
        self.home = Path(args.home or os.environ.get("CLOACINA_HOME") or "~/.cloacina").expanduser()
        self.profile = self._profile(args.profile or os.environ.get("CLOACINA_PROFILE"))

    def _profile(self, name: str | None) -> dict[str, Any]:
        path = self.home / "config.toml"
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            data = {}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"cannot read {path}: {exc}", hint="fix or remove the file") from exc
        profiles = data.get("profiles", {})
        if name and name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise CliError(f"no profile {name!r} in {path}", hint=f"known profiles: {known}")
        profile: dict[str, Any] = profiles.get(name or "default", {})
        return profile

    @cached_property
    def server(self) -> str:
        """The server URL."""
        url = self.args.server or os.environ.get("CLOACINA_SERVER") or self.profile.get("server")
        if not url:
            try:
                url = json.loads((self.home / "server.json").read_text()).get("url")
            except (OSError, ValueError):
                url = None
        return str(url or DEFAULT_SERVER).rstrip("/")

    @cached_property
    def api_key(self) -> str | None:
        """The API key, or None when none is configured."""
        spec = (
            self.args.api_key or os.environ.get("CLOACINA_API_KEY") or self.profile.get("api_key")
        )
        if not spec and (self.home / "bootstrap-key").is_file():
            spec = f"file:{self.home / 'bootstrap-key'}"
        return resolve_key(spec) if spec else None

    @cached_property
    def tenant(self) -> str:
        """The tenant of tenant-scoped commands."""
        return str(
            self.args.tenant
            or os.environ.get("CLOACINA_TENANT")
            or self.profile.get("tenant")
            or "public"
        )

    @cached_property
    def client(self) -> ApiClient:
        """The HTTP client for ``server`` with ``api_key``."""
        from cloaca.cli.cloacina._client import ApiClient

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
