"""Running the server: bind the socket (port 0 picks a free one), then uvicorn.

The socket is bound before the app starts so the real address is known and written to
``<home>/server.json`` — clients and tests read it instead of racing for a free port.
SIGTERM and SIGINT stop the server gracefully (running executions get the grace period).
"""

from __future__ import annotations

import socket

from cloaca.server.config import ServerConfig, parse_bind


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(config: ServerConfig, bind: str = "127.0.0.1:8080", *, log_level: str = "info") -> None:
    """Serve the API on ``bind`` until SIGTERM/SIGINT.

    Parameters
    ----------
    config:
        The server settings; ``public_url`` is filled in from the bound address.
    bind:
        ``HOST:PORT``; port 0 picks a free port.
    log_level:
        uvicorn's log level.
    """
    import uvicorn

    from cloaca.server.app import create_app

    host, port = parse_bind(bind)
    sock = bind_socket(host, port)
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    config.public_url = config.public_url or f"http://{shown}:{real_port}"
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=log_level == "debug",
            ws="websockets-sansio",
            lifespan="on",
            # open requests get a few seconds; running executions then get the grace
            timeout_graceful_shutdown=max(1, min(int(config.shutdown_grace_seconds), 5)),
        )
    )
    server.run(sockets=[sock])
