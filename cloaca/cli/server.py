"""``cloacina-server``: run the server in the foreground (the same flags as
``cloacina server start``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cloaca.cli.cloacina.server import add_start_arguments, start_foreground
from cloaca.errors import CloacaError


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cloacina-server``; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="cloacina-server", description="Serve the Cloacina-compatible REST API."
    )
    add_start_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return start_foreground(args)
    except (ValueError, CloacaError) as exc:  # a bad flag, an unusable --python interpreter
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
