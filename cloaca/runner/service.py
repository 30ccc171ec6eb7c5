"""The runner's background thread: heartbeat, claims of work from other processes, cron and
trigger ticks. It sleeps until the earliest of its next duties; it never touches work started
in this process (that is driven by in-process wake-ups in the scheduler).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from cloaca.runner import claims
from cloaca.storage.retry import describe_failure, is_transient, recover_connections

if TYPE_CHECKING:
    from cloaca.runner.runner import DefaultRunner

log = logging.getLogger("cloaca.runner")


class Service(threading.Thread):
    """Periodic duties of one :class:`DefaultRunner` (see the module docstring)."""

    def __init__(self, runner: DefaultRunner) -> None:
        super().__init__(name="cloaca-runner-service", daemon=True)
        self.runner = runner
        self._stop_event = threading.Event()
        self._wake = threading.Event()

    def stop(self) -> None:
        """Ask the thread to end and wait for it."""
        self._stop_event.set()
        self._wake.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(30)

    def wake(self) -> None:
        """Run the duties now (e.g. after a cron schedule changed)."""
        self._wake.set()

    def run(self) -> None:
        r, cfg = self.runner, self.runner.config
        poll = max(cfg.scheduler_poll_interval_ms, 1) / 1000
        next_beat = time.monotonic() + r.heartbeat_interval
        next_claim = time.monotonic() + poll
        while not self._stop_event.is_set():
            now = time.monotonic()
            wakeups = []
            try:
                if now >= next_beat:
                    claims.heartbeat(r.store, r.runner_id)
                    if cfg.enable_recovery:
                        claims.reap_dead_local_runners(r.store, r.runner_id)
                    next_beat = now + r.heartbeat_interval
                if now >= next_claim:
                    r.claim_work()
                    next_claim = now + poll
                if cfg.enable_cron_scheduling:
                    wakeups.append(r._cron_tick())
                wakeups.append(r._trigger_tick())
            except Exception as exc:
                if self._stop_event.is_set():
                    return
                if is_transient(exc):  # the database is away: one line, fresh connections
                    log.warning(
                        "runner background duty failed (%s); retrying", describe_failure(exc)
                    )
                    recover_connections(r.store)
                else:
                    log.exception("runner background duty failed; retrying")
            delay = min([next_beat - now, next_claim - now, *[w for w in wakeups if w is not None]])
            self._wake.wait(max(delay, 0.001))
            self._wake.clear()
