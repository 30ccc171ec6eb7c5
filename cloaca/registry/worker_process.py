"""One worker process seen from the host: how it is started, and its JSON-lines pipe protocol.

:class:`Worker` owns a child running :mod:`cloaca.registry.worker_main` in a fresh, isolated
interpreter (``python -I -S``), the pipes to it, and a thread that logs its stderr (keeping the last
lines for crash reports). :meth:`Worker.request` sends one request and awaits the reply without
being tied to an event loop (the pipe is registered with the running loop only for that call); a
worker that dies or breaks the protocol raises :class:`~cloaca.errors.WorkerError`. Pooling is
:mod:`cloaca.registry.workers`' job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloaca.errors import WorkerError

if TYPE_CHECKING:
    from cloaca.registry.loader import LoadedPackage

log = logging.getLogger("cloaca.registry.workers")

_BOOT = (
    "import sys;sys.path.insert(0,sys.argv[1]);"
    "from cloaca.registry.worker_main import main;sys.exit(main(sys.argv[1:]))"
)
STDERR_TAIL = 40


def host_root() -> str:
    """The directory holding the host's ``cloaca`` package (put on the workers' path)."""
    import cloaca

    return str(Path(cloaca.__file__).resolve().parent.parent)


def worker_command(package: LoadedPackage) -> list[str]:
    """The command line of a worker for ``package``: an isolated interpreter (``-I -S``), the
    one the loader chose for a Python package (:attr:`PythonPackage.interpreter`)."""
    from cloaca.registry.loader import PythonPackage

    python = sys.executable
    if isinstance(package, PythonPackage) and package.interpreter is not None:
        python = package.interpreter.executable  # one the package's vendored set runs on
    base = [python, "-I", "-S", "-c", _BOOT, host_root()]
    if isinstance(package, PythonPackage):
        src, vendor = str(package.source_dir), str(package.vendor_dir)
        return [*base, "python", src, vendor, package.entry_module]
    return [*base, "rust", str(package.library_path)]


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


class Worker:
    """One worker process and its pipes; one request at a time."""

    def __init__(self, package: str, argv: list[str]) -> None:
        self.package = package
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
            start_new_session=True,  # Ctrl-C in a terminal is the host's; we kill the group
        )
        self.pid = self.proc.pid
        self.exit_code: int | None = None  # how it ended while running a task (None: alive)
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self._in_fd = self.proc.stdin.fileno()
        self._out_fd = self.proc.stdout.fileno()
        os.set_blocking(self._out_fd, False)
        self._buffer = bytearray()
        self._last_id = 0
        self.tasks_run = 0
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self._stderr_thread = threading.Thread(
            target=self._pump_stderr, name=f"cloaca-worker-{self.pid}-stderr", daemon=True
        )
        self._stderr_thread.start()

    def __repr__(self) -> str:
        return f"Worker({self.package!r}, pid={self.pid})"

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def _pump_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stderr_tail.append(line)
                log.info("[%s pid %d] %s", self.package, self.pid, line)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and await its reply; raise :class:`WorkerError` if the worker dies."""
        self._last_id += 1
        message["id"] = self._last_id
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        try:
            self._write(data)
        except OSError:
            line = None
        else:
            line = await self._readline()
        if line is None:
            raise await self._died()
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or reply.get("id") != self._last_id:
            self.kill()
            raise WorkerError(
                f"worker process {self.pid} broke the protocol (sent {bytes(line[:120])!r}); "
                "it was stopped and the next task gets a fresh one",
                package=self.package,
            )
        return reply

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._in_fd, view) :]

    async def _readline(self) -> bytes | None:
        """The next line from the worker, or ``None`` at end of file (it died)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes | None] = loop.create_future()
        fd = self._out_fd

        def on_readable() -> None:
            start = len(self._buffer)
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                if not fut.done():
                    fut.set_result(None)
                return
            self._buffer += chunk
            end = self._buffer.find(b"\n", start)
            if end >= 0 and not fut.done():
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                fut.set_result(line)

        loop.add_reader(fd, on_readable)
        try:
            return await fut
        finally:
            loop.remove_reader(fd)

    async def _died(self) -> WorkerError:
        for _ in range(200):  # the pipe closed: the process is exiting; give it up to 2 s
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.01)
        code = self.exit_code = self.proc.poll()
        self.kill()
        await asyncio.get_running_loop().run_in_executor(None, self._stderr_thread.join, 2.0)
        return WorkerError(
            f"worker process {self.pid} {_describe_exit(code)} while running a task; "
            "the next task gets a fresh worker",
            package=self.package,
        )

    def kill(self) -> None:
        """Kill the worker and everything it started (its process group); reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()
        self._close_pipes()

    def close(self, timeout: float = 2.0) -> None:
        """Ask the worker to exit (close its stdin); kill it if it does not within ``timeout``."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


__all__ = ["Worker", "host_root", "worker_command"]
