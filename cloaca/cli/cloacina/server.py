"""``cloacina server start | stop | status | health``.

``rotate-key`` replaces the bootstrap key on the host (the API cannot revoke it).
``start`` serves in the foreground (``--background`` detaches, logging to
``<home>/server.log``, and returns once the server answers). ``stop`` signals the process named
in ``<home>/server.json``; ``status`` reports it; ``health`` asks ``--server`` and exits 0 when
it is up, 2 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cloaca._process import pid_alive
from cloaca.cli.cloacina._context import EXIT_DOWN, EXIT_OK, Ctx

START_TIMEOUT = 60.0


def add_start_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``server start`` (shared with ``cloacina-server``)."""
    from cloaca.server.config import DEFAULT_BIND, DEFAULT_MAX_BODY, DEFAULT_MAX_MANIFEST

    parser.add_argument("--bind", default=DEFAULT_BIND, help=f"HOST:PORT (default {DEFAULT_BIND})")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CLOACINA_DATABASE_URL"),
        help="postgresql://... for shared deployments (default: SQLite under --home)",
    )
    parser.add_argument(
        "--home",
        dest="server_home",
        help="server directory (default: $CLOACINA_HOME or ~/.cloacina)",
    )
    parser.add_argument(
        "--bootstrap-key", help="admin key to create on first start (default: generate one)"
    )
    parser.add_argument(
        "--max-upload-mb", type=int, default=100, help="largest package upload (default 100)"
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULT_MAX_BODY / 2**20,
        help="largest JSON request body, e.g. an execute call's context (default 10)",
    )
    parser.add_argument(
        "--max-manifest-kb",
        type=int,
        default=DEFAULT_MAX_MANIFEST // 1024,
        help="largest manifest.json in an uploaded package (default 2048)",
    )
    parser.add_argument(
        "--shutdown-grace", type=float, default=10.0, help="seconds running executions get on stop"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--python",
        dest="pythons",
        action="append",
        metavar="X.Y=PATH",
        help="another interpreter for package workers, repeatable "
        "(e.g. 3.11=/usr/bin/python3.11): packages built for that Python run on it",
    )
    parser.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        default=os.environ.get("CLOACINA_DASK_SCHEDULER"),
        help="run tasks on this existing Dask cluster (tcp://host:8786; default: locally)",
    )


def _config(args: argparse.Namespace) -> Any:
    from cloaca.registry.interpreters import parse_python_option
    from cloaca.server.config import ServerConfig, check_home, default_home, parse_bind

    parse_bind(args.bind)  # fail early on a malformed address
    if args.max_body_mb <= 0 or args.max_manifest_kb <= 0 or args.shutdown_grace < 0:
        raise ValueError("--max-body-mb and --max-manifest-kb must be > 0, --shutdown-grace >= 0")
    check_home(Path(args.server_home or getattr(args, "home", None) or default_home()).resolve())
    pythons = dict(parse_python_option(v) for v in getattr(args, "pythons", None) or ())
    config = ServerConfig(
        home=Path(args.server_home or getattr(args, "home", None) or default_home()),
        database_url=args.database_url,
        bootstrap_key=args.bootstrap_key or os.environ.get("CLOACINA_BOOTSTRAP_KEY"),
        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_manifest_bytes=args.max_manifest_kb * 1024,
        shutdown_grace_seconds=args.shutdown_grace,
        pythons=pythons,
    )
    if getattr(args, "dask_scheduler", None):
        config.runner.executor = "dask"
        config.runner.dask_scheduler = args.dask_scheduler
    return config


