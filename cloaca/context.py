"""`Context`: the JSON-valued mapping that flows between tasks.

Values are checked when they are stored, so a task that puts a ``datetime`` or a DataFrame in the
context fails right there, naming the key, instead of much later when the runner persists it.
"""

from __future__ import annotations

import json
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

from cloaca.errors import ContextError, ContextValueError

_INVALID, _EXACT, _LOOSE = 0, 1, 2  # _LOOSE: JSON keeps the value but not its type


def _json_state(value: Any, depth: int = 0) -> int:
    """_EXACT for plain JSON values, _LOOSE for what JSON turns into plain values (tuples,
    subclasses of str/int/float/list/dict), _INVALID for the rest (NaN and infinities too)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return _EXACT
    if t is float:
        return _EXACT if value - value == 0.0 else _INVALID  # inf - inf and NaN are NaN
    if depth > 200:
        return _INVALID
    if isinstance(value, list | tuple):
        state = _EXACT if t is list else _LOOSE
        for item in value:
            sub = _json_state(item, depth + 1)
            if sub == _INVALID:
                return _INVALID
            state = max(state, sub)
        return state
    if isinstance(value, dict):
        state = _EXACT if t is dict else _LOOSE
        for key, item in value.items():
            if not isinstance(key, str):
                return _INVALID
            sub = _json_state(item, depth + 1)
            if sub == _INVALID:
                return _INVALID
            state = max(state, sub, _EXACT if type(key) is str else _LOOSE)
        return state
    if isinstance(value, str | int | float):  # bool is an int; enums of str/int land here
        return _LOOSE if _json_state(json.loads(json.dumps(value))) == _EXACT else _INVALID
    return _INVALID


class _Key(tuple[Any]):
    """A dict key JSON cannot hold (keys must be str)."""

    def __new__(cls, key: Any) -> _Key:
        return super().__new__(cls, (key,))


def _offender(value: Any, depth: int = 0) -> Any:
    """The innermost part of an invalid ``value`` that JSON cannot hold (for the message)."""
    if isinstance(value, list | tuple):
        parts: Any = value
    elif isinstance(value, dict):
        bad_keys = [k for k in value if not isinstance(k, str)]
        if bad_keys:
            return _Key(bad_keys[0])
        parts = value.values()
    else:
        return value
    for item in parts:
        if _json_state(item, depth + 1) == _INVALID:
            return _offender(item, depth + 1)
    return value


def check_json_value(key: str, value: Any) -> Any:
    """Return ``value`` as the context stores it, or raise :class:`ContextValueError` naming
    ``key`` unless it is JSON-serialisable.

    What JSON would change is changed here, so a value reads the same in every front end (a
    package worker or a server passes the context as JSON): tuples become lists, subclasses of
    ``str``/``int``/``float``/``list``/``dict`` (enums ...) their plain values. NaN and infinities
    are refused (JSON has none).
    """
    state = _json_state(value)
    if state == _EXACT:
        return value
    if state == _LOOSE:
        return json.loads(json.dumps(value))
    bad = _offender(value)
    if isinstance(bad, float):
        raise ContextValueError(
            f"Context value for key {key!r} holds {bad!r}, which JSON cannot represent. Store "
            "a finite number, None or a string instead.",
            key=key,
            value_type="float",
        )
    if isinstance(bad, _Key):
        raise ContextValueError(
            f"Context value for key {key!r} has the dict key {bad[0]!r}; JSON keys are strings. "
            "Use str keys (e.g. str(k)).",
            key=key,
            value_type=type(bad[0]).__name__,
        )
    raise ContextValueError(key=key, value_type=type(bad).__name__)


class Context:
    """A JSON-valued mapping passed between tasks.

    Parameters
    ----------
    data:
        Initial key/value pairs; every value must be JSON-serialisable.

    Examples
    --------
    >>> ctx = Context({"n": 1})
    >>> ctx.set("m", 2)
    >>> ctx.to_dict()
    {'n': 1, 'm': 2}
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {}
        if data:
            self.update_from_dict(data)

    @classmethod
    def _trusted(cls, data: dict[str, Any]) -> Context:
        """Wrap ``data`` (already validated, owned by the caller) without copying or checking."""
        ctx = cls.__new__(cls)
        ctx._data = data
        return ctx

    # ---------------------------------------------------------------- dict protocol
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Context):
            return self._data == other._data
        if isinstance(other, dict):
            return self._data == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Context({self._data!r})"

    def keys(self) -> KeysView[str]:
        """Return the keys, like ``dict.keys()``."""
        return self._data.keys()

    def values(self) -> ValuesView[Any]:
        """Return the values, like ``dict.values()``."""
        return self._data.values()

    def items(self) -> ItemsView[str, Any]:
        """Return the key/value pairs, like ``dict.items()``."""
        return self._data.items()

    # ---------------------------------------------------------------- cloaca API
    def get(self, key: str, default: Any = None) -> Any:
        """Return the value for ``key``, or ``default`` when absent."""
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Insert or overwrite ``key``. Raises :class:`ContextValueError` for non-JSON values."""
        if not isinstance(key, str):
            raise ContextError(f"context keys must be str, got {type(key).__name__}", key=repr(key))
        self._data[key] = check_json_value(key, value)

    def insert(self, key: str, value: Any) -> None:
        """Add ``key``; raises ``ValueError`` when it already exists (use :meth:`set`)."""
        if key in self._data:
            raise ValueError(
                f"context key {key!r} already exists; use set() or update() to overwrite it"
            )
        self.set(key, value)

    def update(self, key: str, value: Any) -> None:
        """Overwrite an existing ``key``; raises ``KeyError`` when absent (use :meth:`insert`)."""
        if key not in self._data:
            raise ContextError(
                f"context key {key!r} does not exist; use insert() or set() to add it", key=key
            )
        self.set(key, value)

    def remove(self, key: str) -> Any:
        """Delete ``key`` and return its value, or ``None`` when it was absent."""
        return self._data.pop(key, None)

    def update_from_dict(self, data: Mapping[str, Any]) -> None:
        """Set every pair of ``data`` (each value checked)."""
        for key, value in data.items():
            self.set(key, value)

    def to_dict(self) -> dict[str, Any]:
        """Return a shallow copy of the data as a plain ``dict``."""
        return dict(self._data)

    def to_json(self) -> str:
        """Serialise to a JSON object string."""
        return json.dumps(self._data)

    @classmethod
    def from_json(cls, text: str) -> Context:
        """Parse a JSON object string into a new context."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ContextError(
                f"Context.from_json expects a JSON object, got {type(data).__name__}", key=None
            )
        return cls(data)

    def copy(self) -> Context:
        """Return a shallow copy."""
        return Context._trusted(dict(self._data))

    def secret(self, name: str) -> dict[str, Any]:
        """Read every field of secret ``name`` from the process's secret resolver.

        The value is returned to the caller only and never stored in the context (see
        :mod:`cloaca.secrets`). Raises :class:`~cloaca.errors.SecretError` (a ``RuntimeError``)
        when no resolver is configured and ``KeyError`` for an unknown secret.
        """
        from cloaca.secrets import resolve_secret

        return resolve_secret(name)

    def secret_field(self, name: str, field: str) -> Any:
        """Read field ``field`` of secret ``name`` (``KeyError`` when the secret lacks it)."""
        fields = self.secret(name)
        if field not in fields:
            raise KeyError(f"secret {name!r} has no field {field!r} (its fields: {sorted(fields)})")
        return fields[field]


def _copy_value(value: Any) -> Any:
    if type(value) is list:
        return [_copy_value(v) for v in value]
    if type(value) is dict:
        return {k: _copy_value(v) for k, v in value.items()}
    return value


def owned_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of context data whose nested arrays and objects are new as well.

    Each task gets one, as each of Cloacina's tasks loads its own copy of the context: a task
    appending to ``context["rows"]`` in place cannot change what a parallel branch, or the
    upstream task's stored output, sees. Scalars are immutable and shared.
    """
    return {k: _copy_value(v) for k, v in data.items()}


def task_output(
    task_id: str, ret: Any, ctx: Context, inp: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Turn a task's return value (the context, a dict or ``None``) into its output dict.

    Values of a returned dict are JSON-checked, except those left identical to ``inp`` (the
    input the task was given; everything is checked when it is ``None``).
    """
    if ret is None or ret is ctx:
        return ctx._data
    if isinstance(ret, Context):
        return ret._data
    if isinstance(ret, dict):
        for key, value in ret.items():
            if inp is None or key not in inp or inp[key] is not value:
                ret[key] = check_json_value(key, value)
        return ret
    raise TypeError(
        f"task {task_id!r} returned {type(ret).__name__}; return the context, a dict or None"
    )
