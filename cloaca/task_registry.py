"""`TaskRegistry`: a named collection of task specs, optionally grouped by package namespace.

A task's *key* is its id, or ``"namespace::id"`` when it was added under a namespace (a loaded
package's tasks live under the package name). Adding a task whose key exists replaces it, which
is what re-running a notebook cell or re-loading a package needs.
"""

from __future__ import annotations

import builtins
import difflib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from cloaca.errors import TaskSelectionError
from cloaca.task import TaskSpec, get_spec


def qualify(namespace: str | None, task_id: str) -> str:
    """Return the registry key of ``task_id`` in ``namespace``."""
    return f"{namespace}::{task_id}" if namespace else task_id


class TaskRegistry:
    """A thread-safe collection of :class:`~cloaca.task.TaskSpec` keyed by (namespaced) id."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}
        self._namespaces: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def add(self, task: TaskSpec | Callable[..., Any], namespace: str | None = None) -> str:
        """Add (or replace) a task given as a spec or a ``@task`` function; return its key."""
        spec = get_spec(task)
        if spec is None:
            raise TypeError(f"{task!r} is not a @task function or TaskSpec")
        key = qualify(namespace, spec.id)
        with self._lock:
            self._tasks[key] = spec
            self._namespaces[key] = namespace
        return key

    def remove(self, key: str) -> TaskSpec | None:
        """Remove the task under ``key`` and return it (``None`` when absent)."""
        with self._lock:
            self._namespaces.pop(key, None)
            return self._tasks.pop(key, None)

    def remove_namespace(self, namespace: str) -> int:
        """Remove every task of ``namespace``; return how many were removed."""
        with self._lock:
            keys = [k for k, ns in self._namespaces.items() if ns == namespace]
            for k in keys:
                del self._tasks[k]
                del self._namespaces[k]
        return len(keys)

    def get(self, key: str) -> TaskSpec:
        """Return the task under ``key`` (a bare id matches a unique namespaced task too)."""
        return self._tasks[self.resolve(key)]

    def namespace_of(self, key: str) -> str | None:
        """Return the namespace ``key`` was added under."""
        return self._namespaces.get(key)

    def resolve(self, name: str, namespace: str | None = None) -> str:
        """Resolve ``name`` to a key: exact key, then ``namespace::name``, then a unique suffix.

        Raises :class:`TaskSelectionError` with close matches when nothing fits.
        """
        with self._lock:
            keys = list(self._tasks)
        if namespace and "::" not in name and qualify(namespace, name) in self._tasks:
            return qualify(namespace, name)
        if name in self._tasks:
            return name
        if "::" not in name:
            hits = [k for k in keys if k.endswith("::" + name)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise TaskSelectionError(
                    f"task id {name!r} is ambiguous; qualify it as one of {hits}",
                    task_id=name,
                    suggestions=hits,
                )
        raise TaskSelectionError(
            task_id=name, suggestions=difflib.get_close_matches(name, keys, n=3)
        )

    def list(self) -> list[TaskSpec]:
        """All specs, in insertion order."""
        with self._lock:
            return list(self._tasks.values())

    def keys(self) -> builtins.list[str]:
        """All keys, in insertion order."""
        with self._lock:
            return list(self._tasks)

    def items(self) -> builtins.list[tuple[str, TaskSpec]]:
        """All (key, spec) pairs, in insertion order."""
        with self._lock:
            return list(self._tasks.items())

    def clear(self) -> None:
        """Remove every task."""
        with self._lock:
            self._tasks.clear()
            self._namespaces.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(self.list())


GLOBAL_REGISTRY = TaskRegistry()
"""Every ``@task`` declared anywhere lands here (replacing an earlier task with the same id)."""
