"""A spare kernel, started and warmed in the background, used once by an isolated run.

Starting an ipykernel costs most of an isolated run. :class:`SpareKernel` starts one ahead of
time in a helper thread (and imports the engine in it), hands it to the next run with
:meth:`~SpareKernel.take`; :meth:`~SpareKernel.discard` shuts the used kernel down and starts its
replacement in the background. A run never sees a kernel another run used.

The ``cloaca-spare`` papermill engine runs a notebook on such a kernel. It differs from
papermill's default engine in one place: the kernel is known to be up, so instead of
jupyter_client's ``wait_for_ready`` (which always waits 200 ms for IOPub to go quiet) it checks
readiness with one ``kernel_info`` round trip that is seen on both the shell and IOPub channels.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from jupyter_client.manager import AsyncKernelManager

_WARMUP = "import cloaca, cloaca_nb._child, cloaca_nb.result"
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cloaca-spare")
_spares: dict[tuple[str, str], SpareKernel] = {}
_lock = threading.Lock()


def quiet_arguments(kernel_name: str) -> list[str]:
    """Extra kernel arguments that keep an ipykernel's startup log (e.g. "Kernel is running
    over TCP without encryption") out of the calling cell; none for other kernels."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except NoSuchKernel:
        return []
    return ["--log-level=ERROR"] if any("ipykernel" in part for part in argv) else []


async def _start(kernel_name: str, cwd: str) -> AsyncKernelManager:
    km = AsyncKernelManager(kernel_name=kernel_name)
    await km.start_kernel(cwd=cwd, extra_arguments=quiet_arguments(kernel_name))
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        msg_id = kc.execute(_WARMUP, silent=True)
        while True:
            reply = await kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
    finally:
        kc.stop_channels()
    return km


async def _stop(km: AsyncKernelManager) -> None:
    await km.shutdown_kernel(now=True)


def _shutdown(km: AsyncKernelManager) -> None:
    with contextlib.suppress(Exception):  # already dead: nothing to clean
        asyncio.run(_stop(km))


class SpareKernel:
    """One warm kernel of ``kernel_name`` started in ``cwd``, replaced after every use."""

    def __init__(self, kernel_name: str = "python3", cwd: str = ".") -> None:
        self.kernel_name, self.cwd = kernel_name, cwd
        self._next: Future[AsyncKernelManager] | None = None
        self._lock = threading.Lock()

    def prestart(self) -> None:
        """Start the spare in the background unless one is starting or ready."""
        with self._lock:
            if self._next is None:
                self._next = _pool.submit(asyncio.run, _start(self.kernel_name, self.cwd))

    def wait_ready(self, timeout: float | None = None) -> None:
        """Start the spare if needed and block until it is ready."""
        self.prestart()
        with self._lock:
            fut = self._next
        if fut is not None:
            fut.result(timeout=timeout)

    def take(self) -> AsyncKernelManager:
        """The spare kernel (waiting for it if it is still starting)."""
        self.prestart()
        with self._lock:
            fut, self._next = self._next, None
        assert fut is not None
        return fut.result()

    def discard(self, km: Any) -> None:
        """Shut a used kernel down and start the next spare, both in the background.

        The replacement starts after the run rather than during it, so it does not compete
        with the run for CPU.
        """
        _pool.submit(_shutdown, km)
        self.prestart()

    def shutdown(self) -> None:
        """Stop the spare (waits for it to finish starting first)."""
        with self._lock:
            fut, self._next = self._next, None
        if fut is not None:
            try:
                km = fut.result(timeout=120)
            except Exception:
                return
            _shutdown(km)


def spare_kernel(kernel_name: str, cwd: str) -> SpareKernel:
    """The process-wide :class:`SpareKernel` for this kernel name and directory."""
    with _lock:
        spare = _spares.get((kernel_name, cwd))
        if spare is None:
            spare = _spares[(kernel_name, cwd)] = SpareKernel(kernel_name, cwd)
        return spare


def shutdown_spares() -> None:
    """Shut down every spare kernel (``%unload_ext`` and interpreter exit call this)."""
    with _lock:
        spares = list(_spares.values())
        _spares.clear()
    for spare in spares:
        spare.shutdown()


atexit.register(shutdown_spares)


# ---------------------------------------------------------------------------- papermill engine
async def _ready(kc: Any, timeout: float) -> None:
    """Wait for IOPub's welcome, then until a ``kernel_info`` request is answered on shell and
    its idle status is seen on IOPub."""
    import time
    from queue import Empty

    with contextlib.suppress(Empty):  # ipykernel >= 6.29 greets new IOPub subscribers
        await kc.get_iopub_msg(timeout=1.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg_id = kc.kernel_info()
        while (await kc.get_shell_msg(timeout=timeout))["parent_header"].get("msg_id") != msg_id:
            pass
        try:
            while True:
                msg = await kc.get_iopub_msg(timeout=0.25)
                if (
                    msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"
                ):
                    return
        except Empty:  # IOPub not subscribed yet: ask again
            continue
    raise TimeoutError(f"spare kernel not ready after {timeout}s")


def _register_engine() -> None:
    from nbclient.util import run_hook, run_sync
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class _SpareClient(PapermillNotebookClient):
        async def async_start_new_kernel_client(self) -> Any:
            self.kc = self.km.client()
            self.kc.start_channels()
            await _ready(self.kc, self.startup_timeout)
            self.kc.allow_stdin = False
            await run_hook(self.on_notebook_start, notebook=self.nb)
            return self.kc

        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    class SpareEngine(NBClientEngine):
        """papermill engine running on a ready kernel manager passed as ``km``."""

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            start_timeout: float = 60,
            execution_timeout: float | None = None,
            **kwargs: Any,
        ) -> Any:
            kwargs.pop("input_path", None)
            client = _SpareClient(
                nb_man, kernel_name=kernel_name, log_output=log_output,
                startup_timeout=start_timeout, timeout=execution_timeout, **kwargs,
            )  # fmt: skip
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(ENGINE, SpareEngine)


ENGINE = "cloaca-spare"
_register_engine()
