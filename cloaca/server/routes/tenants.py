"""``/v1/tenants``: create, list and delete tenants (the server's admin key only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from cloaca.errors import ApiError
from cloaca.server.app import ERROR_RESPONSES
from cloaca.server.auth import Principal, god_mode, state_of
from cloaca.server.models import CreateTenantRequest, TenantCreated, TenantList, TenantRemoved

router = APIRouter(tags=["tenants"], responses=ERROR_RESPONSES)


@router.post("/v1/tenants", status_code=201, response_model=TenantCreated)
def create_tenant(
    body: CreateTenantRequest, request: Request, _: Principal = Depends(god_mode)
) -> dict[str, Any]:
    """Create a tenant (with a PostgreSQL schema or SQLite file of its own)."""
    state_of(request).tenants.create(body.name, body.description)
    return {"name": body.name, "username": body.name, "description": body.description}


@router.get("/v1/tenants", response_model=TenantList)
def list_tenants(request: Request, _: Principal = Depends(god_mode)) -> dict[str, Any]:
    """Every tenant, ``public`` included."""
    names = state_of(request).tenants.names()
    return {"items": [{"name": n} for n in names], "total": len(names)}


@router.delete("/v1/tenants/{schema_name}", response_model=TenantRemoved)
async def remove_tenant(
    schema_name: str, request: Request, _: Principal = Depends(god_mode)
) -> dict[str, Any]:
    """Delete a tenant: refuse its requests at once, stop its runner, drop its executions and
    packages, revoke its keys. A tenant created again with this name starts empty."""
    state = state_of(request)
    if schema_name == "public":
        raise ApiError("the public tenant cannot be removed", status=400, code="invalid_request")
    revoked, evicted = await run_in_threadpool(state.tenants.remove, schema_name)
    await run_in_threadpool(state.packages.drop_orphans)
    return {
        "status": "removed",
        "schema_name": schema_name,
        "revoked_keys": revoked,
        "runner_evicted": evicted,
        "db_cache_evicted": evicted,
    }
