"""API keys, roles and who is calling: the ``Authorization: Bearer <key>`` check.

Keys are ``clk_`` + 32 random bytes in base64url; only their SHA-256 is stored. Roles are
ordered ``read < write < admin`` and scoped to one tenant (a key with no tenant acts in
``public``); the bootstrap key is the one *god-mode* key (``is_admin``): every tenant, tenant
and global key management. Missing or unknown key: 401 ``unauthorized``; a key of another
tenant: 403 ``tenant_access_denied``; too weak a role: 403 ``insufficient_permissions``;
god mode needed: 403 ``admin_required``.

WebSocket clients cannot send headers from browsers, so they first trade their key for a
single-use ticket (``POST /v1/auth/ws-ticket``, valid 60 s) passed as ``?token=``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from cloaca.errors import ApiError

if TYPE_CHECKING:
    from cloaca.server.db import KeyRow
    from cloaca.server.state import ServerState

ROLES = ("read", "write", "admin")
PUBLIC = "public"
TICKET_TTL_SECONDS = 60


def new_key() -> str:
    """A fresh API key: ``clk_`` + 32 random bytes, base64url without padding."""
    return "clk_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The caller, as resolved from its key."""

    key_id: str
    name: str
    role: str
    tenant_id: str | None
    is_admin: bool

    @classmethod
    def from_row(cls, row: KeyRow) -> Principal:
        """The principal of a stored key."""
        return cls(row.id, row.name, row.role, row.tenant_id, row.is_admin)

    @property
    def home_tenant(self) -> str:
        """The tenant a scoped key acts in (``public`` for a key without tenant)."""
        return self.tenant_id or PUBLIC

    def can_access(self, tenant: str) -> bool:
        """True for god mode or a key of ``tenant``."""
        return self.is_admin or self.home_tenant == tenant

    def has_role(self, role: str) -> bool:
        """True when the key's role is at least ``role``."""
        return self.is_admin or ROLES.index(self.role) >= ROLES.index(role)


def unauthorized(message: str) -> ApiError:
    """A 401 ``unauthorized`` error."""
    return ApiError(message, status=401, code="unauthorized")


def authenticate(state: ServerState, header: str | None) -> Principal:
    """Resolve an ``Authorization`` header to a principal (raise 401 otherwise)."""
    if not header:
        raise unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    row = state.db.find_key(hash_key(key.strip()))
    if row is None:
        raise unauthorized("invalid or revoked API key")
    return Principal.from_row(row)


def state_of(request: Request) -> ServerState:
    """The :class:`ServerState` of the app serving ``request``."""
    state: ServerState = request.app.state.server
    return state


def caller(request: Request) -> Principal:
    """FastAPI dependency: any valid key."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = authenticate(state_of(request), request.headers.get("authorization"))
    request.state.principal = principal
    return principal


def god_mode(request: Request) -> Principal:
    """FastAPI dependency: the god-mode (bootstrap) key."""
    principal = caller(request)
    if not principal.is_admin:
        raise ApiError("this needs the server's admin key", status=403, code="admin_required")
    return principal


def check_tenant(principal: Principal, tenant: str, role: str) -> None:
    """Raise 403 unless ``principal`` may act in ``tenant`` with at least ``role``."""
    if not principal.can_access(tenant):
        raise ApiError(
            f"this key cannot access tenant {tenant!r}", status=403, code="tenant_access_denied"
        )
    if not principal.has_role(role):
        raise ApiError(
            f"this needs a {role!r} key (this key is {principal.role!r})",
            status=403,
            code="insufficient_permissions",
        )


def tenant_role(role: str) -> Callable[[str, Request], Iterator[Principal]]:
    """FastAPI dependency factory: a key allowed ``role`` in the ``{tenant_id}`` of the path,
    which must exist (404 ``tenant_not_found``). The request holds a lease on the tenant
    until it is answered, so deleting the tenant waits for it (and refuses later ones)."""

    def dependency(tenant_id: str, request: Request) -> Iterator[Principal]:
        principal = caller(request)
        check_tenant(principal, tenant_id, role)
        with state_of(request).tenants.lease(tenant_id):
            yield principal

    return dependency


class Tickets:
    """Single-use WebSocket tickets, valid :data:`TICKET_TTL_SECONDS`, and the keys revoked
    while this process runs (their tickets and open streams end at once)."""

    def __init__(self) -> None:
        self._tickets: dict[str, tuple[Principal, float]] = {}
        self._revoked: set[str] = set()
        self._lock = threading.Lock()

    def issue(self, principal: Principal) -> str:
        """A new ticket for ``principal``."""
        ticket = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._tickets = {t: v for t, v in self._tickets.items() if v[1] > now}
            self._tickets[ticket] = (principal, now + TICKET_TTL_SECONDS)
        return ticket

    def redeem(self, ticket: str | None) -> Principal | None:
        """The principal of an unexpired ticket (consumed) whose key is not revoked, or None."""
        if not ticket:
            return None
        with self._lock:
            entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] < time.monotonic() or self.is_revoked(entry[0].key_id):
            return None
        return entry[0]

    def revoke(self, key_id: str) -> None:
        """Drop every ticket of the key ``key_id`` and mark its open streams for closing."""
        with self._lock:
            self._revoked.add(key_id)
            self._tickets = {t: v for t, v in self._tickets.items() if v[0].key_id != key_id}

    def is_revoked(self, key_id: str) -> bool:
        """True when the key was revoked through this process."""
        with self._lock:
            return key_id in self._revoked
