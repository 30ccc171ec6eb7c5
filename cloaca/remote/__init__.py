"""Talking to a running server from a client: which server and key (``cloacina`` profiles),
the REST client, and the live event stream of an execution.

Shared by the ``cloacina`` CLI and the notebook kit's ``%cloaca_run --server``:

* :mod:`cloaca.remote.profiles` - resolve the server URL, API key and tenant from explicit
  values, ``CLOACINA_*`` environment variables, ``<home>/config.toml`` profiles and the local
  server's ``server.json`` / ``bootstrap-key``;
* :mod:`cloaca.remote.client` - :class:`~cloaca.remote.client.ApiClient` (httpx);
* :mod:`cloaca.remote.events` - :func:`~cloaca.remote.events.follow_events` over the delivery
  WebSocket.
"""

from __future__ import annotations
