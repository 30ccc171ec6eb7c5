"""Which workflows a runner can run: its own registrations plus the process-wide registry,
and the record of each (name, version) in ``workflow_registrations``."""

from __future__ import annotations

import json
import threading
import time

from cloaca.runner.writer import Writer
from cloaca.workflow import Workflow, get_workflow, list_workflows


class WorkflowsMixin:
    """Workflow registration and lookup for :class:`~cloaca.runner.runner.DefaultRunner`."""

    _lock: threading.Lock
    _workflows: dict[str, Workflow]
    _recorded: set[tuple[str, str]]
    writer: Writer

    def register_workflow(self, workflow: Workflow, name: str | None = None) -> Workflow:
        """Make ``workflow`` runnable by this runner under ``name`` (default: its own name),
        without touching the process-wide registry (the server registers packages this way).
        """
        if name is not None and name != workflow.name:
            clone = object.__new__(Workflow)
            clone.__dict__.update(workflow.__dict__)
            clone.name = name
            workflow = clone
        with self._lock:
            self._workflows[workflow.name] = workflow
        self._record(workflow)
        return workflow

    def known_workflows(self) -> list[str]:
        """Names this runner can run (its own registrations and the global registry)."""
        with self._lock:
            own = set(self._workflows)
        return sorted(own | set(list_workflows()))

    def _resolve(self, workflow: str | Workflow) -> Workflow:
        if isinstance(workflow, Workflow):
            with self._lock:
                known = self._workflows.get(workflow.name)
            if known is not workflow:
                try:
                    is_global = get_workflow(workflow.name) is workflow
                except KeyError:
                    is_global = False
                if not is_global:
                    self.register_workflow(workflow)
            return workflow
        with self._lock:
            wf = self._workflows.get(workflow)
        return wf if wf is not None else get_workflow(workflow)

    def _record(self, wf: Workflow) -> None:
        key = (wf.name, wf.version)
        if key in self._recorded:
            return
        self._recorded.add(key)
        self.writer.register_workflow(
            {
                "name": wf.name,
                "version": wf.version,
                "task_ids": json.dumps(list(wf.dag.order)),
                "registered_at": time.time(),
            }
        )
