"""Input checks at the API's edge: names, text, JSON values, numeric query parameters and
request body sizes.

Everything a client sends is checked here before it reaches a database, so a value no column
can hold is answered 400 naming the field instead of failing in the database with a 500:

- names (tenants) with :func:`re.fullmatch` and ASCII classes only (``"evil\\n"`` is refused);
- text: no NUL character (PostgreSQL text cannot hold it), no lone surrogate (it cannot be
  encoded as UTF-8, so every later read of it would fail), at most the column's length;
- JSON values (an execution's context): the same, for every key and string, recursively;
- query parameters: 422 ``invalid_parameter`` naming the parameter when not a number in range
  (see :func:`cloaca.server.app.create_app`);
- request bodies: :class:`BodyLimitMiddleware` answers 413 past the configured size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloaca.errors import ApiError

TENANT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
RESERVED_TENANTS = frozenset({"information_schema", "public"})
MAX_JSON_DEPTH = 64
MAX_OFFSET = 2**31 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    """A 400 error in the API's format."""
    return ApiError(message, status=400, code=code)


def text_problem(value: str, max_length: int | None = None) -> str | None:
    """Why ``value`` cannot be stored as text (None when it can)."""
    if "\x00" in value:
        return "contains a NUL character"
    if _SURROGATE.search(value):
        return "contains a lone surrogate (not valid Unicode)"
    if max_length is not None and len(value) > max_length:
        return f"is {len(value)} characters long; at most {max_length} are allowed"
    return None


def check_text(value: str | None, field: str, max_length: int | None = None) -> str | None:
    """``value`` when it can be stored, else 400 naming ``field``."""
    if value is None:
        return None
    problem = text_problem(value, max_length)
    if problem:
        raise bad_request(f"{field} {problem}")
    return value


def safe_text(value: str) -> str:
    """Pydantic validator: refuse NUL characters and lone surrogates."""
    problem = text_problem(value)
    if problem:
        raise ValueError(f"text {problem}")
    return value


def json_problem(value: Any, path: str = "", depth: int = 0) -> str | None:
    """Where and why a JSON value cannot be stored (None when it can)."""
    if depth > MAX_JSON_DEPTH:
        return f"{path or 'value'} is nested more than {MAX_JSON_DEPTH} levels deep"
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{path or 'value'} {problem}" if problem else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and text_problem(key):
                return f"key {here!r} {text_problem(key)}"
            found = json_problem(item, here, depth + 1)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = json_problem(item, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


def safe_json(value: Any) -> Any:
    """Pydantic validator for JSON objects: refuse NUL, lone surrogates, absurd nesting."""
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def tenant_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a new tenant's name (None when it can)."""
    if not TENANT_NAME.fullmatch(name):
        return (
            "use ASCII letters, digits and underscores, starting with a letter or underscore, "
            "at most 63 characters"
        )
    lower = name.lower()
    if lower in RESERVED_TENANTS or lower.startswith("pg_"):
        return "the name is reserved (information_schema, public, pg_*)"
    return None


def check_params(request: HTTPConnection) -> None:
    """App-wide dependency: no path or query parameter may hold a NUL character, a lone
    surrogate or more than 1024 characters (400 naming the parameter)."""
    for kind, items in (
        ("path parameter", request.path_params.items()),
        ("query parameter", request.query_params.multi_items()),
    ):
        for name, value in items:
            if isinstance(value, str):
                problem = text_problem(value, 1024)
                if problem:
                    raise bad_request(f"{kind} {name!r} {problem}")


class BodyLimitMiddleware:
    """Answer 413 ``payload_too_large`` to request bodies over ``limit`` bytes (checked from
    ``Content-Length`` up front and while the body streams in); package uploads (multipart)
    have their own, larger limit and pass through."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data"):
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # the route's error handler turns it into a 413
                    raise HTTPException(413, detail=self.message)
            return message

        await self.app(scope, limited, send)

    @property
    def message(self) -> str:
        """The 413 answer's message."""
        return f"request body larger than the server's limit of {self.limit} bytes (--max-body-mb)"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        from cloaca.server.app import error_response

        await error_response(413, "payload_too_large", self.message)(scope, receive, send)
