"""The worker child: runs one package's tasks, one request at a time, in its own interpreter.

Started by :mod:`cloaca.registry.workers` as a fresh interpreter (``python -I -S``), given the
directory holding the host's ``cloaca`` (importable, nothing else of the host's environment is),
then either ``python <src> <vendor> <entry_module>`` or ``rust <library>``. A Python worker puts
the package's ``src/`` and ``vendor/`` first on ``sys.path`` and imports the entry module at once
(so the first task finds it warm); a Rust worker loads the library with ctypes
(:mod:`cloaca.registry.rust`).

Protocol: JSON lines. The worker keeps the original stdin/stdout pipes for the protocol and points
file descriptors 0 and 1 at ``/dev/null`` and stderr, so a task's ``print`` cannot corrupt it.

- request ``{"id": n, "op": "run", "task": key, "function": ref, "context": {...}}`` answered by
  ``{"id": n, "ok": true, "context": {...}}`` or
  ``{"id": n, "ok": false, "error_type": "KeyError", "message": ..., "traceback": ...}``;
- ``{"id": n, "op": "callback", "function": ref, "task_id": id, "context": {...}}`` plus
  ``"error": {"error_type", "message", "traceback"}`` for ``on_failure``: runs a task's
  ``on_success(task_id, context)`` / ``on_failure(task_id, error: str, context)`` callback here, in
  the package's worker, with the arguments the engine gives an in-process callback (the error is
  the same :class:`~cloaca.errors.ErrorText`); answered like ``run`` (no context);
- ``{"id": n, "op": "ping"}`` answered by ``{"id": n, "ok": true, "pid": ...}``.

The worker exits when its stdin closes (the host went away or closed the pool).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

Runner = Callable[[str, str, dict[str, Any]], dict[str, Any]]


def _claim_stdio() -> tuple[BinaryIO, BinaryIO]:
    """Keep fds 0/1 for the protocol on new fds; send stray reads/prints elsewhere."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)  # print() in a task lands on stderr, which the host logs
    return proto_in, proto_out


def _set_path(host_root: str, src: str, vendor: str) -> None:
    """``src`` then ``vendor`` first; the host's directory leaves (``cloaca`` is imported)."""
    import site

    sys.path[:] = [p for p in sys.path if p not in (host_root, "", src, vendor)]
    sys.path[:0] = [src, vendor]
    site.addsitedir(vendor)  # processes vendored .pth files (namespace packages and the like)


def _error(exc: BaseException) -> dict[str, Any]:
    from cloaca.errors import TaskExecutionError

    if isinstance(exc, TaskExecutionError) and exc.error_type:  # e.g. a Rust task's error
        return {
            "ok": False,
            "error_type": exc.error_type,
            "message": exc.message,
            "traceback": exc.traceback or "",
        }
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # start the traceback in the package's code, not in this loop
    return {
        "ok": False,
        "error_type": type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "traceback": "".join(traceback.format_exception(type(exc), exc, tb)),
    }


