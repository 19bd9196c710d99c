"""`v2ghub demo`: broker, daemon, simulated fleet and a frequency event on one machine.

Orchestration only: it builds a daemon config for the simulated fleet, starts everything in one
event loop, records what the daemon saw at every tick, and scores it with the same compliance
metric (control/metrics.py) that evaluation uses. Writes `run.json`, `demo.png` and
`report.html` (controller/tools/report.py) to --out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from controller.adapters.broker import Mosquitto
from controller.adapters.mqtt import MqttTelemetry, broker_reachable
from controller.adapters.telemetry import ConsoleTelemetry, Telemetry
from controller.app import Daemon
from controller.control.controller import TickResult
from controller.control.metrics import Compliance, score, tube
from controller.control.services import ServiceError, contracts_from
from controller.settings import ConfigError, MqttConfig, parse_settings
from controller.tools.report import write_report

if TYPE_CHECKING:
    from sim_chargers.fleetfile import FleetSpec
    from sim_chargers.traces import Trace

DEMO_PASSWORD = "demo-password-0123"  # noqa: S105 - 16-40 chars (OCPP A00.FR.205); loopback only
SETTLE_TIMEOUT_S = 30.0  # all simulated stations booted with a transaction by then
TAIL_S = 10.0  # keep recording after the event so the recovery is on the plot
DEFAULT_FLEET = Path(__file__).resolve().parents[1] / "config" / "fleet.example.toml"


@dataclass(frozen=True)
class DemoOptions:
    out_dir: Path = Path("demo-out")
    event: str = "dc-l-dip"
    contract_kw: float = 100.0
    service: str = "DC-L"
    fleet: Path | None = None
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    hold_s: float | None = None  # how long the event holds its extreme (None: event default)
    dispatch: str = "naive"  # control.dispatch of the demo daemon (the daemon default)
    tail_s: float = TAIL_S


@dataclass
class Recorder:
    """What the daemon saw and asked for at each tick (the demo's run record)."""

    t0_s: float = float("nan")
    t_s: list[float] = field(default_factory=list)
    f_hz: list[float] = field(default_factory=list)
    requested_w: list[float] = field(default_factory=list)
    site_w: list[float] = field(default_factory=list)
    fallback: list[bool] = field(default_factory=list)

    def on_tick(self, now_s: float, result: TickResult, daemon: Daemon) -> None:
        sample = daemon.last_sample
        if sample is None or sample.p_w is None or np.isnan(self.t0_s):
            return
        self.t_s.append(now_s - self.t0_s)
        self.f_hz.append(sample.f_hz)
        self.requested_w.append(result.request_w)
        self.site_w.append(sample.p_w)
        self.fallback.append(result.fallback)


async def _telemetry(opts: DemoOptions, site: str, workdir: Path, out: TextIO,
                     ) -> tuple[Telemetry, str, Mosquitto | None, int]:
    """An existing broker, else mosquitto on a free port, else console telemetry."""
    prefix = f"v2ghub/{site}"
    if await broker_reachable(opts.mqtt_host, opts.mqtt_port):
        cfg = MqttConfig(host=opts.mqtt_host, port=opts.mqtt_port)
        return (MqttTelemetry(cfg, prefix), f"broker at {opts.mqtt_host}:{opts.mqtt_port}",
                None, opts.mqtt_port)
    try:
        broker = Mosquitto(workdir)
        await asyncio.to_thread(broker.start)
    except (OSError, RuntimeError) as exc:  # not installed, or did not come up
        print(f"  no MQTT broker ({exc}); telemetry goes to the console", file=out)
        return ConsoleTelemetry(out), "console (no broker)", None, 0
    cfg = MqttConfig(host=broker.host, port=broker.port)
    return (MqttTelemetry(cfg, prefix), f"mosquitto started on 127.0.0.1:{broker.port}",
            broker, broker.port)


def daemon_doc(opts: DemoOptions, spec: FleetSpec, mqtt_port: int) -> dict[str, Any]:
    """The demo daemon's config: one station per simulated vehicle, its model named (priors)."""
    charger_kw = (spec.params.max_charge_w / 1e3).tolist()
    stations = [{"id": f"CP{i + 1:03d}", "password": DEMO_PASSWORD,
                 "discharge": "negative_limit", "max_power_kw": charger_kw[i],
                 "vehicle": spec.models[i].name} for i in range(spec.n)]
    return {
        "site": {"id": "demo"},
        "ocpp": {"host": "127.0.0.1", "port": 0, "security_profile": 1, "station": stations},
        "meter": {"host": "127.0.0.1", "port": 0},
        "mqtt": {"enabled": mqtt_port > 0, "port": mqtt_port or 1883},
        "service": [{"name": opts.service, "contract_kw": opts.contract_kw}],
        "control": {"dispatch": opts.dispatch},
    }


async def _wait_for_transactions(daemon: Daemon, n: int, out: TextIO) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        active = int((daemon.fleet.online & daemon.fleet.tx_active).sum())
        if active >= n:
            print(f"  {active}/{n} stations booted with an EV plugged in", file=out)
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"only {int(daemon.fleet.tx_active.sum())}/{n} stations started a "
                       f"transaction within {SETTLE_TIMEOUT_S:.0f} s")


