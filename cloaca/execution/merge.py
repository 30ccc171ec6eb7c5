"""The context merge rule used at fan-in and for a run's final context (Cloacina's executor).

When several contexts are merged, for a key present in more than one of them:

- two arrays → the first, then each item of the second not already in it (order kept; items
  compare as JSON values, so ``1``, ``1.0`` and ``true`` are three different items);
- two objects → merged recursively by this same rule;
- anything else → the later context's value wins.

Contexts are merged in the order given (a task's dependency order). Nothing is mutated: the
merged lists and dicts are new objects, values that are taken whole are shared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def _identity(value: Any) -> str:
    # JSON equality, not Python's (where True == 1 == 1.0); object key order does not matter
    return json.dumps(value, sort_keys=True, default=repr)


def merge_values(earlier: Any, later: Any) -> Any:
    """Merge two values of the same key by the rule in the module docstring."""
    if isinstance(earlier, list) and isinstance(later, list):
        merged = list(earlier)
        seen = {_identity(item) for item in merged}
        for item in later:
            ident = _identity(item)
            if ident not in seen:
                seen.add(ident)
                merged.append(item)
        return merged
    if isinstance(earlier, dict) and isinstance(later, dict):
        return merge_into(dict(earlier), later)
    return later


def merge_into(target: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``source`` into ``target`` (mutated and returned) key by key."""
    for key, value in source.items():
        target[key] = merge_values(target[key], value) if key in target else value
    return target


def merge_contexts(contexts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge ``contexts`` in order into a new dict (empty when there are none)."""
    merged: dict[str, Any] = {}
    for ctx in contexts:
        merge_into(merged, ctx)
    return merged
