"""The package the server fault tests run: a diamond of marker tasks (``a`` -> ``b``, ``c``
-> ``d`` -> ``e``, see :mod:`tests.faults.support`), and ``slow``, whose body sleeps until a
``release`` file exists next to the marker file (so a test can kill its worker mid-body)."""

from __future__ import annotations

from tests.faults.support import MARK_SOURCE
from tests.registry.conftest import python_archive

NAME = "fault-pkg"
DEPS = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]}

SOURCE = (
    MARK_SOURCE
    + "".join(f"\n\ndef {t}(context):\n    return body(context, {t!r})\n" for t in DEPS)
    + """

def slow(context):
    mark(context, "slow", "start")
    release = os.path.join(os.path.dirname(context["markers"]), "release")
    deadline = time.time() + 120
    while not os.path.exists(release) and time.time() < deadline:
        time.sleep(0.02)
    context["slow"] = f"slow-{context['job']}"
    mark(context, "slow", "done")
    return context
"""
)


def fault_archive(with_slow: bool = False) -> bytes:
    """The ``fault-pkg`` archive (no retries anywhere: a crash must not need one)."""
    deps = dict(DEPS)
    if with_slow:
        deps["e"] = ["d", "slow"]
        deps["slow"] = ["a"]
    tasks = [{"id": t, "function": f"pkg.tasks:{t}", "dependencies": ds} for t, ds in deps.items()]
    return python_archive(NAME, {"pkg/__init__.py": "", "pkg/tasks.py": SOURCE}, tasks)
