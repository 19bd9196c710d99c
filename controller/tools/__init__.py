"""Offline tools (evaluation, eligibility, traces, reports) built on the same control core.

Each tool module exposes `add_subparser(subparsers)` for `v2ghub` and a `main(argv)` for tests
and `python -m`; `parse_standalone` is the shared part of those `main`s.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

EXIT_USAGE = 2  # argparse's own status for a malformed command line


def parse_standalone(prog: str, doc: str | None,
                     add_arguments: Callable[[argparse.ArgumentParser], None],
                     argv: Sequence[str] | None) -> argparse.Namespace | int:
    """Parse a tool's own command line: the namespace, or the exit status argparse chose
    (0 after --help, 2 on a usage error)."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0] if doc else None)
    add_arguments(parser)
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
