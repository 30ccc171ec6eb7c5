"""Tiny spec-conformant packages for the server tests, written with the archive helpers of
``tests/registry/conftest.py`` (no build step): a task that fails on its first attempt, and two
packages where one depends on a task of the other (``"base-pkg::produce"``)."""

from __future__ import annotations

from tests.registry.conftest import python_archive

FLAKY_SOURCE = """
from pathlib import Path


def flaky(context):
    marker = Path(context["marker"])
    if not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("first attempt fails on purpose")
    context["flaky"] = "ok"
    return context


def finish(context):
    context["finished"] = True
    return context
"""


def flaky_archive() -> bytes:
    """``flaky-pkg``: ``flaky`` (1 retry) fails once per marker file, then ``finish``."""
    return python_archive(
        "flaky-pkg",
        {"pkg/__init__.py": "", "pkg/tasks.py": FLAKY_SOURCE},
        [
            {"id": "flaky", "function": "pkg.tasks:flaky", "retries": 1},
            {"id": "finish", "function": "pkg.tasks:finish", "dependencies": ["flaky"]},
        ],
    )


BASE_SOURCE = """
def produce(context):
    context["numbers"] = [1, 2, 3]
    return context
"""

USER_SOURCE = """
def total(context):
    context["total"] = sum(context["numbers"]) * context.get("factor", 1)
    return context


def report(context):
    context["report"] = f"total={context['total']}"
    return context
"""


def base_archive() -> bytes:
    """``base-pkg`` with one task, ``produce``."""
    return python_archive(
        "base-pkg",
        {"pkg/__init__.py": "", "pkg/tasks.py": BASE_SOURCE},
        [{"id": "produce", "function": "pkg.tasks:produce"}],
    )


def user_archive(dependency: str = "base-pkg::produce") -> bytes:
    """``user-pkg``: ``total`` depends on ``dependency`` (a task of another package), then
    ``report``."""
    return python_archive(
        "user-pkg",
        {"pkg/__init__.py": "", "pkg/tasks.py": USER_SOURCE},
        [
            {"id": "total", "function": "pkg.tasks:total", "dependencies": [dependency]},
            {"id": "report", "function": "pkg.tasks:report", "dependencies": ["total"]},
        ],
    )
