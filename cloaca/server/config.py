"""`ServerConfig`: what a server needs to start, and the layout of its home directory.

::

    <home>/
      bootstrap-key        the first admin key (mode 0600), written on first start only
      server.db            the embedded SQLite database (when no --database-url is given)
      tenants/<name>.db    each non-public tenant's runner database on SQLite
      packages/<sha256>.cloaca   uploaded archives, content-addressed
      staging/             packages unpacked by the loader (workers import from here)
      server.json          pid and URL of the running server (removed on a clean stop)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runner pulls in SQLAlchemy; the CLI reads these defaults without it
    from cloaca.runner.config import DefaultRunnerConfig

DEFAULT_HOME = "~/.cloacina"
DEFAULT_BIND = "127.0.0.1:8080"
DEFAULT_MAX_UPLOAD = 100 * 1024 * 1024
DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_MAX_MANIFEST = 2 * 1024 * 1024


def _runner_config() -> DefaultRunnerConfig:
    from cloaca.runner.config import DefaultRunnerConfig

    return DefaultRunnerConfig()


def default_home() -> Path:
    """``$CLOACINA_HOME`` or ``~/.cloacina``."""
    return Path(os.environ.get("CLOACINA_HOME") or DEFAULT_HOME).expanduser()


def parse_bind(bind: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:8080`` for IPv6); raise ValueError when malformed."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"invalid --bind {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    number = int(port)
    if number > 65535:
        raise ValueError(f"invalid --bind {bind!r}: port must be 0-65535")
    return host.strip("[]"), number


_PSEUDO_FS = ("/proc", "/sys", "/dev")


def check_home(home: Path) -> None:
    """Make sure ``home`` is (or can become) a writable directory.

    Raises
    ------
    ValueError
        One line naming the path and the fix (the CLIs print it and exit 2).
    """
    for pseudo in map(Path, _PSEUDO_FS):
        if home == pseudo or pseudo in home.parents:
            raise ValueError(
                f"server home {home} is inside {pseudo}, a kernel file system; pass --home "
                "with a directory on a real disk (e.g. ~/.cloacina)"
            )
    if home.exists() and not home.is_dir():
        raise ValueError(
            f"server home {home} is a file, not a directory; pass --home with a directory "
            "(or move the file away)"
        )
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot create server home {home}: {exc.strerror or exc}; create it yourself "
            "or pass --home with a writable directory"
        ) from None
    probe = home / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(
            f"server home {home} is not writable ({exc.strerror or exc}); fix its owner or "
            "permissions, or pass --home with a writable directory"
        ) from None


@dataclass
class ServerConfig:
    """Settings of one server process.

    Parameters
    ----------
    home:
        The server's directory (see the module docstring).
    database_url:
        ``postgresql://...`` for shared deployments; None means ``sqlite:///<home>/server.db``.
    bootstrap_key:
        The admin key to create on first start (None: generate one).
    max_upload_bytes:
        Largest accepted package upload; bigger bodies are refused while streaming.
    max_body_bytes:
        Largest accepted JSON request body (an execute call's context ...): 413 past it.
    max_manifest_bytes:
        Largest ``manifest.json`` in an uploaded package: 400 ``upload_failed`` past it.
    runner:
        Settings of every tenant's :class:`~cloaca.runner.DefaultRunner`.
    shutdown_grace_seconds:
        On stop, how long running executions may take to finish; the rest are resumed by the
        next start.
    public_url:
        The URL clients reach this server at (written to ``server.json``).
    pythons:
        Other interpreters package workers may run on, ``{"3.11": "/usr/bin/python3.11"}``
        (``--python 3.11=/usr/bin/python3.11``); a package runs on the server's own Python
        when its vendored set allows, else on the one it was built for.
    """

    home: Path = field(default_factory=default_home)
    database_url: str | None = None
    bootstrap_key: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST
    runner: DefaultRunnerConfig = field(default_factory=_runner_config)
    shutdown_grace_seconds: float = 10.0
    public_url: str | None = None
    pythons: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser().resolve()

    @property
    def url(self) -> str:
        """The main database URL (the embedded SQLite file by default)."""
        return self.database_url or f"sqlite:///{self.home / 'server.db'}"

    @property
    def is_postgres(self) -> bool:
        """True when the database is PostgreSQL (tenants are schemas)."""
        return self.url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://"))

    @property
    def packages_dir(self) -> Path:
        """Where uploaded archives are stored."""
        return self.home / "packages"

    @property
    def staging_dir(self) -> Path:
        """Where the loader unpacks packages."""
        return self.home / "staging"

    @property
    def bootstrap_key_path(self) -> Path:
        """The file the first admin key is written to."""
        return self.home / "bootstrap-key"

    @property
    def state_path(self) -> Path:
        """``server.json``: pid and URL of the running server."""
        return self.home / "server.json"

    def tenant_sqlite_url(self, tenant: str) -> str:
        """The runner database of ``tenant`` on SQLite (beside the main file)."""
        main = self.url
        if self.database_url is None:
            return f"sqlite:///{self.home / 'tenants' / f'{tenant}.db'}"
        from cloaca.storage.url import parse_database_url

        parsed = parse_database_url(main)
        if parsed.path is None:  # in-memory: tenants get their own in-memory databases
            return "sqlite:///:memory:"
        path = Path(parsed.path)
        return f"sqlite:///{path.with_name(f'{path.stem}-tenant-{tenant}{path.suffix}')}"
