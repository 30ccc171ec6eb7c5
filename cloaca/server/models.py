"""Request and response bodies of the REST API (pydantic), in Cloacina's wire format.

Field names, types and requiredness follow what the ``cloacina-client`` SDK parses; fields the
SDK does not know (``context``, ``error`` ... on an execution) are our documented extensions
and land in the SDK models' ``additional_properties``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cloaca.server.validate import safe_json, safe_text

Role = Literal["read", "write", "admin"]
SafeText = Annotated[str, AfterValidator(safe_text)]
SafeJson = Annotated[dict[str, Any], AfterValidator(safe_json)]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every non-2xx answer; the request id is in the ``x-request-id`` header."""

    error: str
    code: str


class Health(_Out):
    """`GET /health`: the process is up; ``pythons`` (our extension, optional) lists the
    ``X.Y`` Python versions it can run package tasks on, its own first."""

    status: str
    pythons: list[str] | None = None


class Ready(_Out):
    """`GET /ready`: the database and runner can take work (503 with a reason otherwise)."""

    status: str
    reason: str | None = None


# ---------------------------------------------------------------- workflows
class WorkflowUploaded(_Out):
    """`POST /v1/tenants/{t}/workflows` (201): the stored package's id."""

    package_id: str
    tenant_id: str


class WorkflowSummary(_Out):
    """One registered workflow (a package's workflow, named after the package)."""

    id: str
    package_name: str
    workflow_name: str
    version: str
    description: str | None = None
    tasks: list[str]
    created_at: str
    paused: bool = False


class WorkflowList(_Out):
    """`GET /v1/tenants/{t}/workflows`."""

    tenant_id: str
    total: int
    items: list[WorkflowSummary]


class TaskNode(_Out):
    """A task of a workflow's graph with its dependencies."""

    id: str
    dependencies: list[str]
    description: str | None = None


class WorkflowDetail(WorkflowSummary):
    """`GET /v1/tenants/{t}/workflows/{name}`: summary plus graph and build status."""

    tenant_id: str
    build_status: str
    build_error: str | None = None
    task_graph: list[TaskNode]
    declared_params: list[dict[str, Any]]


class WorkflowDeleted(_Out):
    """`DELETE /v1/tenants/{t}/workflows/{name}/{version}`."""

    status: str
    package_name: str
    version: str


class WorkflowPaused(_Out):
    """`POST .../workflows/{name}/pause` and `/resume`: the workflow's state afterwards."""

    id: str
    name: str
    tenant_id: str
    paused: bool
    status: str


class ExecuteRequest(BaseModel):
    """``{"context": {...}}`` or ``{}``."""

    model_config = ConfigDict(extra="allow")
    context: SafeJson | None = None


class ExecuteResponse(_Out):
    """`POST .../workflows/{name}/execute` (202): the scheduled execution."""

    execution_id: str
    workflow_name: str
    tenant_id: str
    status: str


# ---------------------------------------------------------------- executions
class ExecutionSummary(_Out):
    """One execution in a listing."""

    id: str
    workflow_name: str
    status: str
    started_at: str
    completed_at: str | None = None
    trigger_origin: str | None = None


class ExecutionList(_Out):
    """`GET /v1/tenants/{t}/executions`."""

    tenant_id: str
    total: int
    items: list[ExecutionSummary]


class ExecutionDetail(_Out):
    """`GET .../executions/{id}`: status, plus our extensions (context, error, times)."""

    tenant_id: str
    execution_id: str
    status: str = Field(description="Pending, Running, Completed, Failed, Cancelled or Paused")
    workflow_name: str | None = None
    workflow_version: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    context: dict[str, Any] | None = Field(
        None, description="Extension: the final context once the execution finished"
    )
    input_context: dict[str, Any] | None = Field(None, description="Extension: the input")
    error: str | None = Field(None, description="Extension: why the execution failed")


class ExecutionEvent(_Out):
    """One recorded lifecycle event of an execution."""

    id: str
    event_type: str
    event_data: str | None = None
    task_name: str | None = None
    created_at: str
    sequence_num: int


class ExecutionEvents(_Out):
    """`GET .../executions/{id}/events`."""

    tenant_id: str
    execution_id: str
    events: list[ExecutionEvent]


class TaskExecution(_Out):
    """One task's record in an execution (status, attempts, last error)."""

    id: str
    task_name: str
    status: str
    started_at: str | None = None
    completed_at: str | None = None
    attempt: int
    max_attempts: int
    created_at: str
    updated_at: str
    last_error: str | None = None
    error_details: str | None = Field(None, description="Extension: the error's type name")
    sub_status: str | None = Field(None, description="Extension: why the task was skipped")
    traceback: str | None = Field(
        None, description="Extension: the traceback of the last failed attempt"
    )


class ExecutionTasks(_Out):
    """`GET .../executions/{id}/tasks`."""

    tenant_id: str
    execution_id: str
    tasks: list[TaskExecution]


# ---------------------------------------------------------------- auth, keys, tenants
class WsTicket(_Out):
    """`POST /v1/auth/ws-ticket`: a one-use ticket for the delivery WebSocket."""

    ticket: str
    expires_in_seconds: int


class CreateKeyRequest(BaseModel):
    """Body of `POST /v1/auth/keys` and `POST /v1/tenants/{t}/keys`."""

    name: SafeText = Field(min_length=1, max_length=255)
    role: Role = "read"


class KeyInfo(_Out):
    """An API key's metadata (never the key itself)."""

    id: str
    name: str
    permissions: str
    tenant_id: str | None = None
    is_admin: bool
    revoked: bool
    created_at: str


class KeyCreated(_Out):
    """A new API key: the only time its secret is shown."""

    id: str
    key: str
    name: str
    permissions: str
    tenant_id: str | None = None
    is_admin: bool
    created_at: str


class KeyList(_Out):
    """`GET /v1/auth/keys`."""

    items: list[KeyInfo]
    total: int


class KeyRevoked(_Out):
    """`DELETE /v1/auth/keys/{id}`."""

    id: str
    status: str


class Whoami(_Out):
    """`GET /v1/auth/whoami`: the calling key's identity, role and tenant."""

    name: str
    role: str
    tenant_id: str | None = None
    is_admin: bool


class CreateTenantRequest(BaseModel):
    """Body of `POST /v1/tenants`."""

    name: str = Field(min_length=1, max_length=63)
    description: SafeText | None = Field(None, max_length=4096)
    password: SafeText | None = Field(None, max_length=1024)


class TenantCreated(_Out):
    """`POST /v1/tenants` (201)."""

    name: str
    username: str
    description: str | None = None


class TenantSummary(_Out):
    """One tenant in a listing."""

    name: str


class TenantList(_Out):
    """`GET /v1/tenants`."""

    items: list[TenantSummary]
    total: int


class TenantRemoved(_Out):
    """`DELETE /v1/tenants/{t}`."""

    status: str
    schema_name: str
    revoked_keys: int
    runner_evicted: bool
    db_cache_evicted: bool
