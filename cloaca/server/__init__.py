"""The cloacina-compatible REST server: FastAPI + uvicorn over the durable runner.

- :mod:`.config` — :class:`ServerConfig` and the home directory layout;
- :mod:`.app` — :func:`create_app`: middleware, error handlers, routers, lifespan;
- :mod:`.state` — :class:`ServerState`: start-up (bootstrap key, packages, runners), shutdown;
- :mod:`.db` — the server's own tables (tenants, API keys, packages);
- :mod:`.auth` — keys, roles, the request principal, WebSocket tickets;
- :mod:`.tenants` — one runner per tenant (a PostgreSQL schema, or a SQLite file);
- :mod:`.packages` — the content-addressed package store and workflow registration;
- :mod:`.views` — executions, task records and events as the API shows them;
- :mod:`.models` — the pydantic request/response models (the OpenAPI spec);
- :mod:`.routes` — one router per resource; :mod:`.serve` — running uvicorn.

Nothing here is imported by ``import cloaca``; FastAPI is loaded only when a server starts.
"""

from __future__ import annotations

from cloaca._lazy import lazy_getattr

_LAZY = {
    "ServerConfig": "cloaca.server.config",
    "create_app": "cloaca.server.app",
    "serve": "cloaca.server.serve",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = sorted(_LAZY)