async def _progress(rec: Recorder, out: TextIO) -> None:
    """One line a second while the event plays."""
    while True:
        await asyncio.sleep(1.0)
        if rec.t_s:
            print(f"  t={rec.t_s[-1]:5.1f} s  f={rec.f_hz[-1]:7.3f} Hz  "
                  f"requested={rec.requested_w[-1] / 1e3:8.1f} kW  "
                  f"site power={rec.site_w[-1] / 1e3:8.1f} kW", file=out, flush=True)


async def play_trace(  # noqa: PLR0917 - the demo's pieces, built by run_demo
        daemon: Daemon, spec: FleetSpec, fleet_path: Path, trace: Trace, tail_s: float,
        rec: Recorder, out: TextIO) -> None:
    """Start the simulated fleet, wait for every transaction, then stream the event."""
    from sim_chargers.fleet import SimFleet  # noqa: PLC0415
    from sim_chargers.settings import CsmsConfig, SimSettings, SiteMeterConfig  # noqa: PLC0415
    from sim_chargers.site_meter import SiteMeter  # noqa: PLC0415

    meter_port = daemon.meter.port if daemon.meter else 0
    print(f"  daemon: OCPP on ws://127.0.0.1:{daemon.server.port}, meter on udp :{meter_port}",
          file=out)
    sim = SimFleet(SimSettings(
        fleet=fleet_path, csms=CsmsConfig(url=f"ws://127.0.0.1:{daemon.server.port}",
                                          password=DEMO_PASSWORD),
        site_meter=SiteMeterConfig(enabled=False)), spec, trace)
    await sim.start()
    try:
        await _wait_for_transactions(daemon, spec.n, out)
        # the site meter starts with the event, so t = 0 on the plot is the trace's t = 0
        meter = SiteMeter(protocol="udp", host="127.0.0.1", port=meter_port, trace=trace,
                          power_w=lambda: sim.total_power_w, rate_hz=10.0)
        rec.t0_s = time.monotonic()
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(meter.run(), name="site-meter"),
                     tg.create_task(_progress(rec, out), name="progress")]
            await asyncio.sleep(trace.duration_s + tail_s)
            for t in tasks:
                t.cancel()
    finally:
        daemon.stopping()  # the stations' goodbyes are then not alarms
        await sim.stop()


