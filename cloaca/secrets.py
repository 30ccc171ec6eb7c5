"""Secrets: ``@workflow_secrets`` declarations and run-time resolution for ``Context.secret``.

A secret is a named bundle of named fields (``{"username": ..., "password": ...}``) that a task
reads by name at run time. Values come from the process's secret resolver — installed by the
host with :func:`set_secret_resolver` (a callable ``name -> {field: value}``, a mapping of such
bundles, or :class:`EnvSecretResolver`). :meth:`cloaca.Context.secret` hands the value to the
task only; it is never written into the context, so it never reaches the execution history,
the event log or the final context (unless the task itself stores it).

Errors are upstream's: no resolver configured → :class:`~cloaca.errors.SecretError` (a
``RuntimeError``); unknown secret or field → ``KeyError``; a resolver may raise
``PermissionError`` for a secret not granted.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Union

from cloaca.errors import SecretError, TaskDefinitionError

#: ``resolver(name)`` returns the secret's fields, or raises KeyError when it has none
SecretResolver = Callable[[str], Mapping[str, Any]]
ResolverLike = Union[SecretResolver, Mapping[str, Mapping[str, Any]]]  # noqa: UP007
ATTR = "__cloaca_workflow_secrets__"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_lock = threading.Lock()
_resolver: SecretResolver | None = None


class EnvSecretResolver:
    """Reads secret ``name`` from the environment variable ``CLOACINA_SECRET_<name>``, whose
    value is a JSON object of fields (e.g. ``{"username": "app", "password": "..."}``)."""

    prefix = "CLOACINA_SECRET_"

    def __call__(self, name: str) -> Mapping[str, Any]:
        """Return the fields of ``name``; KeyError when the variable is unset."""
        raw = os.environ.get(self.prefix + name)
        if raw is None:
            raise KeyError(f"secret {name!r} not found (environment variable {self.prefix}{name})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SecretError(
                f"{self.prefix}{name} is not a JSON object of fields ({exc.msg})", name=name
            ) from None
        if not isinstance(value, dict):
            raise SecretError(f"{self.prefix}{name} must hold a JSON object of fields", name=name)
        return value


def set_secret_resolver(resolver: ResolverLike | None) -> None:
    """Install the process's secret resolver (None removes it).

    ``resolver`` is a callable ``name -> {field: value}`` or a mapping ``{name: {field: value}}``.
    """
    global _resolver
    if resolver is not None and not callable(resolver):
        if not isinstance(resolver, Mapping):
            raise TypeError("a secret resolver is a callable name -> fields, or a mapping")
        table = {k: dict(v) for k, v in resolver.items()}

        def lookup(name: str) -> Mapping[str, Any]:
            if name not in table:
                raise KeyError(f"secret {name!r} not found (known: {sorted(table)})")
            return table[name]

        resolver = lookup
    with _lock:
        _resolver = resolver


def resolve_secret(name: str) -> dict[str, Any]:
    """The fields of secret ``name`` (a fresh dict each call; nothing is cached).

    Raises
    ------
    SecretError
        No resolver is configured, or it returned something that is not a mapping.
    KeyError
        The resolver knows no secret ``name``.
    """
    with _lock:
        resolver = _resolver
    if resolver is None:
        raise SecretError(
            "no secret resolver is configured in this process. Install one with "
            "cloaca.set_secret_resolver(...) (e.g. cloaca.EnvSecretResolver())",
            name=name,
        )
    try:
        value = resolver(name)
    except KeyError as exc:  # keep the resolver's own explanation when it gave one
        detail = exc.args[0] if exc.args and exc.args[0] != name else f"secret {name!r} not found"
        raise KeyError(detail) from None
    if not isinstance(value, Mapping):
        raise SecretError(
            f"the resolver returned {type(value).__name__}, not a mapping of fields", name=name
        )
    return dict(value)


class WorkflowSecretsDecorator:
    """What ``@cloaca.workflow_secrets(...)`` returns: applied to a task function, it records
    the secret names the workflow needs and returns the function unchanged."""

    def __init__(self, *names: str) -> None:
        if not names:
            raise TaskDefinitionError("@workflow_secrets needs at least one secret name")
        for name in names:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise TaskDefinitionError(
                    f"@workflow_secrets: invalid secret name {name!r}; use letters, digits "
                    "and '_' (not starting with a digit)"
                )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TaskDefinitionError(f"@workflow_secrets: duplicate secret name(s) {dupes}")
        self.names: tuple[str, ...] = tuple(names)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Attach the names to ``fn`` (added to ones already there)."""
        current: tuple[str, ...] = getattr(fn, ATTR, ())
        setattr(fn, ATTR, tuple(dict.fromkeys(current + self.names)))
        return fn

    def __repr__(self) -> str:
        return f"WorkflowSecretsDecorator({', '.join(map(repr, self.names))})"


def workflow_secrets(*names: str) -> WorkflowSecretsDecorator:
    """Declare the secrets a workflow reads (on any of its tasks).

    Examples
    --------
    >>> @workflow_secrets("db_prod")                 # doctest: +SKIP
    ... @task()
    ... def call_api(context):
    ...     password = context.secret_field("db_prod", "password")
    ...     return context
    """
    return WorkflowSecretsDecorator(*names)


def collect(functions: list[Any]) -> tuple[str, ...]:
    """The secret names declared on ``functions`` (the tasks of one workflow), in order."""
    found: dict[str, None] = {}
    for fn in functions:
        found.update(dict.fromkeys(getattr(fn, ATTR, ())))
    return tuple(found)


__all__ = [
    "EnvSecretResolver",
    "SecretResolver",
    "WorkflowSecretsDecorator",
    "resolve_secret",
    "set_secret_resolver",
    "workflow_secrets",
]
