"""Upstream names that import here but whose feature this engine does not run yet.

Computation graphs (``ComputationGraphBuilder``, ``@node``, ``@reactor``, the accumulator
decorators, ``@boundary_schema``) arrive with issue 20; provider nodes (``constructor``) need
upstream's WASM provider runtime. Code written for upstream imports cleanly, and the first use
of any of these raises :class:`~cloaca.errors.UnsupportedFeatureError` (also a
``NotImplementedError``) naming the feature — never a silent no-op.
"""

from __future__ import annotations

from typing import Any, NoReturn

from cloaca.errors import UnsupportedFeatureError

_GRAPHS = "issue 20 (computation graphs, reactors and accumulators)"


def _refuse(feature: str, what: str, issue: str | None) -> NoReturn:
    raise UnsupportedFeatureError(what, feature=feature, issue=issue)


def _graph_name(name: str, kind: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        _refuse(
            f"cloaca.{name}",
            f"{kind} belongs to upstream's computation graphs, which this engine does not run",
            _GRAPHS,
        )

    refuse.__name__ = refuse.__qualname__ = name
    refuse.__doc__ = (
        f"Upstream's ``{name}`` ({kind}); raises UnsupportedFeatureError until issue 20."
    )
    return refuse


class ComputationGraphBuilder:
    """Upstream's computation-graph builder; raises UnsupportedFeatureError until issue 20."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse(
            "cloaca.ComputationGraphBuilder",
            "computation graphs are upstream's second authoring model, not run by this engine",
            _GRAPHS,
        )


node = _graph_name("node", "a graph node")
reactor = _graph_name("reactor", "a reactor")
boundary_schema = _graph_name("boundary_schema", "a boundary schema")
passthrough_accumulator = _graph_name("passthrough_accumulator", "an accumulator")
stream_accumulator = _graph_name("stream_accumulator", "an accumulator")
polling_accumulator = _graph_name("polling_accumulator", "an accumulator")
batch_accumulator = _graph_name("batch_accumulator", "an accumulator")
state_accumulator = _graph_name("state_accumulator", "an accumulator")


def constructor(*args: Any, **kwargs: Any) -> NoReturn:
    """Upstream's provider node (``cloaca.constructor(id=, from_=, constructor=, ...)``).

    Raises UnsupportedFeatureError: provider nodes run in upstream's WASM provider runtime.
    """
    node_id = kwargs.get("id")
    what = f"node {node_id!r}: " if node_id else ""
    _refuse(
        "cloaca.constructor",
        f"{what}provider nodes run in upstream's WASM provider runtime, which this engine "
        "does not have; write the step as a @task instead",
        None,
    )


__all__ = [
    "ComputationGraphBuilder",
    "batch_accumulator",
    "boundary_schema",
    "constructor",
    "node",
    "passthrough_accumulator",
    "polling_accumulator",
    "reactor",
    "state_accumulator",
    "stream_accumulator",
]
