"""The documentation: the MkDocs site builds in strict mode, and the CLI page is current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mkdocs_strict_build(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="cloaca.task.task"' in api and 'id="cloaca_nb.result.NotebookResult"' in api
    assert (tmp_path / "site" / "img" / "dag-widget.svg").is_file()


def test_cli_page_is_generated_from_current_help() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + "\nregenerate with: make docs"


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after_title = text.split("\n", 1)[1].lstrip()
    block = after_title.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in block.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]
    assert "docs/img/dag-widget.svg" in text


def test_cli_page_documents_every_console_script() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name in scripts:
        assert f"## `{name}`" in page or f"`{name}`." in page, f"{name} missing from docs/cli.md"
