"""``make demo``: the user's journey end to end, offline, with the real command-line tools.

1. build the example project with ``cloaca build``;
2. start an embedded server (SQLite, temporary home, a free port) with ``cloacina server start``;
3. upload the package with ``cloacina package upload``;
4. run the workflow with ``raw_data`` in the context (no network) and wait;
5. print the report from the final context, and stop the server.

Exits 0 on success; any failing step prints its output and exits 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "features" / "python-workflow"
BIN = Path(sys.executable).parent
RAW_DATA = [
    {"id": 1, "name": "sensor-a", "value": 21.5},
    {"id": 2, "name": "sensor-b", "value": 19.25},
    {"id": 3, "name": "sensor-c", "value": 23.0},
    {"id": 4, "name": "sensor-d", "value": "offline"},
]


def step(title: str, *argv: str) -> str:
    """Run one command, echo it, and return its stdout (exit on failure)."""
    print(f"\n$ {' '.join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))}")
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        print(f"demo failed at: {title}", file=sys.stderr)
        raise SystemExit(1)
    return proc.stdout


def main() -> int:
    """Run the demo; return the exit status."""
    with tempfile.TemporaryDirectory(prefix="cloaca-demo-") as tmp:
        home, dist = Path(tmp) / "home", Path(tmp) / "dist"
        cli = [str(BIN / "cloacina"), "--home", str(home)]
        print(step("build", str(BIN / "cloaca"), "build", str(EXAMPLE), "-o", str(dist)).strip())
        (archive,) = dist.glob("*.cloaca")
        started = step(
            "start the server",
            *cli, "server", "start", "--bind", "127.0.0.1:0", "--home", str(home),
            "--background", "--log-level", "warning", "-o", "json",
        )  # fmt: skip
        print(f"server running at {json.loads(started)['url']} (home {home})")
        try:
            print(step("upload", *cli, "package", "upload", str(archive)).rstrip())
            context = Path(tmp) / "context.json"
            context.write_text(json.dumps({"raw_data": RAW_DATA}))
            out = step(
                "run", *cli, "workflow", "run", "data-pipeline-example",
                "--context", str(context), "--wait", "-o", "json",
            )  # fmt: skip
            result = json.loads(out)
            print(f"execution {result['execution_id']}: {result['status']}\n")
            print(result["context"]["report"])
        finally:
            step("stop the server", *cli, "server", "stop")
            print("\nserver stopped")
    return 0 if result["status"] == "Completed" else 1


if __name__ == "__main__":
    os.environ.pop("CLOACINA_API_KEY", None)
    os.environ.pop("CLOACINA_SERVER", None)
    sys.exit(main())
