"""``/v1/tenants/{t}/executions``: list executions, one execution (with our ``context`` and
``error`` extensions), its events and its per-task records."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request

from cloaca.errors import ApiError
from cloaca.runner.event_log import list_events
from cloaca.runner.history import ExecutionRecord
from cloaca.server.app import ERROR_RESPONSES
from cloaca.server.auth import Principal, state_of, tenant_role
from cloaca.server.models import ExecutionDetail, ExecutionEvents, ExecutionList, ExecutionTasks
from cloaca.server.tenants import TenantRuntime
from cloaca.server.validate import MAX_OFFSET
from cloaca.server.views import events, execution_detail, execution_summary, task_records

router = APIRouter(tags=["executions"], responses=ERROR_RESPONSES)
PREFIX = "/v1/tenants/{tenant_id}/executions"
STATUSES = ("Pending", "Running", "Completed", "Failed", "Cancelled", "Paused")


def check_execution_id(exec_id: str) -> str:
    """``exec_id`` when it is a UUID, else 400 ``invalid_request``."""
    try:
        return str(uuid.UUID(exec_id))
    except ValueError:
        raise ApiError(
            f"malformed execution id {exec_id!r}: expected a UUID",
            status=400,
            code="invalid_request",
        ) from None


def load(request: Request, tenant_id: str, exec_id: str) -> tuple[TenantRuntime, ExecutionRecord]:
    """The tenant runtime and the execution (404 ``execution_not_found``)."""
    eid = check_execution_id(exec_id)
    runtime = state_of(request).tenants.runtime(tenant_id)
    rec = runtime.runner.get_execution(eid)
    if rec is None:
        raise ApiError(
            f"no execution {eid} in tenant {tenant_id!r}", status=404, code="execution_not_found"
        )
    return runtime, rec


@router.get(PREFIX, response_model=ExecutionList)
def list_executions(
    tenant_id: str,
    request: Request,
    status: str | None = None,
    workflow: str | None = None,
    limit: int = 100,
    offset: int = 0,
    _: Principal = Depends(tenant_role("read")),
) -> dict[str, Any]:
    """Executions, newest first; ``limit`` 1..1000, ``offset`` >= 0."""
    if offset > MAX_OFFSET:
        raise ApiError(
            f"query parameter 'offset' is out of range; use 0..{MAX_OFFSET}",
            status=422,
            code="invalid_parameter",
        )
    if not 1 <= limit <= 1000 or offset < 0:
        raise ApiError(
            "limit must be 1..1000 and offset >= 0", status=400, code="invalid_pagination"
        )
    if status is not None:
        match = [s for s in STATUSES if s.lower() == status.lower()]
        if not match:
            raise ApiError(
                f"unknown status {status!r}; use one of {', '.join(STATUSES)}",
                status=400,
                code="invalid_request",
            )
        status = match[0]
    runtime = state_of(request).tenants.runtime(tenant_id)
    records = runtime.runner.list_executions(workflow, status, limit, offset)
    return {
        "tenant_id": tenant_id,
        "total": runtime.count_executions(workflow, status),
        "items": [execution_summary(r) for r in records],
    }


@router.get(PREFIX + "/{exec_id}", response_model=ExecutionDetail)
def get_execution(
    tenant_id: str, exec_id: str, request: Request, _: Principal = Depends(tenant_role("read"))
) -> dict[str, Any]:
    """Status of one execution, plus (our extension) its final ``context`` and ``error``."""
    _runtime, rec = load(request, tenant_id, exec_id)
    return execution_detail(tenant_id, rec)


@router.get(PREFIX + "/{exec_id}/events", response_model=ExecutionEvents)
def get_execution_events(
    tenant_id: str, exec_id: str, request: Request, _: Principal = Depends(tenant_role("read"))
) -> dict[str, Any]:
    """The execution's events, oldest first."""
    runtime, rec = load(request, tenant_id, exec_id)
    log = list_events(runtime.runner.store, rec.id)
    return {"tenant_id": tenant_id, "execution_id": rec.id, "events": events(rec, log)}


@router.get(PREFIX + "/{exec_id}/tasks", response_model=ExecutionTasks)
def get_execution_tasks(
    tenant_id: str, exec_id: str, request: Request, _: Principal = Depends(tenant_role("read"))
) -> dict[str, Any]:
    """One record per task: status, attempts, timings, last error."""
    runtime, rec = load(request, tenant_id, exec_id)
    active = runtime.active(rec.workflow_name)
    workflow = active.workflow if active is not None else None
    return {"tenant_id": tenant_id, "execution_id": rec.id, "tasks": task_records(rec, workflow)}
