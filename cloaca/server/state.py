"""`ServerState`: everything a running server holds, its start-up and its shutdown.

Start-up order matters for recovery: open the server tables, make sure an admin key exists
(the bootstrap key), then for each tenant start its runner and re-register its stored packages
— the runner only claims executions of workflows it knows, so executions left running by the
previous process resume as soon as their workflow is back.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path

from cloaca.registry.interpreters import Interpreter, host_interpreter, probe_interpreter
from cloaca.server.auth import Tickets, hash_key, new_key
from cloaca.server.config import ServerConfig
from cloaca.server.db import ServerDB
from cloaca.server.packages import Packages, PackageStore
from cloaca.server.tenants import TenantManager

log = logging.getLogger("cloaca.server")


def server_interpreters(config: ServerConfig) -> list[Interpreter]:
    """The server's own Python, then each ``--python X.Y=PATH`` (probed now, so one that
    cannot start a worker stops the server at start with the reason)."""
    found = [host_interpreter()]
    for version, path in config.pythons.items():
        interp = probe_interpreter(path, expected=version)
        log.info("package workers may run on Python %s (%s)", interp.version, path)
        found.append(interp)
    return found


class ServerState:
    """The server's database, tenants, packages and WebSocket tickets."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        config.home.mkdir(parents=True, exist_ok=True)
        self.db = ServerDB(config.url)
        interpreters = server_interpreters(config)
        self.tenants = TenantManager(config, db=self.db)
        self.packages = Packages(
            self.db,
            PackageStore(config.packages_dir),
            config.staging_dir,
            config.max_manifest_bytes,
            interpreters=interpreters,
        )
        #: ``X.Y`` of every interpreter package tasks can run on, the server's own first
        self.pythons = list(dict.fromkeys(i.short for i in interpreters))
        self.tickets = Tickets()
        self.ready = False
        self.started_at = time.time()

    def start(self) -> None:
        """Bootstrap the admin key, start tenants' runners, reload their packages."""
        self._bootstrap()
        with_packages = {row.tenant_id for row in self.db.list_packages()}
        for name in self.tenants.names():
            if name in with_packages or name == "public":
                count = self.packages.reload(self.tenants.runtime(name))
                if count:
                    log.info("tenant %r: %d package(s) loaded", name, count)
        self._write_state_file()
        self.ready = True

    def _bootstrap(self) -> None:
        if self.db.has_active_admin_key():
            return
        add_bootstrap_key(self.db, self.config, self.config.bootstrap_key or new_key())
        log.info("bootstrap admin key written to %s (mode 0600)", self.config.bootstrap_key_path)

    def _write_state_file(self) -> None:
        info = {"pid": os.getpid(), "url": self.config.public_url, "home": str(self.config.home)}
        tmp = self.config.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, self.config.state_path)

    def stop(self) -> None:
        """Stop runners (running executions get the grace period), workers and the database."""
        self.ready = False
        try:
            info = json.loads(self.config.state_path.read_text())
            if info.get("pid") == os.getpid():
                self.config.state_path.unlink(missing_ok=True)
        except (OSError, ValueError):
            pass
        self.tenants.close(self.config.shutdown_grace_seconds)
        self.packages.close()
        self.db.close()


def add_bootstrap_key(db: ServerDB, config: ServerConfig, key: str) -> None:
    """Store ``key`` as the god-mode key and write it to ``<home>/bootstrap-key``."""
    db.add_key(
        {
            "id": str(uuid.uuid4()),
            "name": "bootstrap",
            "key_hash": hash_key(key),
            "role": "admin",
            "tenant_id": None,
            "is_admin": True,
        }
    )
    write_secret(config.bootstrap_key_path, key + "\n")


def rotate_bootstrap_key(config: ServerConfig) -> Path:
    """Revoke every god-mode key and write a new one to ``<home>/bootstrap-key`` (the
    operator's way to replace it; the API cannot). Returns the key file's path."""
    db = ServerDB(config.url)
    try:
        old = [r.id for r in db.list_keys(all_tenants=True) if r.is_admin and not r.revoked]
        add_bootstrap_key(db, config, new_key())  # the new key is on disk before the old goes
        for key_id in old:
            db.revoke_key(key_id)
    finally:
        db.close()
    return config.bootstrap_key_path


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (mode 0600 from creation on)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
