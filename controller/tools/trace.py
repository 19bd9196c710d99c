"""`v2ghub trace NAME --out FILE.csv`: write a library trace as a SPEC §3.2 trace CSV.

The edge around sim_chargers.tracelib (which is pure): parses arguments, writes the file
(atomically: a temporary file renamed into place, so a failed run never leaves half a trace),
prints one summary line. Exit codes: 0 written or listed, 2 bad arguments (unknown name, bad
--seconds/--rate-hz/--seed, missing --out), 1 the file cannot be written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim_chargers import tracelib, traceshapes
from sim_chargers.traces import MAX_RATE_HZ, Trace, TraceError

EXIT_USAGE = 2
EXIT_IO = 1


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `trace` on `subparsers` (an argparse sub-parsers action); func(args) -> int."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "trace", help="write a frequency trace CSV from the trace library",
        description="Write a named frequency trace (GB normal operation, steps to each service's "
                    "deadband edge, knee and saturation, ramps, published GB and Continental "
                    "Europe events) as a t_s,f_hz CSV. --list shows the names.")
    p.add_argument("name", nargs="?", metavar="NAME", help="trace name (see --list)")
    p.add_argument("--out", metavar="FILE.csv", help="output file, '-' for stdout")
    p.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="duration (default: the trace's own, see --list)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="random seed for seeded traces (gb-normal; default: 0)")
    p.add_argument("--rate-hz", type=float, default=tracelib.DEFAULT_RATE_HZ, metavar="HZ",
                   help=f"sample rate, at most {MAX_RATE_HZ:g} "
                        f"(default: {tracelib.DEFAULT_RATE_HZ:g})")
    p.add_argument("--depth-hz", type=float, default=None, metavar="HZ",
                   help="ramp-down/ramp-up only: depth below/above 50 Hz (default: 0.5)")
    p.add_argument("--ramp-s", type=float, default=None, metavar="S",
                   help="ramp-down/ramp-up only: duration of each ramp (default: 10)")
    p.add_argument("--list", action="store_true", help="list trace names and exit")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed `trace` command."""
    if args.list:
        width = max(len(n) for n in tracelib.TRACES)
        for name, spec in tracelib.TRACES.items():
            print(f"{name:<{width}}  {spec.default_seconds:>6g} s  {spec.summary}")
        return 0
    if not args.name or not args.out:
        return _usage("give a trace NAME and --out FILE.csv (or --list)")
    try:
        trace = _generate(args)
    except TraceError as exc:
        return _usage(str(exc))
    text = tracelib.to_csv(trace)
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    try:
        _write_atomically(Path(args.out), text)
    except OSError as exc:
        print(f"v2ghub trace: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_IO
    print(f"wrote {args.out}: {trace.name}, {len(trace.t_s)} samples over "
          f"{trace.duration_s:g} s at {args.rate_hz:g} Hz, "
          f"{float(trace.f_hz.min()):.3f}-{float(trace.f_hz.max()):.3f} Hz")
    return 0


def _generate(args: argparse.Namespace) -> Trace:
    if args.depth_hz is None and args.ramp_s is None:
        return tracelib.generate(args.name, seconds=args.seconds, seed=args.seed,
                                 rate_hz=args.rate_hz)
    if args.name not in ("ramp-down", "ramp-up"):
        raise TraceError("--depth-hz and --ramp-s apply to ramp-down and ramp-up only")
    spec = tracelib.lookup(args.name)
    seconds = spec.default_seconds if args.seconds is None else float(args.seconds)
    tracelib.check_arguments(seconds, args.seed, args.rate_hz)
    return traceshapes.ramp("down" if args.name == "ramp-down" else "up", seconds, args.rate_hz,
                         depth_hz=0.5 if args.depth_hz is None else float(args.depth_hz),
                         ramp_s=10.0 if args.ramp_s is None else float(args.ramp_s))


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _usage(message: str) -> int:
    print(f"v2ghub trace: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """`v2ghub trace` on its own (tests, `python -m controller.tools.trace`)."""
    parser = argparse.ArgumentParser(prog="v2ghub")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["trace", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as exc:  # argparse: --help (0) or a malformed option (2)
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        return EXIT_USAGE
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
