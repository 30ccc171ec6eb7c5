"""A small HTTP client for the server's REST API (httpx); answers that are not 2xx become
:class:`~cloaca.errors.ApiError` with the body's ``error``/``code`` and the request id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from cloaca.errors import ApiError


class ApiClient:
    """Calls ``server`` with ``Authorization: Bearer <api_key>``."""

    def __init__(self, server: str, api_key: str | None, timeout: float = 60.0) -> None:
        self.server = server
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=server, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """Send one request; return the JSON body (raise :class:`ApiError` on errors)."""
        response = self.http.request(method, path, **kw)
        if response.status_code >= 400:
            try:
                body = response.json()
                message, code = str(body["error"]), str(body["code"])
            except (ValueError, KeyError, TypeError):
                message, code = response.text[:200] or response.reason_phrase, "unknown"
            raise ApiError(
                message,
                status=response.status_code,
                code=code,
                request_id=response.headers.get("x-request-id"),
            )
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters (None values dropped)."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        """POST a JSON body."""
        return self.request("POST", path, json=body if body is not None else {})

    def delete(self, path: str, **params: Any) -> Any:
        """DELETE with query parameters."""
        return self.request(
            "DELETE", path, params={k: v for k, v in params.items() if v is not None}
        )

    def upload(self, path: str, file: Path) -> Any:
        """POST ``file`` as the multipart field ``file``."""
        with open(file, "rb") as fh:
            return self.request("POST", path, files={"file": (file.name, fh)})
