"""cloaca_nb: the notebook kit -- ``@task`` cells, a live DAG, in-kernel and isolated runs, builds.

``%load_ext cloaca_nb`` installs the magics (:mod:`cloaca_nb.magics`) and the cell hooks
(:mod:`cloaca_nb.hooks`). Everything heavy (IPython, widgets, papermill) is imported on first use,
so ``import cloaca_nb`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloaca_nb.result import NotebookResult
    from cloaca_nb.session import NotebookSession

__all__ = ["arun", "get_session", "load_ipython_extension", "run", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cloaca_nb``: register the magics and the cell hooks."""
    from cloaca_nb.hooks import install

    install(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext cloaca_nb``: remove the hooks and magics and forget the session."""
    from cloaca_nb.hooks import uninstall

    uninstall(ipython)


def get_session() -> NotebookSession:
    """The session of the loaded kit (tasks, cells, DAG)."""
    from cloaca_nb.hooks import current

    return current().session


def run(context: Mapping[str, Any] | None = None, **options: Any) -> NotebookResult:
    """Run the session in-kernel, like ``%cloaca_run`` (options: ``start_from``, ``only``,
    ``until``, ``max_concurrency``, ``show``)."""
    from cloaca_nb.hooks import current

    return current().run(context, **options)


async def arun(context: Mapping[str, Any] | None = None, **options: Any) -> NotebookResult:
    """``await cloaca_nb.arun()``: run the session on the kernel's running event loop."""
    from cloaca_nb.hooks import current

    return await current().arun(context, **options)
