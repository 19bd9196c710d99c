"""`v2ghub` command line: run (the daemon), sim (the simulated fleet), demo.

Parses arguments, sets up logging and the event loop, and hands over to app/demo/sim_chargers.
Bad configuration exits with status 2 and one line on stderr saying what to fix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from controller import __version__
from controller.settings import ConfigError, load_settings

# Offline tools, each exposing add_subparser(subparsers); imported when the parser is built.
TOOLS = ("controller.tools.evaluate", "controller.tools.eligibility", "controller.tools.trace",
         "controller.tools.report")

EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def _install_uvloop() -> None:
    """uvloop gives +45 % on the lean websocket path (PITFALLS.md); optional."""
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # websockets logs every connection open/close at INFO: noise at a thousand stations.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.root.level))


def run_until_signal(coro: Coroutine[Any, Any, Any]) -> None:
    """Run `coro` until it ends or SIGINT/SIGTERM arrives; then cancel it cleanly."""

    async def main() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


def _cmd_run(args: argparse.Namespace) -> int:
    from controller.app import Daemon  # noqa: PLC0415  (keep `--help` fast)

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"v2ghub: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging(args.log_level)
    _install_uvloop()
    try:
        run_until_signal(Daemon(settings).run())
    except OSError as exc:
        print(f"v2ghub: cannot start: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    from sim_chargers.cli import main as sim_main  # noqa: PLC0415

    return sim_main(["--config", str(args.config), "--log-level", args.log_level])


def _cmd_demo(args: argparse.Namespace) -> int:
    from controller.demo import DemoOptions, run_demo  # noqa: PLC0415

    # The demo prints its own progress; daemon logs only when something is wrong.
    _setup_logging("warning" if args.log_level == "info" else args.log_level)
    opts = DemoOptions(out_dir=Path(args.out), event=args.event, contract_kw=args.contract_kw,
                       service=args.service, fleet=Path(args.fleet) if args.fleet else None,
                       mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                       hold_s=args.hold_s, dispatch=args.dispatch)
    try:
        return asyncio.run(run_demo(opts))
    except ConfigError as exc:
        print(f"v2ghub demo: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="v2ghub",
        description="Site controller that turns parked bidirectional EVs into a frequency-"
                    "response resource: OCPP 2.0.1 central system + sub-second control loop.",
    )
    p.add_argument("--version", action="version", version=f"v2ghub {__version__}")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="default: info")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the site controller daemon",
                         description="Run the daemon: OCPP server, meter input, control loop, "
                                     "MQTT telemetry. Exits 2 with one line on bad config.")
    run.add_argument("--config", required=True, metavar="PATH",
                     help="daemon config TOML (see config/v2ghub.example.toml)")
    run.set_defaults(func=_cmd_run)

    sim = sub.add_parser("sim", help="run the simulated charger fleet and site meter",
                         description="Simulated stations (real OCPP 2.0.1 clients) with vehicle "
                                     "dynamics, plus a site meter streaming frequency and power.")
    sim.add_argument("--config", required=True, metavar="PATH",
                     help="sim config TOML (see config/sim.example.toml)")
    sim.set_defaults(func=_cmd_sim)

    demo = sub.add_parser(
        "demo", help="daemon + simulated fleet + a frequency event, on this machine",
        description="Start a broker (an existing one on --mqtt-host/--mqtt-port, else mosquitto "
                    "on a free port, else console telemetry), the daemon and a simulated fleet; "
                    "play a frequency event; print a compliance summary and write a plot.")
    demo.add_argument("--out", default="demo-out", metavar="DIR",
                      help="where the plot and run record go (default: demo-out)")
    demo.add_argument("--event", default="dc-l-dip",
                      help="built-in frequency event (default: dc-l-dip)")
    demo.add_argument("--hold-s", type=float, default=None, metavar="S",
                      help="how long the event holds its extreme (default: the event's own)")
    demo.add_argument("--dispatch", default="naive", choices=["naive", "compensated"],
                      help="control.dispatch of the demo daemon (default: naive)")
    demo.add_argument("--service", default="DC-L", help="contracted service (default: DC-L)")
    demo.add_argument("--contract-kw", type=float, default=100.0,
                      help="contracted power in kW (default: 100)")
    demo.add_argument("--fleet", default=None, metavar="FLEET.toml",
                      help="fleet file (default: config/fleet.example.toml, 20 mixed vehicles)")
    demo.add_argument("--mqtt-host", default="127.0.0.1", help="broker to try first")
    demo.add_argument("--mqtt-port", type=int, default=1883, help="broker port to try first")
    demo.set_defaults(func=_cmd_demo)

    for tool in TOOLS:  # offline tools register their own sub-commands
        importlib.import_module(tool).add_subparser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
    except BrokenPipeError:  # `v2ghub trace --list | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
