"""`Context`: the JSON-valued mapping that flows between tasks.

Values are checked when they are stored, so a task that puts a ``datetime`` or a DataFrame in the
context fails right there, naming the key, instead of much later when the runner persists it.
"""

from __future__ import annotations

import json
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

from cloaca.errors import ContextError, ContextValueError

_SCALARS = (str, int, float, bool, type(None))


def _is_json_value(value: Any, depth: int = 0) -> bool:
    # A fast structural check; json.dumps is the fallback for exotic-but-valid subclasses.
    if isinstance(value, _SCALARS):
        return not (isinstance(value, float) and value != value)  # NaN is not JSON
    if depth > 200:
        return False
    if isinstance(value, list | tuple):
        return all(_is_json_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v, depth + 1) for k, v in value.items())
    return False


def check_json_value(key: str, value: Any) -> None:
    """Raise :class:`ContextValueError` naming ``key`` unless ``value`` is JSON-serialisable."""
    if not _is_json_value(value):
        raise ContextValueError(key=key, value_type=type(value).__name__)


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
        check_json_value(key, value)
        self._data[key] = value

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
                check_json_value(key, value)
        return ret
    raise TypeError(
        f"task {task_id!r} returned {type(ret).__name__}; return the context, a dict or None"
    )
