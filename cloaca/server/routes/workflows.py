"""``/v1/tenants/{t}/workflows``: upload packages, list and inspect workflows, delete a
package version, execute a workflow, pause and resume a workflow."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cloaca.errors import ApiError
from cloaca.server.app import ERROR_RESPONSES, UNAVAILABLE_RESPONSE
from cloaca.server.auth import Principal, state_of, tenant_role
from cloaca.server.db import PackageRow
from cloaca.server.models import (
    ExecuteRequest,
    ExecuteResponse,
    WorkflowDeleted,
    WorkflowDetail,
    WorkflowList,
    WorkflowPaused,
    WorkflowUploaded,
)
from cloaca.server.upload import MULTIPART_BODY, read_upload

router = APIRouter(tags=["workflows"], responses=ERROR_RESPONSES)
PREFIX = "/v1/tenants/{tenant_id}/workflows"


def summary(row: PackageRow, paused: bool = False) -> dict[str, Any]:
    """One item of the workflow list; ``paused`` is whether its workflow is paused."""
    return {
        "id": row.id,
        "package_name": row.package_name,
        "workflow_name": row.package_name,
        "version": row.version,
        "description": row.description,
        "tasks": [t["id"] for t in row.manifest.get("tasks", [])],
        "created_at": datetime.fromtimestamp(row.created_at, UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "paused": paused,
    }


def not_found(request: Request, tenant_id: str, name: str) -> ApiError:
    """404 ``workflow_not_found`` with close matches."""
    names = state_of(request).tenants.runtime(tenant_id).workflow_names()
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ApiError(
        f"no workflow {name!r} in tenant {tenant_id!r}.{hint}",
        status=404,
        code="workflow_not_found",
    )


@router.post(PREFIX, status_code=201, response_model=WorkflowUploaded, openapi_extra=MULTIPART_BODY)
async def upload_workflow(
    tenant_id: str, request: Request, _: Principal = Depends(tenant_role("write"))
) -> dict[str, str]:
    """Upload a ``.cloaca`` package (multipart field ``file``); its workflow is named after
    ``package.name``. Uploading the same package again answers the same id."""
    state = state_of(request)
    data = await read_upload(request, state.config.max_upload_bytes)
    runtime = await run_in_threadpool(state.tenants.runtime, tenant_id)
    row, _created = await run_in_threadpool(state.packages.upload, runtime, data)
    return {"package_id": row.id, "tenant_id": tenant_id}


@router.get(PREFIX, response_model=WorkflowList)
def list_workflows(
    tenant_id: str, request: Request, _: Principal = Depends(tenant_role("read"))
) -> dict[str, Any]:
    """Every package version of the tenant."""
    db = state_of(request).db
    rows = db.list_packages(tenant_id)
    paused = db.paused_workflows(tenant_id)
    items = [summary(r, r.package_name in paused) for r in rows]
    return {"tenant_id": tenant_id, "total": len(rows), "items": items}


@router.get(PREFIX + "/{name}", response_model=WorkflowDetail)
def get_workflow(
    tenant_id: str, name: str, request: Request, _: Principal = Depends(tenant_role("read"))
) -> dict[str, Any]:
    """The active (newest) version of a workflow, with its task graph."""
    state = state_of(request)
    row = state.db.find_package(tenant_id, name=name)
    if row is None:
        raise not_found(request, tenant_id, name)
    active = state.tenants.runtime(tenant_id).active(name)
    error = active.build_error if active is not None else "not loaded by this server"
    graph = [
        {
            "id": t["id"],
            "dependencies": t.get("dependencies", []),
            "description": t.get("description"),
        }
        for t in row.manifest.get("tasks", [])
    ]
    return {
        **summary(row, state.db.is_paused(tenant_id, row.package_name)),
        "tenant_id": tenant_id,
        "build_status": "failed" if error else "success",
        "build_error": error,
        "task_graph": graph,
        "declared_params": [],
    }


@router.delete(PREFIX + "/{name}/{version}", response_model=WorkflowDeleted)
async def delete_workflow(
    tenant_id: str,
    name: str,
    version: str,
    request: Request,
    force: bool = False,
    _: Principal = Depends(tenant_role("write")),
) -> dict[str, str]:
    """Delete one version of a package (a no-op when absent). Refused with 409
    ``workflow_running`` while its executions run, unless ``?force=true``."""
    state = state_of(request)
    row = state.db.find_package(tenant_id, name=name, version=version)
    if row is not None:
        runtime = await run_in_threadpool(state.tenants.runtime, tenant_id)
        await run_in_threadpool(lambda: state.packages.delete(runtime, row, force=force))
    return {"status": "deleted", "package_name": name, "version": version}


@router.post(
    PREFIX + "/{name}/execute",
    status_code=202,
    response_model=ExecuteResponse,
    responses=UNAVAILABLE_RESPONSE,
)
async def execute_workflow(
    tenant_id: str,
    name: str,
    request: Request,
    body: ExecuteRequest | None = Body(None),
    _: Principal = Depends(tenant_role("write")),
) -> JSONResponse:
    """Start an execution with ``context`` as its input; answers 202 once the execution is
    committed to the database. Refused with 409 ``workflow_paused`` while the workflow is
    paused, and with 503 ``storage_unavailable`` when it could not be recorded in time
    (nothing was started then)."""
    state = state_of(request)
    runtime = await run_in_threadpool(state.tenants.runtime, tenant_id)
    active = runtime.active(name)
    if active is None:
        raise not_found(request, tenant_id, name)
    if await run_in_threadpool(state.db.is_paused, tenant_id, name):
        raise ApiError(
            f"workflow {name!r} is paused; resume it to run it",
            status=409,
            code="workflow_paused",
        )
    if active.workflow is None:
        raise ApiError(
            f"workflow {name!r} cannot run: {active.build_error}",
            status=409,
            code="workflow_not_built",
        )
    context = (body.context if body is not None else None) or {}

    try:  # returns once the execution is committed (docs/server.md: what 202 means)
        eid = await run_in_threadpool(runtime.runner.submit, name, context)
    except (TypeError, ValueError) as exc:  # e.g. a context value the runner cannot store
        raise ApiError(f"invalid context: {exc}", status=400, code="invalid_request") from exc
    body_out = {
        "execution_id": eid,
        "workflow_name": name,
        "tenant_id": tenant_id,
        "status": "scheduled",
    }
    return JSONResponse(body_out, status_code=202)


def set_paused(request: Request, tenant_id: str, name: str, paused: bool) -> dict[str, Any]:
    """Persist the paused flag of workflow ``name`` (404 ``workflow_not_found``)."""
    state = state_of(request)
    row = state.db.find_package(tenant_id, name=name)
    if row is None:
        raise not_found(request, tenant_id, name)
    state.db.set_paused(tenant_id, row.package_name, paused)
    return {
        "id": row.id,
        "name": name,
        "tenant_id": tenant_id,
        "paused": paused,
        "status": "paused" if paused else "resumed",
    }


@router.post(PREFIX + "/{name}/pause", response_model=WorkflowPaused)
def pause_workflow(
    tenant_id: str, name: str, request: Request, _: Principal = Depends(tenant_role("write"))
) -> dict[str, Any]:
    """Pause a workflow: new executions are refused (409 ``workflow_paused``) until it is
    resumed; executions already started go on. Idempotent; kept across restarts."""
    return set_paused(request, tenant_id, name, True)


@router.post(PREFIX + "/{name}/resume", response_model=WorkflowPaused)
def resume_workflow(
    tenant_id: str, name: str, request: Request, _: Principal = Depends(tenant_role("write"))
) -> dict[str, Any]:
    """Resume a paused workflow: new executions are accepted again. Idempotent."""
    return set_paused(request, tenant_id, name, False)
