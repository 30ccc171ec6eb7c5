"""Which server to talk to, with which API key and tenant: the ``cloacina`` resolution rules.

Resolution order for the server URL, the API key and the tenant: the explicit value (a flag),
then ``CLOACINA_SERVER`` / ``CLOACINA_API_KEY`` / ``CLOACINA_TENANT``, then the profile
(the given name, ``$CLOACINA_PROFILE`` or ``default``) in ``<home>/config.toml``, then
defaults: the URL of the server running from ``<home>`` (its ``server.json``, else
``http://127.0.0.1:8080``), its bootstrap key file, ``public``. ``<home>`` is the given
directory, ``$CLOACINA_HOME`` or ``~/.cloacina``. An API key may be given raw, as ``env:VAR``
or as ``file:PATH``. Example ``config.toml``::

    [profiles.default]
    server = "http://127.0.0.1:8080"
    api_key = "file:~/.cloacina/bootstrap-key"
    tenant = "public"

Each value is resolved on its own (:func:`resolve_server`, :func:`resolve_api_key`,
:func:`resolve_tenant`) so that a command which needs only the URL does not fail on an
unreadable key file; :func:`resolve_target` resolves all three.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cloaca.errors import ClientConfigError

DEFAULT_SERVER = "http://127.0.0.1:8080"
DEFAULT_TENANT = "public"


def cloacina_home(home: str | Path | None = None) -> Path:
    """``home``, else ``$CLOACINA_HOME``, else ``~/.cloacina`` (expanded)."""
    return Path(home or os.environ.get("CLOACINA_HOME") or "~/.cloacina").expanduser()


def read_profile(home: Path, name: str | None = None) -> dict[str, Any]:
    """The profile ``name`` (else ``$CLOACINA_PROFILE``, else ``default``) of
    ``<home>/config.toml``; ``{}`` when there is no file or no default profile.

    Raises
    ------
    ClientConfigError
        The file cannot be read or parsed, or a profile asked for by name does not exist.
    """
    name = name or os.environ.get("CLOACINA_PROFILE") or None
    path = home / "config.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        data = {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClientConfigError(
            f"cannot read {path}: {exc}", hint="fix or remove the file"
        ) from exc
    profiles = data.get("profiles", {})
    if name and name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ClientConfigError(
            f"no profile {name!r} in {path}",
            hint=f"known profiles: {known}; add [profiles.{name}] with server and api_key",
        )
    profile: dict[str, Any] = profiles.get(name or "default", {})
    return profile


def resolve_key(spec: str) -> str:
    """The key named by ``spec``: raw, ``env:VAR`` or ``file:PATH``."""
    if spec.startswith("env:"):
        value = os.environ.get(spec[4:])
        if not value:
            raise ClientConfigError(
                f"environment variable {spec[4:]} is not set", hint="export it first"
            )
        return value.strip()
    if spec.startswith("file:"):
        path = Path(spec[5:]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ClientConfigError(
                f"cannot read the API key file {path}: {exc.strerror}",
                hint="check the path, or pass the key as env:VAR",
            ) from exc
    return spec.strip()


def resolve_server(explicit: str | None, profile: dict[str, Any], home: Path) -> str:
    """The server URL (see the module docstring), without a trailing slash."""
    url = explicit or os.environ.get("CLOACINA_SERVER") or profile.get("server")
    if not url:
        try:
            url = json.loads((home / "server.json").read_text()).get("url")
        except (OSError, ValueError):
            url = None
    return str(url or DEFAULT_SERVER).rstrip("/")


def resolve_api_key(explicit: str | None, profile: dict[str, Any], home: Path) -> str | None:
    """The API key, or None when none is configured."""
    spec = explicit or os.environ.get("CLOACINA_API_KEY") or profile.get("api_key")
    if not spec and (home / "bootstrap-key").is_file():
        spec = f"file:{home / 'bootstrap-key'}"
    return resolve_key(spec) if spec else None


def resolve_tenant(explicit: str | None, profile: dict[str, Any]) -> str:
    """The tenant of tenant-scoped calls."""
    return str(
        explicit or os.environ.get("CLOACINA_TENANT") or profile.get("tenant") or DEFAULT_TENANT
    )


@dataclass(frozen=True)
class ServerTarget:
    """A resolved server: URL, key (None: none configured) and tenant."""

    server: str
    api_key: str | None
    tenant: str

    def tenant_path(self, path: str) -> str:
        """``/v1/tenants/<tenant><path>``."""
        return f"/v1/tenants/{quote(self.tenant, safe='')}{path}"


def resolve_target(
    server: str | None = None,
    api_key: str | None = None,
    tenant: str | None = None,
    *,
    profile: str | None = None,
    home: str | Path | None = None,
) -> ServerTarget:
    """Resolve all three values the way ``cloacina`` does (see the module docstring).

    Raises
    ------
    ClientConfigError
        Unknown profile, unreadable config file, unset ``env:`` variable, unreadable key file.
    """
    root = cloacina_home(home)
    chosen = read_profile(root, profile)
    return ServerTarget(
        resolve_server(server, chosen, root),
        resolve_api_key(api_key, chosen, root),
        resolve_tenant(tenant, chosen),
    )
