"""A fake uv for builder tests: records calls, writes locks and vendor trees, can fail."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


class FakeUv:
    """Stands in for :func:`cloaca.packaging.lock.run` (``runner=``)."""

    def __init__(
        self, fail_platform: str | None = None, stderr: str = "boom", wheel_tag: str | None = None
    ) -> None:
        """``wheel_tag``: install ``demo`` with a ``demo-1.0.dist-info/WHEEL`` carrying this
        ``Tag:`` (``{abi}`` is replaced by ``cp3XY`` of the requested Python)."""
        self.calls: list[list[str]] = []
        self.fail_platform = fail_platform
        self.stderr = stderr
        self.wheel_tag = wheel_tag

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        platform = argv[argv.index("--python-platform") + 1]
        if platform == self.fail_platform:
            return subprocess.CompletedProcess(argv, 1, "", self.stderr)
        if argv[1:3] == ["pip", "compile"]:
            out = Path(argv[argv.index("-o") + 1])
            out.write_text(f"demo==1.0 \\\n    --hash=sha256:{'0' * 64}\n")
        else:
            target = Path(argv[argv.index("--target") + 1])
            (target / "demo").mkdir(parents=True, exist_ok=True)
            (target / "demo" / "__init__.py").write_text(f"PLATFORM = {platform!r}\n")
            (target / "bin").mkdir(exist_ok=True)
            (target / "bin" / "demo").write_text("#!/usr/bin/python\n")
            (target / ".lock").write_text("")
            if self.wheel_tag is not None:
                abi = "cp" + argv[argv.index("--python-version") + 1].replace(".", "")
                info = target / "demo-1.0.dist-info"
                info.mkdir(exist_ok=True)
                tag = self.wheel_tag.replace("{abi}", abi)
                (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nTag: {tag}\n")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def count(self, verb: str) -> int:
        """How many ``uv pip <verb>`` calls were made."""
        return sum(1 for call in self.calls if call[2] == verb)
