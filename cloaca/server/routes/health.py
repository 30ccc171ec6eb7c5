"""``GET /health`` (the process answers) and ``GET /ready`` (its database answers too)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cloaca.server.auth import state_of
from cloaca.server.models import Health, Ready

router = APIRouter(tags=["operational"])


@router.get("/health", response_model=Health)
def health(request: Request) -> dict[str, object]:
    """Liveness: 200 ``{"status": "ok", "pythons": ["3.12", ...]}`` while the process serves
    requests; ``pythons`` are the versions package tasks can run on (the server's own first)."""
    return {"status": "ok", "pythons": state_of(request).pythons}


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(request: Request) -> JSONResponse:
    """Readiness: 200 ``{"status": "ready"}``, or 503 with a reason."""
    state = state_of(request)
    reason = None
    if not state.ready:
        reason = "starting or stopping"
    else:
        try:
            state.db.ping()
        except Exception as exc:
            reason = f"database unavailable: {type(exc).__name__}"
    if reason:
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready"})
