"""The ctypes bridge to a Rust package's library (runs inside a worker child, never the host).

The library exports Cloacina's C entry point::

    int32_t cloacina_execute_task(const char *task_name, uint32_t task_name_len,
                                  const char *context_json, uint32_t context_len,
                                  uint8_t *result_buffer, uint32_t result_capacity,
                                  uint32_t *result_len);

Return 0 with the output context (UTF-8 JSON object) in the buffer, or non-zero with
``{"error": "..."}``. Buffer-resize protocol: whenever ``result_len`` comes back larger than the
capacity given, the result did not fit; the call is repeated once with a buffer of exactly
``result_len`` bytes (so a task whose output outgrows the buffer runs twice; the buffer then stays
that large for the worker's later calls). A library that keeps asking for more is an error.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any

from cloaca.errors import TaskExecutionError

#: first buffer size; grows to the largest result seen
INITIAL_CAPACITY = 64 * 1024
MAX_RESIZES = 3
ENTRY_POINT = "cloacina_execute_task"
ERROR_TYPE = "RustTaskError"


class RustLibrary:
    """A loaded Rust task library; call it as ``lib(task_key, task_name, context_dict)``."""

    def __init__(self, path: str, initial_capacity: int = INITIAL_CAPACITY) -> None:
        self.path = path
        self._lib = ctypes.CDLL(path)
        try:
            fn = getattr(self._lib, ENTRY_POINT)
        except AttributeError as exc:
            raise OSError(f"{path} does not export {ENTRY_POINT}") from exc
        fn.argtypes = [
            ctypes.c_char_p,
            ctypes.c_uint32,
            ctypes.c_char_p,
            ctypes.c_uint32,
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.POINTER(ctypes.c_uint32),
        ]
        fn.restype = ctypes.c_int32
        self._fn = fn
        self._buffer = ctypes.create_string_buffer(initial_capacity)
        self.calls = 0  # library calls made, resize retries included

    def execute(self, task_name: str, context_json: bytes) -> tuple[int, bytes]:
        """Call the entry point (resizing as asked); return ``(status, result bytes)``."""
        name = task_name.encode("utf-8")
        for _ in range(MAX_RESIZES + 1):
            capacity = len(self._buffer)
            used = ctypes.c_uint32(0)
            self.calls += 1
            status = self._fn(
                name, len(name), context_json, len(context_json), self._buffer, capacity,
                ctypes.byref(used),
            )  # fmt: skip
            if used.value <= capacity:
                return int(status), ctypes.string_at(self._buffer, used.value)
            self._buffer = ctypes.create_string_buffer(used.value)
        raise RuntimeError(
            f"{ENTRY_POINT} asked for a bigger result buffer {MAX_RESIZES + 1} times in a row"
        )

    def __call__(self, task: str, ref: str, data: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")
        status, raw = self.execute(ref, payload)
        try:
            result = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if status == 0:
                raise ValueError(f"Rust task {ref!r} returned invalid JSON: {exc}") from exc
            result = None
        if status != 0:
            message = (
                result["error"]
                if isinstance(result, dict) and isinstance(result.get("error"), str)
                else raw.decode("utf-8", "replace") or f"returned status {status}"
            )
            raise TaskExecutionError(
                str(message),
                task_id=task,
                error_type=ERROR_TYPE,
                traceback=f"{self.path}: {ENTRY_POINT}({ref!r}) returned {status}",
            )
        if not isinstance(result, dict):
            raise TypeError(
                f"Rust task {ref!r} returned {type(result).__name__}; it must return the "
                "context as a JSON object"
            )
        return result


__all__ = ["ENTRY_POINT", "INITIAL_CAPACITY", "RustLibrary"]