async def run_demo(opts: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the demo end to end; returns the process exit status.

    Raises:
        ConfigError: a bad fleet file, event or service name.
    """
    from sim_chargers.fleetfile import FleetFileError, load_fleet  # noqa: PLC0415
    from sim_chargers.traces import TraceError, builtin_event  # noqa: PLC0415

    fleet_path = opts.fleet or DEFAULT_FLEET
    try:
        spec = load_fleet(fleet_path)
        trace = builtin_event(opts.event, hold_s=opts.hold_s)
        contracts = contracts_from([(opts.service, opts.contract_kw)])
    except (FleetFileError, TraceError, ServiceError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    full_s = max(c.definition.full_s for c in contracts)
    starts = [c.definition.start_s for c in contracts if c.definition.start_s is not None]
    print(f"v2ghub demo: {spec.n} simulated vehicles ({fleet_path.name}), {opts.service} "
          f"{opts.contract_kw:g} kW, event {opts.event!r} ({trace.duration_s:.0f} s)", file=out)
    workdir = Path(tempfile.mkdtemp(prefix="v2ghub-demo-"))
    telemetry, where, broker, mqtt_port = await _telemetry(opts, "demo", workdir, out)
    print(f"  telemetry: {where}", file=out)
    daemon = Daemon(parse_settings(daemon_doc(opts, spec, mqtt_port)), telemetry=telemetry)
    rec = Recorder()
    daemon.tick_hooks.append(rec.on_tick)
    daemon_task = asyncio.create_task(daemon.run(), name="daemon")
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        await play_trace(daemon, spec, fleet_path, trace, opts.tail_s, rec, out)
    finally:
        daemon_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await daemon_task
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    summary = summarise(rec, opts, full_s, spec.n)
    summary["required_start_s"] = max(starts) if starts else None
    print(format_summary(summary), file=out)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    (opts.out_dir / "run.json").write_text(json.dumps(
        {"summary": summary, "record": asdict(rec)}, default=float, indent=1))
    plot = opts.out_dir / "demo.png"
    write_plot(rec, opts, full_s, plot)
    report = write_report([opts.out_dir / "run.json"], opts.out_dir / "report.html",
                          title=f"v2ghub demo: {opts.service} {opts.contract_kw:g} kW")
    print(f"  wrote {plot}, {opts.out_dir / 'run.json'} and {report}", file=out)
    return 0


def summarise(rec: Recorder, opts: DemoOptions, full_delivery_s: float,
              n_vehicles: int) -> dict[str, Any]:
    """Requested vs delivered over the run, scored with the SPEC §3.5 tube."""
    if len(rec.t_s) < 10:
        raise RuntimeError("the daemon recorded fewer than 10 ticks with meter data")
    t = np.asarray(rec.t_s)
    req = np.asarray(rec.requested_w)
    site = np.asarray(rec.site_w)
    onset = np.flatnonzero(np.abs(req) > 0)
    pre = site[: onset[0]] if onset.size and onset[0] > 0 else site[:1]
    baseline = float(np.median(pre))
    delivered = site - baseline
    c: Compliance = score(t, req, delivered, opts.contract_kw * 1e3, full_delivery_s)
    in_event = np.abs(req) > 0
    dt = np.diff(t, append=t[-1])
    return {
        "service": opts.service, "contract_kw": opts.contract_kw, "event": opts.event,
        "n_vehicles": n_vehicles, "duration_s": float(t[-1] - t[0]),
        "baseline_kw": baseline / 1e3,
        "requested_mean_kw": float(req[in_event].mean() / 1e3) if in_event.any() else 0.0,
        "delivered_mean_kw": float(delivered[in_event].mean() / 1e3) if in_event.any() else 0.0,
        "requested_kwh": float((req * dt)[in_event].sum() / 3.6e6),
        "delivered_kwh": float((delivered * dt)[in_event].sum() / 3.6e6),
        "start_delay_s": c.start_delay_s, "full_delivery_s": c.full_delivery_s,
        "required_full_delivery_s": full_delivery_s,
        "compliance_pct": c.compliance_pct, "max_shortfall_pct": c.max_shortfall_pct,
        "energy_shortfall_kwh": c.energy_shortfall_kwh,
    }


def format_summary(s: dict[str, Any]) -> str:
    def secs(v: float | None) -> str:
        return "never" if v is None else f"{v:.2f} s"

    rows = [
        ("", "requested", "delivered"),
        ("mean response during event", f"{s['requested_mean_kw']:.1f} kW",
         f"{s['delivered_mean_kw']:.1f} kW"),
        ("energy during event", f"{s['requested_kwh']:.3f} kWh", f"{s['delivered_kwh']:.3f} kWh"),
        ("time to first response",
         "-" if s.get("required_start_s") is None else secs(s["required_start_s"]),
         secs(s["start_delay_s"])),
        ("time to full delivery", f"{s['required_full_delivery_s']:.2f} s",
         secs(s["full_delivery_s"])),
        ("compliance (SPEC §3.5 tube)", "100 %", f"{s['compliance_pct']:.1f} %"),
        ("max shortfall", "", f"{s['max_shortfall_pct']:.1f} % of Pc"),
        ("energy shortfall", "", f"{s['energy_shortfall_kwh']:.4f} kWh"),
    ]
    w0 = max(len(r[0]) for r in rows)
    lines = [f"\nSummary: {s['service']} {s['contract_kw']:g} kW, {s['n_vehicles']} vehicles, "
             f"event {s['event']!r} (baseline {s['baseline_kw']:.1f} kW)"]
    lines += [f"  {a:<{w0}}  {b:>14}  {c:>14}" for a, b, c in rows]
    return "\n".join(lines)


def write_plot(rec: Recorder, opts: DemoOptions, full_delivery_s: float, path: Path) -> None:
    """Frequency, requested and delivered power and the compliance tube over the run (PNG)."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    t = np.asarray(rec.t_s)
    req = np.asarray(rec.requested_w) / 1e3
    site = np.asarray(rec.site_w) / 1e3
    onset = np.flatnonzero(np.abs(req) > 0)
    base = float(np.median(site[: onset[0]])) if onset.size and onset[0] > 0 else site[0]
    fig, (ax_f, ax_p) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    ax_f.plot(t, rec.f_hz, color="tab:blue")
    ax_f.axhline(50.0, color="grey", lw=0.5)
    ax_f.set_ylabel("frequency (Hz)")
    ax_f.set_title(f"v2ghub demo: {opts.service} {opts.contract_kw:g} kW, event {opts.event}")
    lo_w, hi_w = tube(t, np.asarray(rec.requested_w), opts.contract_kw * 1e3, full_delivery_s)
    ax_p.fill_between(t, lo_w / 1e3, hi_w / 1e3, color="tab:orange", alpha=0.15, lw=0,
                      label=f"compliance tube (T_full {full_delivery_s:g} s, tol 3 % Pc)")
    ax_p.plot(t, req, label="requested response", color="tab:orange")
    ax_p.plot(t, site - base, label="delivered (site power - baseline)", color="tab:green")
    ax_p.axhline(0.0, color="grey", lw=0.5)
    ax_p.set_ylabel("power (kW, + import)")
    ax_p.set_xlabel("time (s)")
    ax_p.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
