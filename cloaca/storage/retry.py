"""Retrying database writes: which failures are worth retrying, the backoff between tries,
and a bounded "commit this or give up" helper.

A *transient* failure is one the same statement may survive on a later try: a lost or refused
connection (a restarted or terminated PostgreSQL backend), a full disk, a locked SQLite file,
a serialization failure. Anything else (a constraint violation, a value the column cannot
hold) fails the same way every time and is not retried.

Backoff: the first retry waits :data:`FIRST_DELAY` seconds, each next one twice as long, up
to :data:`MAX_DELAY`; after a failure on PostgreSQL the pool's connections are dropped so the
next try opens fresh ones. ``docs/storage.md`` states these bounds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import exc as sa_exc

from cloaca.errors import StorageUnavailableError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from cloaca.storage.engine import Store

log = logging.getLogger("cloaca.storage")

FIRST_DELAY = 0.05
"""Seconds before the first retry of a failed write."""
MAX_DELAY = 2.0
"""Longest wait between two tries."""

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is a database failure a later try may not meet again."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError
        | sa_exc.ResourceClosedError
        | OSError,
    )


class Backoff:
    """Delays between tries: :data:`FIRST_DELAY`, doubling, capped at :data:`MAX_DELAY`."""

    def __init__(self, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> None:
        self.first, self.cap = first, cap
        self.delay = first
        self.failures = 0

    def next(self) -> float:
        """The delay before the next try (and count one more failure)."""
        delay = self.delay
        self.failures += 1
        self.delay = min(self.cap, self.delay * 2)
        return delay

    def reset(self) -> None:
        """Back to the first delay after a success."""
        self.delay, self.failures = self.first, 0


def recover_connections(store: Store) -> None:
    """After a failed write: drop the pool's connections (PostgreSQL) so the next try reconnects.

    An in-memory SQLite database lives in its one connection and is never dropped; file SQLite
    connections need no reset.
    """
    if store.dialect == "postgresql":
        try:
            store.engine.dispose()
        except Exception:  # disposing a pool of dead connections may itself fail
            log.debug("could not dispose the connection pool", exc_info=True)


def write_within(store: Store, body: Callable[[Connection], T], timeout: float) -> T:
    """Run ``body`` in one write transaction, retrying transient failures for ``timeout``
    seconds; return its result once committed.

    ``body`` must be safe to run again after a failure whose commit may or may not have
    happened (check for its own rows first). Raises :class:`StorageUnavailableError` when the
    transaction could not be committed in time; non-transient errors propagate at once.
    """
    deadline = time.monotonic() + timeout
    backoff = Backoff()
    while True:
        try:
            with store.write() as conn:
                return body(conn)
        except Exception as exc:
            if not is_transient(exc):
                raise
            recover_connections(store)
            delay = backoff.next()
            left = deadline - time.monotonic()
            if left <= 0:
                raise StorageUnavailableError(
                    f"could not record the change within {timeout:g}s "
                    f"({backoff.failures} tries; last error: {describe_failure(exc)})",
                    url=store.url.display,
                ) from exc
            log.warning(
                "database write failed (%s); retrying in %.2fs", describe_failure(exc), delay
            )
            time.sleep(min(delay, left))


def describe_failure(exc: BaseException) -> str:
    """The type and first line of an exception's message (driver errors carry SQL and links)."""
    orig: Any = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"
