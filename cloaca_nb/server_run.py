"""``%cloaca_run --server``: the session's tasks run on a ``cloacina-server``, shown live.

One call (:func:`run_on_server`) does what a user would do by hand with ``%cloaca_build`` and
the ``cloacina`` CLI, with the CLI's own profiles and keys (:mod:`cloaca.remote.profiles`):

1. resolve the server (a profile name, a URL, or the CLI's defaults) and check it answers;
2. build the session's package (:mod:`cloaca_nb.server_package`: nothing is rebuilt when the
   tasks did not change) for a Python the server runs (its ``GET /health`` ``pythons``) and
   upload it unless the server's active version of the workflow is already this one;
3. execute the workflow with the given context and follow its events over the delivery
   WebSocket (:func:`cloaca.remote.events.follow_events`), recolouring the DAG widgets from the
   kernel's main thread as the events arrive;
4. read back the execution and its per-task records into the same
   :class:`~cloaca_nb.result.NotebookResult` an in-kernel run returns (final context, per-task
   status, attempts, errors with their tracebacks, as recorded by the server's workers).

Whatever stops it before the run (no server, a refused key, an unknown profile) is a
:class:`~cloaca_nb.errors.ServerRunError` with a one-line message and what to do next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cloaca import Context, ExecutionResult, TaskEvent, TaskExecutionError, TaskResult
from cloaca.errors import ApiError, ClientConfigError
from cloaca.remote.client import ApiClient
from cloaca.remote.events import follow_events
from cloaca.remote.profiles import ServerTarget, resolve_target
from cloaca_nb.errors import ServerRunError
from cloaca_nb.result import NotebookResult
from cloaca_nb.server_package import SessionPackage, build_python, session_package

if TYPE_CHECKING:
    from cloaca_nb.dag_widget import DagWidget
    from cloaca_nb.hooks import NotebookKit

DEFAULT_NAME = "notebook-tasks"
START_HINT = "start one with `cloacina server start --background`, or pass --server PROFILE|URL"
_KEY_HINTS = {
    401: "pass a valid key with --api-key (raw, env:VAR or file:PATH) or set api_key in the "
    "profile (<home>/config.toml)",
    403: "use a key with the write role for this tenant (or pick its tenant with --tenant)",
}


@dataclass(frozen=True)
class ServerRunInfo:
    """Where a ``--server`` run went and what it cost: ``built`` (False: the kernel reused its
    last archive), ``build_cache_hit``, ``uploaded`` (False: the server had this version)."""

    server: str
    tenant: str
    package: str
    version: str
    execution_id: str
    built: bool
    build_cache_hit: bool
    uploaded: bool


def resolve(
    spec: str | None, api_key: str | None = None, tenant: str | None = None
) -> ServerTarget:
    """The server named by ``spec``: a URL (``http://...``; ``host:port`` means
    ``http://host:port``), a profile name, or None/empty for the ``cloacina`` defaults
    (``$CLOACINA_SERVER``, the default profile, the local server)."""
    if spec and "://" not in spec and ":" in spec:
        spec = "http://" + spec
    url, profile = (spec, None) if spec and "://" in spec else (None, spec or None)
    try:
        return resolve_target(url, api_key, tenant, profile=profile)
    except ClientConfigError as exc:
        raise ServerRunError(exc.message, hint=exc.hint) from None


@contextmanager
def _talking_to(target: ServerTarget) -> Iterator[None]:
    """Turn transport failures and refused keys into :class:`ServerRunError`."""
    import httpx
    from websockets.exceptions import InvalidStatus, WebSocketException

    try:
        yield
    except ApiError as exc:
        hint = _KEY_HINTS.get(exc.status or 0)
        what = f"{exc.message} (HTTP {exc.status}, {exc.code})"
        raise ServerRunError(what, server=target.server, hint=hint) from None
    except InvalidStatus as exc:
        raise ServerRunError(
            f"the event stream was refused (HTTP {exc.response.status_code})",
            server=target.server,
        ) from None
    except (httpx.TransportError, OSError, WebSocketException) as exc:
        raise ServerRunError(
            f"no server reachable at {target.server} ({type(exc).__name__}: {exc})",
            server=target.server,
            hint=START_HINT,
        ) from None


def active_version(client: ApiClient, target: ServerTarget, name: str) -> dict[str, Any] | None:
    """The server's active version of workflow ``name`` (None: not installed). Also the first
    call of a run: it finds out that the server answers and accepts the key."""
    try:
        detail: dict[str, Any] = client.get(
            target.tenant_path(f"/workflows/{quote(name, safe='')}")
        )
    except ApiError as exc:
        if exc.code != "workflow_not_found":
            raise
        return None
    return detail


def server_pythons(client: ApiClient) -> list[str]:
    """The ``X.Y`` Pythons the server runs package tasks on, its own first (``GET /health``
    ``pythons``); empty when it does not say (an upstream server)."""
    pythons = client.get("/health").get("pythons")
    return [str(p) for p in pythons] if isinstance(pythons, list) else []


def pythons_of(spec: str | None) -> list[str]:
    """:func:`server_pythons` of the server named by ``spec`` (as :func:`resolve` reads it).

    Raises
    ------
    ServerRunError
        Unknown profile, no server reachable.
    """
    target = resolve(spec)
    with _talking_to(target):
        return server_pythons(_client(target))


def ensure_uploaded(
    client: ApiClient,
    target: ServerTarget,
    package: SessionPackage,
    active: Mapping[str, Any] | None,
) -> bool:
    """Make ``package`` the active version of its workflow (``active``: the current one);
    False when it already was (nothing sent)."""
    if active is not None and active["version"] == package.version:
        if active.get("build_status") == "failed":
            raise ServerRunError(
                f"workflow {package.name} {package.version} is installed but not built: "
                f"{active.get('build_error')}",
                server=target.server,
            )
        return False
    items = client.get(target.tenant_path("/workflows"))["items"]
    if any(i["package_name"] == package.name and i["version"] == package.version for i in items):
        _delete(client, target, package)  # an older copy: upload again to make it the newest
    try:
        client.upload(target.tenant_path("/workflows"), package.path)
    except ApiError as exc:
        if exc.code != "package_exists":
            raise
        _delete(client, target, package)  # same tasks built elsewhere (other cell labels)
        client.upload(target.tenant_path("/workflows"), package.path)
    return True


def _delete(client: ApiClient, target: ServerTarget, package: SessionPackage) -> None:
    name, version = quote(package.name, safe=""), quote(package.version, safe="")
    client.delete(target.tenant_path(f"/workflows/{name}/{version}"))


_clients: dict[tuple[str, str | None], ApiClient] = {}


def _client(target: ServerTarget) -> ApiClient:
    """One client per server and key for the kernel's life: its connections are kept alive,
    and creating an httpx client costs ~100 ms (it loads the system's CA bundle)."""
    key = (target.server, target.api_key)
    if key not in _clients:
        _clients[key] = ApiClient(target.server, target.api_key, timeout=60.0)
    return _clients[key]


def _ts(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


class _EventTranslator:
    """Server events (REST form) → :class:`cloaca.TaskEvent` for the widgets."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, raw: Mapping[str, Any]) -> TaskEvent | None:
        kind, task = raw["event_type"], raw.get("task_name")
        data = json.loads(raw["event_data"]) if raw.get("event_data") else {}
        at = _ts(raw.get("created_at")) or 0.0
        attempt = int(data.get("attempt", 0) or 0)
        if kind == "task_started" and task is not None:
            self.started.setdefault(task, at)
        if kind == "task_failed" and data.get("will_retry"):
            return None  # the task_retrying that follows says it
        if kind not in ("task_started", "task_retrying", "task_completed", "task_failed",
                        "task_skipped", "workflow_completed", "workflow_failed"):  # fmt: skip
            return None
        duration = at - self.started[task] if task in self.started else None
        error = data.get("error") or data.get("reason")
        return TaskEvent(kind, task, attempt, at, duration, error, None, data.get("error_type"))


def _task_result(row: Mapping[str, Any], package: str) -> TaskResult:
    task_id, failed = row["task_name"], row["status"] == "Failed"
    skip = row.get("sub_status")
    if skip:  # the server names tasks by node key (package::id); in the notebook they are ids
        skip = skip.replace(f"{package}::", "")
    error = None
    if failed:
        error = TaskExecutionError(
            row.get("last_error") or "failed",
            task_id=task_id,
            error_type=row.get("error_details"),
            traceback=row.get("traceback"),
        )
    return TaskResult(
        task_id,
        status=row["status"],
        attempts=row["attempt"],
        started_at=_ts(row.get("started_at")),
        finished_at=_ts(row.get("completed_at")),
        error=error,
        skip_reason=skip,
    )


def fetch_result(client: ApiClient, target: ServerTarget, eid: str) -> ExecutionResult:
    """The finished execution ``eid`` as the engine's :class:`~cloaca.ExecutionResult`."""
    detail = client.get(target.tenant_path(f"/executions/{eid}"))
    rows = client.get(target.tenant_path(f"/executions/{eid}/tasks"))["tasks"]
    started = _ts(detail.get("started_at") or detail.get("created_at")) or 0.0
    return ExecutionResult(
        workflow_name=detail["workflow_name"],
        status=detail["status"],
        final_context=Context(detail.get("context") or {}),
        tasks={row["task_name"]: _task_result(row, detail["workflow_name"]) for row in rows},
        started_at=started,
        finished_at=_ts(detail.get("completed_at")) or started,
        execution_id=eid,
        workflow_version=detail.get("workflow_version"),
    )


def _follow(client: ApiClient, eid: str, widgets: list[DagWidget]) -> bool:
    """Apply the execution's events to ``widgets``; True when its last event arrived."""
    translate = _EventTranslator()
    for raw in follow_events(client, eid):
        event = translate(raw)
        if event is not None:
            for widget in widgets:
                widget.apply_event(event)
        if raw["event_type"] in ("workflow_completed", "workflow_failed"):
            return True
    return False


def run_on_server(
    kit: NotebookKit,
    context: Mapping[str, Any] | None = None,
    *,
    server: str | None = None,
    api_key: str | None = None,
    tenant: str | None = None,
    name: str | None = None,
    show: bool = True,
) -> NotebookResult:
    """Build, upload (when changed), execute and follow the session's workflow on a server.

    Parameters
    ----------
    kit:
        The notebook kit (session, widgets, cell names).
    context:
        The execution's input context (JSON values).
    server:
        A URL, a profile name of ``<home>/config.toml``, or None for the ``cloacina`` defaults.
    api_key, tenant:
        Override the resolved key (raw, ``env:VAR`` or ``file:PATH``) and tenant.
    name:
        Package and workflow name on the server (default ``notebook-tasks``).
    show:
        Display a new live DAG widget (widgets shown before are recoloured either way).

    Returns
    -------
    NotebookResult
        Also when tasks failed; ``.server`` says where it ran and whether it was rebuilt or
        uploaded.

    Raises
    ------
    ServerRunError
        Unknown profile, unreadable key, no server reachable, a refused key, a lost stream.
    NoTasksError, WorkflowValidationError, ExportError, BuildError
        The session cannot be packaged.
    """
    session = kit.session
    session.workflow()  # an invalid DAG fails here, before the server is asked anything
    target = resolve(server, api_key, tenant)
    client = _client(target)
    name = name or DEFAULT_NAME
    with _talking_to(target):
        active = active_version(client, target, name)
        python = build_python(server_pythons(client))
    package = session_package(session, name, python)  # build errors are not server errors
    with _talking_to(target):
        uploaded = ensure_uploaded(client, target, package, active)
        widgets, own = kit.run_widgets(show, {})
        for widget in widgets:
            widget.begin_run(session.task_ids())
        path = target.tenant_path(f"/workflows/{quote(package.name, safe='')}/execute")
        eid = client.post(path, {"context": dict(context or {})})["execution_id"]
        try:
            if not _follow(client, eid, widgets):
                raise ServerRunError(
                    f"the event stream of execution {eid} ended early",
                    server=target.server,
                    hint=f"see `cloacina execution status {eid}`",
                )
        except KeyboardInterrupt:
            for widget in widgets:
                widget.interrupt_run()
            raise
        finally:
            for widget in widgets:
                widget.finish_run()
            if own is not None:
                own.freeze()
        result = fetch_result(client, target, eid)
    info = ServerRunInfo(
        target.server, target.tenant, package.name, package.version, eid,
        package.built, package.cache_hit, uploaded,
    )  # fmt: skip
    wrapped = _wrap(kit, result, info)
    kit.report_failure(wrapped)
    return wrapped


def _wrap(kit: NotebookKit, result: ExecutionResult, info: ServerRunInfo) -> NotebookResult:
    session = kit.session
    cells = {tid: cell.label for tid in session.task_ids() if (cell := session.cell_of(tid))}
    return NotebookResult(result, cells, kit.filenames(), server=info)
