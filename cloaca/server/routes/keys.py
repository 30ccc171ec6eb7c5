"""Keys and identity: ``/v1/auth/keys`` (global, admin key), ``/v1/tenants/{t}/keys``
(tenant admins), ``GET /v1/auth/whoami`` and ``POST /v1/auth/ws-ticket``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request

from cloaca.errors import ApiError
from cloaca.server.app import ERROR_RESPONSES
from cloaca.server.auth import (
    TICKET_TTL_SECONDS,
    Principal,
    caller,
    god_mode,
    hash_key,
    new_key,
    state_of,
    tenant_role,
)
from cloaca.server.db import KeyRow
from cloaca.server.models import (
    CreateKeyRequest,
    KeyCreated,
    KeyList,
    KeyRevoked,
    Whoami,
    WsTicket,
)

router = APIRouter(tags=["keys"], responses=ERROR_RESPONSES)


def _ts(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


def key_info(row: KeyRow) -> dict[str, Any]:
    """A key as listed (never its hash)."""
    return {
        "id": row.id,
        "name": row.name,
        "permissions": row.role,
        "tenant_id": row.tenant_id,
        "is_admin": row.is_admin,
        "revoked": row.revoked,
        "created_at": _ts(row.created_at),
    }


def _create(request: Request, body: CreateKeyRequest, tenant: str | None) -> dict[str, Any]:
    key = new_key()
    row = state_of(request).db.add_key(
        {
            "id": str(uuid.uuid4()),
            "name": body.name,
            "key_hash": hash_key(key),
            "role": body.role,
            "tenant_id": tenant,
        }
    )
    info = key_info(row)
    info.pop("revoked")
    return {**info, "key": key}


def _revoke(request: Request, key_id: str, tenant: str | None, any_tenant: bool) -> dict[str, str]:
    try:
        uuid.UUID(key_id)
    except ValueError:
        raise ApiError(f"malformed key id {key_id!r}", status=400, code="invalid_request") from None
    state = state_of(request)
    row = state.db.get_key(key_id)
    if row is None or not (any_tenant or (row.tenant_id == tenant and not row.is_admin)):
        raise ApiError(f"no key {key_id!r}", status=404, code="key_not_found")
    if row.is_admin:
        raise ApiError(
            "the bootstrap key cannot be revoked through the API (that would lock the operator "
            "out); rotate it on the server's host with 'cloacina server rotate-key --home DIR'",
            status=403,
            code="bootstrap_key_protected",
        )
    state.db.revoke_key(key_id)
    state.tickets.revoke(key_id)
    return {"id": key_id, "status": "revoked"}


@router.post("/v1/auth/keys", status_code=201, response_model=KeyCreated)
def create_key(
    body: CreateKeyRequest, request: Request, _: Principal = Depends(god_mode)
) -> dict[str, Any]:
    """Create a global key (acts in ``public``); the key is shown once."""
    return _create(request, body, None)


@router.get("/v1/auth/keys", response_model=KeyList)
def list_keys(request: Request, _: Principal = Depends(god_mode)) -> dict[str, Any]:
    """Every key of every tenant (no hashes)."""
    rows = state_of(request).db.list_keys(all_tenants=True)
    return {"items": [key_info(r) for r in rows], "total": len(rows)}


@router.delete("/v1/auth/keys/{key_id}", response_model=KeyRevoked)
def revoke_key(key_id: str, request: Request, _: Principal = Depends(god_mode)) -> dict[str, str]:
    """Revoke any key but the bootstrap key (403 ``bootstrap_key_protected``); its WebSocket
    tickets and open streams end at once."""
    return _revoke(request, key_id, None, any_tenant=True)


@router.post("/v1/tenants/{tenant_id}/keys", status_code=201, response_model=KeyCreated)
def create_tenant_key(
    tenant_id: str,
    body: CreateKeyRequest,
    request: Request,
    _: Principal = Depends(tenant_role("admin")),
) -> dict[str, Any]:
    """Create a key scoped to the tenant (needs an admin key of the tenant)."""
    return _create(request, body, None if tenant_id == "public" else tenant_id)


@router.get("/v1/tenants/{tenant_id}/keys", response_model=KeyList)
def list_tenant_keys(
    tenant_id: str, request: Request, _: Principal = Depends(tenant_role("admin"))
) -> dict[str, Any]:
    """The tenant's keys (never the server-wide bootstrap key)."""
    rows = state_of(request).db.list_keys(None if tenant_id == "public" else tenant_id)
    return {"items": [key_info(r) for r in rows], "total": len(rows)}


@router.delete("/v1/tenants/{tenant_id}/keys/{key_id}", response_model=KeyRevoked)
def revoke_tenant_key(
    tenant_id: str, key_id: str, request: Request, _: Principal = Depends(tenant_role("admin"))
) -> dict[str, str]:
    """Revoke one of the tenant's keys; its WebSocket tickets and open streams end at once."""
    return _revoke(request, key_id, None if tenant_id == "public" else tenant_id, False)


@router.get("/v1/auth/whoami", response_model=Whoami)
def whoami(principal: Principal = Depends(caller)) -> dict[str, Any]:
    """The calling key's name, role, tenant and god-mode flag."""
    return {
        "name": principal.name,
        "role": principal.role,
        "tenant_id": principal.tenant_id,
        "is_admin": principal.is_admin,
    }


@router.post("/v1/auth/ws-ticket", response_model=WsTicket)
def ws_ticket(request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    """A single-use ticket for the delivery WebSocket (``?token=``), valid 60 seconds."""
    ticket = state_of(request).tickets.issue(principal)
    return {"ticket": ticket, "expires_in_seconds": TICKET_TTL_SECONDS}
