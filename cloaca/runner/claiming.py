"""Claiming work from the database and resuming it: the part of
:class:`~cloaca.runner.DefaultRunner` that picks up queued executions and executions left by
dead runners (the SQL lives in :mod:`cloaca.runner.claims`, the resume logic in
:mod:`cloaca.runner.recovery`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from cloaca.runner import claims
from cloaca.runner.recovery import ResumePlan, plan_resume

if TYPE_CHECKING:
    from cloaca.runner.config import DefaultRunnerConfig
    from cloaca.runner.driver import ExecutionDriver
    from cloaca.runner.writer import Writer
    from cloaca.storage import Store
    from cloaca.workflow import Workflow

log = logging.getLogger("cloaca.runner")


class ClaimsMixin:
    """Claims and resumption for :class:`~cloaca.runner.DefaultRunner`."""

    store: Store
    writer: Writer
    runner_id: str
    stale_after: float
    config: DefaultRunnerConfig
    _closed: bool

    def known_workflows(self) -> list[str]:  # pragma: no cover - defined by DefaultRunner
        raise NotImplementedError

    def _resolve(self, workflow: str | Workflow) -> Workflow:  # pragma: no cover
        raise NotImplementedError

    def _launch(  # pragma: no cover
        self, eid: str, plan: ResumePlan, initial: dict[str, Any]
    ) -> ExecutionDriver:
        raise NotImplementedError

    def claim_work(self) -> list[str]:
        """Claim executions written by other processes (queued, or left by a dead runner)
        and start them here; return their ids. The service thread calls this on each poll.
        """
        if self._closed:
            return []
        stale_before = time.time() - self.stale_after
        known = self.known_workflows()
        if not claims.has_claimable(self.store, known, stale_before):
            return []
        claims.end_dead_sessions(self.store, known, stale_before)
        started = []
        for row, task_rows in claims.claim_executions(
            self.store, self.runner_id, known, stale_before
        ):
            try:
                plan = self._plan(row, task_rows)
            except Exception:
                log.exception("cannot resume execution %s; marking it Failed", row["id"])
                self.writer.update_execution(
                    row["id"],
                    {
                        "status": "Failed",
                        "finished_at": time.time(),
                        "error_message": "could not be resumed (see the runner log)",
                    },
                )
                continue
            if row["status"] == "Running":
                log.info("resuming execution %s of %r", row["id"], row["workflow_name"])
            self._launch(row["id"], plan, json.loads(row["context"]))
            started.append(row["id"])
        return started

    def _plan(self, row: dict[str, Any], task_rows: list[dict[str, Any]]) -> ResumePlan:
        wf = self._resolve(row["workflow_name"])
        if row["workflow_version"] and wf.version != row["workflow_version"]:
            log.warning(
                "execution %s was started with version %s of %r; resuming with version %s",
                row["id"],
                row["workflow_version"],
                wf.name,
                wf.version,
            )
        if row["selection"]:
            sel = json.loads(row["selection"])
            wf = wf.subset(sel.get("start_from"), sel.get("only"), sel.get("until"))
        budget = self.config.max_recovery_attempts
        return plan_resume(wf, json.loads(row["context"]), task_rows, budget)