def start_foreground(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT."""
    import logging

    from cloaca.registry.interpreters import probe_interpreter
    from cloaca.server.serve import serve

    config = _config(args)
    for version, path in config.pythons.items():  # an unusable one stops us before serving
        probe_interpreter(path, expected=version)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    serve(config, args.bind, log_level=args.log_level)
    return EXIT_OK


def _read_state(home: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads((home / "server.json").read_text())
    except (OSError, ValueError):
        return None
    return info if pid_alive(int(info.get("pid", 0))) else None


def cmd_start(ctx: Ctx, args: argparse.Namespace) -> int:
    """``server start``."""
    if not args.background:
        return start_foreground(args)
    config = _config(args)
    config.home.mkdir(parents=True, exist_ok=True)
    if _read_state(config.home):
        raise ctx.fail(f"a server is already running from {config.home}", "stop it first")
    from cloaca.registry.interpreters import probe_interpreter

    for version, path in config.pythons.items():  # refuse an unusable one here, not in the log
        probe_interpreter(path, expected=version)
    argv = [sys.executable, "-m", "cloaca.cli.server", "--bind", args.bind]
    argv += ["--home", str(config.home), "--max-upload-mb", str(args.max_upload_mb)]
    argv += ["--log-level", args.log_level, "--shutdown-grace", str(args.shutdown_grace)]
    argv += ["--max-body-mb", str(args.max_body_mb), "--max-manifest-kb", str(args.max_manifest_kb)]
    if args.database_url:
        argv += ["--database-url", args.database_url]
    if args.dask_scheduler:
        argv += ["--dask-scheduler", args.dask_scheduler]
    for version, path in config.pythons.items():
        argv += ["--python", f"{version}={path}"]
    env = dict(os.environ)
    if args.bootstrap_key:  # never on a command line other users can read
        env["CLOACINA_BOOTSTRAP_KEY"] = args.bootstrap_key
    with open(config.home / "server.log", "ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        info = _read_state(config.home)
        if info and info.get("pid") == proc.pid:
            ctx.emit({"pid": proc.pid, "url": info["url"], "home": str(config.home)}, id_key="url")
            return EXIT_OK
        if proc.poll() is not None:
            raise ctx.fail(
                f"the server exited with status {proc.returncode}",
                f"see {config.home / 'server.log'}",
            )
        time.sleep(0.1)
    proc.terminate()
    raise ctx.fail("the server did not start in time", f"see {config.home / 'server.log'}")


def cmd_stop(ctx: Ctx, args: argparse.Namespace) -> int:
    """``server stop``: SIGTERM, then wait for the process to end."""
    info = _read_state(ctx.home)
    if info is None:
        ctx.note(f"no server running from {ctx.home}")
        return EXIT_OK
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        raise ctx.fail(f"server {pid} is still running after {args.timeout}s", "try again")
    ctx.note(f"stopped server {pid}")
    return EXIT_OK


def cmd_status(ctx: Ctx, args: argparse.Namespace) -> int:
    """``server status``: the local server's pid, URL and readiness."""
    info = _read_state(ctx.home)
    if info is None:
        ctx.emit({"status": "stopped", "home": str(ctx.home)}, id_key="status")
        return EXIT_DOWN
    ready = "unknown"
    try:
        import httpx

        ready = httpx.get(info["url"] + "/ready", timeout=5).json().get("status", "unknown")
    except Exception as exc:
        ready = f"not answering ({type(exc).__name__})"
    row = {"status": "running", "pid": info["pid"], "url": info["url"], "ready": ready}
    ctx.emit({**row, "home": str(ctx.home)}, id_key="url")
    return EXIT_OK


def cmd_health(ctx: Ctx, args: argparse.Namespace) -> int:
    """``server health``: exit 0 when ``--server`` answers ``/health``, 2 otherwise."""
    import httpx

    try:
        response = httpx.get(ctx.server + "/health", timeout=args.timeout)
        up = response.status_code == 200
        detail = response.json().get("status", "?") if up else f"HTTP {response.status_code}"
    except (httpx.HTTPError, ValueError) as exc:
        up, detail = False, f"unreachable ({type(exc).__name__})"
    ctx.emit({"server": ctx.server, "status": detail if up else "down", "detail": detail},
             id_key="status")  # fmt: skip
    return EXIT_OK if up else EXIT_DOWN


def cmd_rotate_key(ctx: Ctx, args: argparse.Namespace) -> int:
    """``server rotate-key``: on the server's host, replace the bootstrap key (the API cannot
    revoke it). Works while the server runs: keys are checked on every request."""
    from cloaca.server.config import ServerConfig, check_home
    from cloaca.server.state import rotate_bootstrap_key

    check_home(ctx.home.resolve())
    config = ServerConfig(home=ctx.home, database_url=args.database_url)
    path = rotate_bootstrap_key(config)
    ctx.emit({"status": "rotated", "key_file": str(path)}, id_key="key_file")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add the ``server`` noun."""
    noun = sub.add_parser("server", help="run and check the server")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)
    start = verbs.add_parser("start", help="serve the API (foreground unless --background)")
    add_start_arguments(start)
    start.add_argument("--background", action="store_true", help="detach once it answers")
    start.set_defaults(handler=cmd_start)
    stop = verbs.add_parser("stop", help="stop the server running from --home")
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    stop.set_defaults(handler=cmd_stop)
    verbs.add_parser("status", help="is the local server running?").set_defaults(handler=cmd_status)
    rotate = verbs.add_parser(
        "rotate-key", help="replace the bootstrap key (on the server's host; revokes the old one)"
    )
    rotate.add_argument(
        "--database-url",
        default=os.environ.get("CLOACINA_DATABASE_URL"),
        help="the server's database (default: SQLite under --home)",
    )
    rotate.set_defaults(handler=cmd_rotate_key)
    health = verbs.add_parser("health", help="exit 0 when --server is up, 2 otherwise")
    health.add_argument("--timeout", type=float, default=5.0)
    health.set_defaults(handler=cmd_health)
