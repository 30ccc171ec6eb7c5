"""The notebook kit in real JupyterLab, driven by Playwright with Debian's chromium.

A JupyterLab server (the venv's, a token, 127.0.0.1, a free port) serves copies of the shipped
notebooks from a temp dir; chromium (``/usr/bin/chromium``, never a downloaded browser) opens
them, runs every cell and looks at what a user sees: the widget renders (no "Error displaying
widget"), the live DAG recolours while a run retries, each run's output keeps its own final
picture, an edited and re-run cell still replays in an isolated run, and nothing noisy (the
kernel's "TCP without encryption" log) lands in a cell. Screenshots go to
``$CLOACA_SCREENSHOT_DIR`` (``make screenshots`` points it at ``docs/img``), else to the test's
temp dir.

Skipped, with the reason in the summary, when chromium or Playwright is missing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import cloaca
from tests.notebook.pictures import statuses

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(cloaca.__file__).parents[1]
RUNNING, SUCCEEDED = "#ffd54f", "#81c784"


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return (
            "browser test skipped: Debian's chromium is not at /usr/bin/chromium "
            "(`make system-deps` installs it when run as root; no browser is ever downloaded)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser test skipped: the `playwright` package is not installed (make install)"
    return None


pytestmark = [
    pytest.mark.browser,
    pytest.mark.kernel,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]

# A notebook's state, read from JupyterLab's own models (window.jupyterapp).
# ``window.cloacaPanel``: the NotebookPanel of the notebook the test opened (found by path).
_PANEL = "window.cloacaPanel"
_READY = """(path) => {
  const app = window.jupyterapp;
  if (!app) return false;
  const p = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  const k = p && p.sessionContext && p.sessionContext.session && p.sessionContext.session.kernel;
  if (!(k && k.status === 'idle' && p.content && p.content.widgets.length)) return false;
  app.shell.activateById(p.id);
  window.cloacaPanel = p;
  return true;
}"""
_DONE = f"""(n) => {{
  const p = {_PANEL};
  const cells = p.content.widgets.filter(c => c.model.type === 'code').slice(0, n);
  const k = p.sessionContext.session && p.sessionContext.session.kernel;
  return !!k && k.status === 'idle'
    && cells.every(c => c.model.executionCount !== null && !c.node.classList.contains('jp-mod-running'));
}}"""
# starts "Run All" without waiting for it (the command's promise resolves when all cells ran)
RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
_OUTPUTS = f"""() => {{
  const p = {_PANEL};
  return p.content.widgets.map(c => c.model.type === 'code' ? c.model.outputs.toJSON() : []);
}}"""
_FILL = f"""([i, task, colour]) => {{
  const cell = {_PANEL}.content.widgets[i];
  const g = cell.node.querySelector(`.jp-OutputArea-output g[id="task-${{task}}"]`);
  const shape = g && g.querySelector('path, polygon, rect, ellipse');
  return !!shape && shape.getAttribute('fill') === colour;
}}"""


@dataclass
class Lab:
    """A running JupyterLab and a browser context pointed at it."""

    url: str
    token: str
    work: Path
    browser: Any
    shots: Path

    def open(self, name: str) -> Any:
        page = self.browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{self.url}/lab/tree/{name}?reset&token={self.token}")
        page.wait_for_function(_READY, arg=name, timeout=120_000)
        return page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(root: Path) -> dict[str, str]:
    """Config, settings, workspace and runtime dirs of our own (nothing read from or written to
    the user's ~/.jupyter): every cell in the DOM, no news or update toasts."""
    dirs = {name: root / name for name in ("config", "settings", "workspaces", "runtime", "data")}
    for path in dirs.values():
        path.mkdir()
    (dirs["settings"] / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (dirs["settings"] / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    (dirs["settings"] / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (
        dirs["settings"] / "@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    ).write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return {
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["data"] / "ipython"),
        "CLOACA_NB_ISOLATED_DIR": str(dirs["data"] / "isolated"),
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("lab")
    work = root / "work"
    work.mkdir()
    for name in ("01-quickstart.ipynb", "02-data-pipeline.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, work / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update(_settings(root))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    port, token = _free_port(), secrets.token_hex(16)
    log = (root / "lab.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/status", params={"token": token}).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()}")
            time.sleep(0.5)
        shots = Path(os.environ.get("CLOACA_SCREENSHOT_DIR") or root / "shots")
        shots.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(root / "chromium-profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=FLAGS,
                viewport={"width": 1280, "height": 900},
                timeout=120_000,
            )
            try:
                yield Lab(url, token, work, browser, shots)
            finally:
                browser.close()
    finally:
        with contextlib.suppress(httpx.HTTPError):  # stops the kernels too
            httpx.post(f"{url}/api/shutdown", headers={"Authorization": f"token {token}"})
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)
        log.close()


def _run_all(page: Any, code_cells: int, timeout_ms: int = 240_000) -> None:
    page.evaluate(RUN_ALL)
    page.wait_for_function(_DONE, arg=code_cells, timeout=timeout_ms)


def _run_cell(page: Any, index: int) -> None:
    page.evaluate(
        f"""async (i) => {{
          const p = {_PANEL};
          p.content.activeCellIndex = i;
          await window.jupyterapp.commands.execute('notebook:run-cell');
        }}""",
        index,
    )


def _wait_cell_done(page: Any, index: int, timeout_ms: int = 180_000) -> None:
    page.wait_for_function(
        f"""(i) => {{
          const p = {_PANEL}; const c = p.content.widgets[i];
          const k = p.sessionContext.session && p.sessionContext.session.kernel;
          return !!k && k.status === 'idle'
            && c.model.executionCount !== null && !c.node.classList.contains('jp-mod-running');
        }}""",
        arg=index,
        timeout=timeout_ms,
    )


def _picture(outputs: list[dict[str, Any]]) -> str:
    """The SVG of the run's picture among a cell's outputs (a static display, not a widget)."""
    pictures = [o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {})]
    assert len(pictures) == 1, outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    return str(pictures[0])


def _shown_svg(page: Any, index: int) -> str:
    """The SVG the browser actually shows for cell ``index``'s picture (an <img> data URI)."""
    src = page.evaluate(
        f"""(i) => {{ const img = {_PANEL}.content.widgets[i].node.querySelector(
              '.jp-RenderedSVG img, .jp-OutputArea-output img'); return img && img.src; }}""",
        index,
    )
    assert src and src.startswith("data:image/svg+xml"), src
    head, _, body = src.partition(",")
    return (
        base64.b64decode(body).decode() if head.endswith(";base64") else urllib.parse.unquote(body)
    )


def _cell_shot(page: Any, index: int, path: Path) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    cell.screenshot(path=str(path))


def _errors(outputs: list[list[dict[str, Any]]]) -> list[Any]:
    return [o for cell in outputs for o in cell if o.get("output_type") == "error"]


def test_pipeline_runs_keep_their_own_pictures(lab: Lab) -> None:
    """02: the live DAG recolours through fetch's retries; run 1's picture stays failed."""
    page = lab.open("02-data-pipeline.ipynb")
    code = page.evaluate(
        f"() => {_PANEL}.content.widgets.filter(c => c.model.type === 'code').length"
    )
    page.evaluate(RUN_ALL)
    # the %cloaca_dag widget (cell 9) recolours live: fetch is "running" while it retries
    page.wait_for_function(_FILL, arg=[9, "fetch", RUNNING], polling=25, timeout=120_000)
    _cell_shot(page, 9, lab.shots / "notebook-live-dag.png")
    page.wait_for_function(_DONE, arg=code, timeout=240_000)

    assert page.get_by_text("Error displaying widget").count() == 0
    outputs = page.evaluate(_OUTPUTS)
    assert _errors(outputs) == []
    assert page.evaluate(_FILL, [9, "fetch", SUCCEEDED])  # after run 2 the live DAG is green

    run1, run2 = _picture(outputs[11]), _picture(outputs[14])
    assert statuses(run1) == {
        "fetch": "succeeded", "validate": "failed", "aggregate": "skipped", "report": "skipped",
    }  # fmt: skip
    assert "attempt 3" in run1 and "4/4 tasks · failed" in run1  # two retries, then success
    assert set(statuses(run2).values()) == {"succeeded"}
    # what the browser shows is the same: run 1's output did not follow run 2
    assert statuses(_shown_svg(page, 11)) == statuses(run1)
    assert statuses(_shown_svg(page, 14)) == statuses(run2)
    table = json.dumps(outputs[11])
    assert "3 (2 retries)" in table and "0.000s" not in table and "Completed notebook" not in table
    _cell_shot(page, 11, lab.shots / "notebook-run-failed.png")
    _cell_shot(page, 14, lab.shots / "notebook-run-succeeded.png")
    page.close()


ISOLATED = "iso = %cloaca_run --isolated -p n=3\niso"


def test_edit_rerun_then_isolated_run(lab: Lab) -> None:
    """01: edit the first task cell (it also holds the import) and re-run it, then --isolated."""
    page = lab.open("01-quickstart.ipynb")
    code = page.evaluate(
        f"() => {_PANEL}.content.widgets.filter(c => c.model.type === 'code').length"
    )
    _run_all(page, code)
    assert page.get_by_text("Error displaying widget").count() == 0
    assert _errors(page.evaluate(_OUTPUTS)) == []
    # edit cell 3 (`from cloaca import task` + task "numbers") and re-run it, as a user would
    page.evaluate(
        f"""() => {{ const m = {_PANEL}.content.widgets[3].model.sharedModel;
              m.setSource(m.getSource().replace('context.get("n", 4)', 'context.get("n", 2)')); }}"""
    )
    _run_cell(page, 3)
    _wait_cell_done(page, 3)
    # a new cell at the end: an isolated run in a fresh kernel
    last = page.evaluate(f"() => {_PANEL}.content.widgets.length") - 1
    page.evaluate(
        f"""async ([i, src]) => {{
          const p = {_PANEL};
          p.content.activeCellIndex = i;
          await window.jupyterapp.commands.execute('notebook:insert-cell-below');
          p.content.activeCell.model.sharedModel.setSource(src);
          await window.jupyterapp.commands.execute('notebook:run-cell');
        }}""",
        [last, ISOLATED],
    )
    _wait_cell_done(page, last + 1)
    outputs = page.evaluate(_OUTPUTS)
    isolated = outputs[last + 1]
    assert _errors(outputs) == [], _errors(outputs)
    text = json.dumps(isolated)
    assert "Isolated run of workflow 'notebook' completed" in text
    assert "without encryption" not in text and "stderr" not in text  # no red box
    # n=3, squares cubed by the re-defined cell 13: 1 + 8 + 27
    check = page.evaluate(
        f"""async () => {{
          const k = {_PANEL}.sessionContext.session.kernel;
          const f = k.requestExecute({{code: "print(iso.final_context['total'])"}});
          let out = '';
          f.onIOPub = (m) => {{ if (m.header.msg_type === 'stream') out += m.content.text; }};
          await f.done;
          return out;
        }}"""
    )
    assert check.strip() == "36"
    _cell_shot(page, last + 1, lab.shots / "notebook-isolated-run.png")
    page.close()
