"""``make demo`` (``scripts/demo.py``): build, start a server, upload with the CLI, run, print
the report, stop — and exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_demo_runs_end_to_end() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "=== Data Pipeline Report ===" in proc.stdout
    assert "Records processed: 3" in proc.stdout
    assert "server stopped" in proc.stdout
