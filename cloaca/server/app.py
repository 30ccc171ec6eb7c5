"""`create_app`: the FastAPI application — request ids, the error format, routers, lifespan.

Every answer carries an ``x-request-id`` header (the client's, when it sent a sane one). Every
error body is ``{"error": message, "code": code}``: :class:`~cloaca.errors.ApiError` raised by
a route, 400 ``invalid_request`` for a malformed request, 404 ``not_found`` for an unknown
route, 405 ``method_not_allowed``, 503 ``storage_unavailable`` when the database cannot be
reached or written right now (a lost connection, a full disk; the client may retry), 500
``internal_error`` (logged with the request id, never shown to the client).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloaca.errors import ApiError, StorageUnavailableError
from cloaca.server.config import ServerConfig
from cloaca.server.models import ErrorBody
from cloaca.server.validate import BodyLimitMiddleware, check_params
from cloaca.storage.retry import describe_failure, is_transient

log = logging.getLogger("cloaca.server")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": "Error"}
    for code in (400, 401, 403, 404, 409, 413, 422)
}
UNAVAILABLE_RESPONSE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The database is unavailable; retry later"}
}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """A JSON error answer in the API's format."""
    return JSONResponse({"error": message, "code": code}, status_code=status)


class RequestIdMiddleware:
    """Adds ``x-request-id`` to every HTTP answer and turns unhandled errors into a 500 body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error (request %s)", rid)
            if started:
                raise
            response = error_response(500, "internal_error", f"internal error (request {rid})")
            await response(scope, receive, send_with_id)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status or 500, exc.code or "error", exc.message)


async def _storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 for a database that cannot be reached or written right now (see the docstring)."""
    rid = getattr(request.state, "request_id", "-")
    if isinstance(exc, StorageUnavailableError):
        message = f"{exc}; nothing was recorded, retry later"
    else:
        message = f"the database is unavailable ({describe_failure(exc)}); retry later"
    log.warning("503 %s %s (request %s): %s", request.method, request.url.path, rid, message)
    return error_response(503, "storage_unavailable", message)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A driver error: 503 when transient (lost connection, full disk), else a logged 500."""
    if is_transient(exc):
        return await _storage_unavailable(request, exc)
    rid = getattr(request.state, "request_id", "-")
    log.error("database error (request %s)", rid, exc_info=exc)
    return error_response(500, "internal_error", f"internal error (request {rid})")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"no such route: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    errors = exc.errors()
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    if errors and all(tuple(e.get("loc", ()))[:1] == ("query",) for e in errors):
        message = "invalid query parameter: " + "; ".join(parts)
        return error_response(422, "invalid_parameter", message)
    return error_response(400, "invalid_request", "invalid request: " + "; ".join(parts))


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    return error_response(400, "invalid_request", "invalid request: the body is nested too deeply")


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """Build the application; the server state starts and stops with the app's lifespan.

    Parameters
    ----------
    config:
        The server settings (default: an embedded server under ``~/.cloacina``).
    """
    from cloaca.server.routes import executions, health, keys, tenants, workflows, ws
    from cloaca.server.state import ServerState

    cfg = config or ServerConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(ServerState, cfg)
        app.state.server = state
        try:
            await run_in_threadpool(state.start)
            yield
        finally:
            await run_in_threadpool(state.stop)

    app = FastAPI(
        title="cloaca server",
        version="1.0.0",
        description="Cloacina-compatible REST API over the cloaca durable runner.",
        lifespan=lifespan,
        redirect_slashes=False,
        dependencies=[Depends(check_params)],
    )
    app.add_middleware(BodyLimitMiddleware, limit=cfg.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(StorageUnavailableError, _storage_unavailable)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    for module in (health, keys, tenants, workflows, executions, ws):
        app.include_router(module.router)
    return app
