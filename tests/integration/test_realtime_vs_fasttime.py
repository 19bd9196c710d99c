"""Real time agrees with fast time (issue 4 item 6): one 5-minute scenario run two ways.

(a) REAL TIME: the daemon and the simulated fleet over real sockets (OCPP 2.0.1 websockets on
    loopback, the site meter streaming SPEC §3.3 samples over UDP at 10 Hz), recorded and scored
    exactly as `v2ghub demo` does (controller.demo: play_trace, Recorder, summarise).
(b) FAST TIME: controller.tools.evaluate.evaluate on the same fleet file, trace, contract and
    dispatch, with variation_frac=0 so its plant is the simulator's (load_fleet's nominal fleet;
    only the conversion efficiency differs, which moves SoC, not grid power).

The scenario is the 9 August 2019 GB event (tracelib "gb-2019-08-09", 300 s: the frequency
falls to 48.8 Hz at ~7 s and stays below DC-L's 49.5 Hz saturation until ~167 s), DC-L 100 kW on
the demo's 20-vehicle mixed fleet. Real time cannot run faster than the clock, so both dispatches
play at once in one event loop (two daemons, two simulated fleets): the test takes ~5 min once.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import Any

import pytest

from controller.adapters.telemetry import ConsoleTelemetry
from controller.app import Daemon
from controller.control.services import contracts_from
from controller.demo import DEFAULT_FLEET, DemoOptions, Recorder, daemon_doc, play_trace, summarise
from controller.settings import parse_settings
from controller.tools.evaluate import evaluate
from sim_chargers.fleetfile import FleetSpec, load_fleet
from sim_chargers.tracelib import generate
from sim_chargers.traces import Trace

pytestmark = pytest.mark.integration

SCENARIO = "gb-2019-08-09"
SCENARIO_S = 300.0  # issue 4 item 6: "the same 5-minute scenario"
SERVICE, CONTRACT_KW = "DC-L", 100.0
AGREEMENT_PP = 2.0  # issue 4 item 6: compliance within 2 percentage points


async def _real_time(dispatch: str, spec: FleetSpec, trace: Trace) -> dict[str, Any]:
    """Daemon + SimFleet + SiteMeter over loopback sockets; the demo's summary of the run."""
    opts = DemoOptions(event=SCENARIO, service=SERVICE, contract_kw=CONTRACT_KW,
                       dispatch=dispatch, tail_s=0.0)
    daemon = Daemon(parse_settings(daemon_doc(opts, spec, mqtt_port=0)),
                    telemetry=ConsoleTelemetry(topics=()))
    rec = Recorder()
    daemon.tick_hooks.append(rec.on_tick)
    task = asyncio.create_task(daemon.run(), name=f"daemon-{dispatch}")
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        await play_trace(daemon, spec, DEFAULT_FLEET, trace, opts.tail_s, rec, io.StringIO())
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    full_s = max(c.definition.full_s for c in contracts_from([(SERVICE, CONTRACT_KW)]))
    return summarise(rec, opts, full_s, spec.n)


async def test_daemon_over_real_sockets_scores_within_two_points_of_evaluate() -> None:
    spec = load_fleet(DEFAULT_FLEET)
    trace = generate(SCENARIO, seconds=SCENARIO_S)
    dispatches = ("naive", "compensated")
    real = await asyncio.gather(*(_real_time(d, spec, trace) for d in dispatches))
    rows = []
    for d, rt in zip(dispatches, real, strict=True):
        fast = evaluate(spec, trace, contracts_from([(SERVICE, CONTRACT_KW)]), dispatch=d,
                        variation_frac=0.0)
        assert rt["duration_s"] > 0.95 * SCENARIO_S  # the whole scenario was recorded
        assert rt["requested_mean_kw"] < -50.0  # the event asked for a large response ...
        assert fast.n_events >= 1  # ... in both runs
        rows.append((d, float(rt["compliance_pct"]), fast.compliance_pct))
    report = "\n".join(f"{d}: real time {rt:.2f} %, fast time {ft:.2f} %, difference "
                        f"{rt - ft:+.2f} pp" for d, rt, ft in rows)
    print("\n" + report)
    for _, rt_pct, ft_pct in rows:
        assert abs(rt_pct - ft_pct) <= AGREEMENT_PP, report