class PythonTasks:
    """Resolves ``module:function`` refs inside the package and runs them on a context."""

    def __init__(self, entry_module: str) -> None:
        self.entry_module = entry_module
        self._functions: dict[str, Callable[..., Any]] = {}
        self._loop: Any = None

    def warm(self) -> None:
        """Import the entry module now; a failure is reported by the first task instead."""
        with contextlib.suppress(BaseException):  # the task needing the module re-raises it
            importlib.import_module(self.entry_module)

    def resolve(self, ref: str) -> Callable[..., Any]:
        """Return the callable named ``package.module:function``."""
        fn = self._functions.get(ref)
        if fn is None:
            module_name, _, attr = ref.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            fn = obj
            self._functions[ref] = fn
        return fn

    def callback(self, request: dict[str, Any]) -> None:
        """Run an ``on_success``/``on_failure`` callback named by ``request["function"]``."""
        from cloaca.context import Context
        from cloaca.errors import ErrorText, TaskExecutionError, TaskTimeoutError

        fn = self.resolve(request["function"])
        ctx = Context._trusted(request["context"])
        failure = request.get("error")
        if failure is None:
            self._finish(fn(request["task_id"], ctx))
            return
        fields: dict[str, Any] = {
            "task_id": request["task_id"],
            "error_type": failure.get("error_type"),
            "traceback": failure.get("traceback"),
        }
        error: TaskExecutionError
        if failure.get("class") == "TaskTimeoutError":  # the error class the engine gave
            error = TaskTimeoutError(
                failure.get("message", ""), timeout_seconds=failure.get("timeout_seconds"), **fields
            )
        else:
            error = TaskExecutionError(failure.get("message", ""), **fields)
        self._finish(fn(request["task_id"], ErrorText(error), ctx))

    def _finish(self, ret: Any) -> Any:
        """Await what an ``async def`` task or callback returned, as the scheduler does."""
        return self._run_async(ret) if inspect.isawaitable(ret) else ret

    def __call__(self, task: str, ref: str, data: dict[str, Any]) -> dict[str, Any]:
        from cloaca.context import Context, task_output
        from cloaca.task import TaskHandle

        fn = self.resolve(ref)
        ctx = Context._trusted(data)
        # the handle names the task as its code declares it ("report"), as in-process and as
        # callbacks get it, not by the host's key ("package::report"); ids have no ":"
        handle = TaskHandle(task.rpartition("::")[2])
        ret = fn(ctx, handle) if self._wants_handle(fn) else fn(ctx)
        return task_output(task, self._finish(ret), ctx)

    @staticmethod
    def _wants_handle(fn: Callable[..., Any]) -> bool:
        from cloaca.task import get_spec

        spec = get_spec(fn)
        if spec is not None:
            return spec.accepts_handle
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return False
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        required = [p for p in params if p.kind in positional and p.default is p.empty]
        return len(required) >= 2

    def _run_async(self, awaitable: Any) -> Any:
        import asyncio

        if self._loop is None:  # one loop for the worker's life: clients and pools survive tasks
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop.run_until_complete(awaitable)


def _dump(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


def serve(proto_in: BinaryIO, proto_out: BinaryIO, run: Runner) -> None:
    """Answer requests until stdin closes."""
    for line in proto_in:
        request: dict[str, Any] = {}
        try:
            request = json.loads(line)
            op = request.get("op")
            if op == "ping":
                reply: dict[str, Any] = {"ok": True, "pid": os.getpid()}
            elif op == "run":
                out = run(request["task"], request["function"], request["context"])
                reply = {"ok": True, "context": out}
            elif op == "callback" and isinstance(run, PythonTasks):
                run.callback(request)
                reply = {"ok": True}
            else:
                raise ValueError(f"unknown op {op!r}")
        except BaseException as exc:  # a task's SystemExit is its error, not the worker's end
            if isinstance(exc, KeyboardInterrupt):
                raise
            reply = _error(exc)
        reply["id"] = request.get("id")
        try:
            payload = _dump(reply)
        except (TypeError, ValueError) as exc:  # e.g. a nested value that is not JSON
            payload = _dump({**_error(exc), "id": request.get("id")})
        proto_out.write(payload)
        proto_out.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``HOST_ROOT python SRC VENDOR ENTRY`` or ``HOST_ROOT rust LIBRARY``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] not in ("python", "rust"):
        sys.stderr.write(
            "usage: python -m cloaca.registry.worker_main HOST_ROOT python SRC VENDOR ENTRY | "
            "HOST_ROOT rust LIBRARY\n"
        )
        return 2
    import faulthandler

    faulthandler.enable()  # a segfault in package code leaves its Python traceback on stderr
    proto_in, proto_out = _claim_stdio()
    host_root, kind = args[0], args[1]
    run: Runner
    if kind == "python":
        src, vendor, entry = args[2], args[3], args[4]
        import cloaca  # noqa: F401 - the host's cloaca, imported before the package's paths

        _set_path(host_root, src, vendor)
        tasks = PythonTasks(entry)
        tasks.warm()
        run = tasks
    else:
        from cloaca.registry.rust import RustLibrary

        sys.path[:] = [p for p in sys.path if p not in (host_root, "")]
        run = RustLibrary(args[2])
    serve(proto_in, proto_out, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
