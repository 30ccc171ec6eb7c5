"""Small process helpers shared by the runner (dead-runner detection) and the CLI (server pid)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Tell whether a process with ``pid`` exists on this host (signal 0 probe).

    A process we may not signal (``PermissionError``) exists; ``pid <= 0`` never does.
    """
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
