"""Command line of the simulated fleet: `python -m sim_chargers --config PATH` (`v2ghub sim`).

Parses arguments, loads the sim config, fleet file and frequency trace, and runs SimFleet until
interrupted (or --duration). Bad input exits with status 2 and one clear line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from sim_chargers.fleet import SimFleet, load_frequency
from sim_chargers.fleetfile import FleetFileError, load_fleet
from sim_chargers.settings import SimConfigError, SimSettings, load_sim_settings
from sim_chargers.traces import Trace, TraceError

log = logging.getLogger("sim_chargers")

EXIT_BAD_CONFIG = 2


def build_parser(prog: str = "python -m sim_chargers") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Simulated OCPP 2.0.1 bidirectional charger fleet with vehicle dynamics "
                    "and a simulated site meter (SPEC §3.1). Every station connects to "
                    "[csms] url/<station id>; the site meter streams {t, f_hz, p_w} samples.",
        epilog="Config keys, units and defaults: config/sim.example.toml. Fleet file format: "
               "config/fleet.example.toml.")
    parser.add_argument("--config", required=True, metavar="PATH",
                        help="sim config TOML ([sim], [csms], [site_meter], [frequency])")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds (default: run until Ctrl-C / SIGTERM)")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="logging level (default INFO)")
    parser.add_argument("--no-uvloop", action="store_true",
                        help="use the default asyncio loop even if uvloop is installed")
    return parser


def load(config: str) -> tuple[SimSettings, SimFleet]:
    """Load everything the fleet needs. Raises SimConfigError, FleetFileError, TraceError."""
    settings = load_sim_settings(config)
    spec = load_fleet(settings.fleet, variation_frac=settings.variation_frac, seed=settings.seed)
    trace: Trace = load_frequency(settings)
    return settings, SimFleet(settings, spec, trace)


async def _serve(fleet: SimFleet, duration_s: float | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await fleet.start()
    log.info("sim: %d stations -> %s", len(fleet.stations), fleet.settings.csms.url)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration_s):
                await stop.wait()
    finally:
        await fleet.stop()


def main(argv: Sequence[str] | None = None, prog: str = "python -m sim_chargers") -> int:
    """Entry point; returns the process exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        _, fleet = load(args.config)
    except (SimConfigError, FleetFileError, TraceError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop  # noqa: PLC0415 - optional speed-up
            runner = uvloop.run
        except ImportError:
            pass
    with contextlib.suppress(KeyboardInterrupt):
        runner(_serve(fleet, args.duration))
    return 0
