"""Simulator configuration: sim TOML -> frozen dataclasses, every key checked.

Reads only the file it is given (the fleet file and trace are loaded by the caller from the paths
resolved here). config/sim.example.toml documents every key with unit and default. Unknown keys,
wrong types and out-of-range values raise SimConfigError with one line naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from controller import tomlcheck as tc
from sim_chargers.traces import BUILTIN_EVENTS


class SimConfigError(tc.CheckError):
    """The sim configuration is invalid; the message is one line naming the key."""


@dataclass(frozen=True, slots=True)
class CsmsConfig:
    url: str = "ws://127.0.0.1:9000"  # the station id is appended: ws://host:port/CP001
    password: str | None = None  # Basic auth, shared by all sim stations (16-40 chars)
    id_format: str = "CP{:03d}"  # numbered from 1 in fleet order
    discharge: bool = True  # stations follow negative limits (2.0.1) / setpoints (2.1)
    ca_file: Path | None = None  # CA bundle to verify a wss:// CSMS
    ocpp_version: Literal["2.0.1", "2.1"] = "2.0.1"  # subprotocol every station offers


@dataclass(frozen=True, slots=True)
class SiteMeterConfig:
    enabled: bool = True
    protocol: Literal["udp", "tcp"] = "udp"
    host: str = "127.0.0.1"
    port: int = 9100
    rate_hz: float = 10.0  # SPEC §3.3 allows up to 50 Hz


@dataclass(frozen=True, slots=True)
class FrequencyConfig:
    event: str | None = "flat"  # built-in event (used when no trace is given)
    trace: Path | None = None  # trace CSV (SPEC §3.2)
    start_delay_s: float = 0.0  # the trace/event starts this long after the sim starts
    hold_s: float | None = None  # built-in event hold time; None: the event's default


@dataclass(frozen=True, slots=True)
class SimSettings:
    fleet: Path
    seed: int = 0
    variation_frac: float = 0.0  # per-vehicle +- spread of dead times and ramps
    plant_step_s: float = 0.05  # 20 Hz plant, twice the 10 Hz control tick
    meter_values_period_s: float = 5.0
    baseline_kw: float = 0.0  # EVSE setpoint with no profile in force (SPEC §2.4)
    csms: CsmsConfig = field(default_factory=CsmsConfig)
    site_meter: SiteMeterConfig = field(default_factory=SiteMeterConfig)
    frequency: FrequencyConfig = field(default_factory=FrequencyConfig)


def _path(tbl: Mapping[str, Any], key: str, path: str, base: Path) -> Path | None:
    val = tc.string(tbl, key, path, None, non_empty=True)
    return None if val is None else base / val


def _csms(raw: Any, base: Path) -> CsmsConfig:
    p = "csms"
    tbl = tc.table(raw, p, {"url", "password", "id_format", "discharge", "ca_file",
                            "ocpp_version"})
    d = CsmsConfig()
    url = tc.string(tbl, "url", p, d.url, non_empty=True) or d.url
    if not url.startswith(("ws://", "wss://")):
        raise SimConfigError(f"csms.url: expected a ws:// or wss:// URL, got {url!r}")
    password = tc.string(tbl, "password", p, None, non_empty=True)
    if password is not None and not 16 <= len(password) <= 40:  # OCPP 2.0.1 A00.FR.205
        raise SimConfigError("csms.password: must be 16-40 characters")
    fmt = tc.string(tbl, "id_format", p, d.id_format, non_empty=True) or d.id_format
    try:
        sid = fmt.format(1)
    except (IndexError, KeyError, ValueError) as exc:
        raise SimConfigError(f"csms.id_format: {fmt!r} cannot format a number: {exc}") from None
    if not sid or len(sid) > 48 or "/" in sid:  # identifierString, used in the URL path
        raise SimConfigError(f"csms.id_format: {sid!r} is not a valid station identity")
    version = tc.choice(tbl, "ocpp_version", p, d.ocpp_version, ("2.0.1", "2.1"))
    return CsmsConfig(url, password, fmt, tc.boolean(tbl, "discharge", p, d.discharge),
                      _path(tbl, "ca_file", p, base), version)  # type: ignore[arg-type]


def _site_meter(raw: Any) -> SiteMeterConfig:
    p = "site_meter"
    tbl = tc.table(raw, p, {"enabled", "protocol", "host", "port", "rate_hz"})
    d = SiteMeterConfig()
    protocol = tc.choice(tbl, "protocol", p, d.protocol, ("udp", "tcp"))
    return SiteMeterConfig(
        enabled=tc.boolean(tbl, "enabled", p, d.enabled), protocol=protocol,  # type: ignore[arg-type]
        host=tc.string(tbl, "host", p, d.host, non_empty=True) or d.host,
        port=tc.integer(tbl, "port", p, d.port, lo=1, hi=65535),
        rate_hz=tc.num(tbl, "rate_hz", p, d.rate_hz, lo=0.1, hi=50.0))


def _frequency(raw: Any, base: Path) -> FrequencyConfig:
    p = "frequency"
    tbl = tc.table(raw, p, {"event", "trace", "start_delay_s", "hold_s"})
    if "event" in tbl and "trace" in tbl:
        raise SimConfigError("frequency: give either trace or event, not both")
    trace = _path(tbl, "trace", p, base)
    event = None if trace is not None else tc.string(tbl, "event", p, "flat", non_empty=True)
    if event is not None and event not in BUILTIN_EVENTS:
        raise SimConfigError(
            f"frequency.event: unknown event {event!r}; known: {', '.join(BUILTIN_EVENTS)}")
    hold = tc.num(tbl, "hold_s", p, 0.0, lo=0, hi=86_400) if "hold_s" in tbl else None
    return FrequencyConfig(event, trace, tc.num(tbl, "start_delay_s", p, 0.0, lo=0, hi=86_400),
                           hold)


def parse_sim_settings(doc: Mapping[str, Any], base_dir: Path) -> SimSettings:
    """Build SimSettings from a parsed TOML document; relative paths resolve from base_dir.

    Raises:
        SimConfigError: one line naming the offending key.
    """
    with tc.reraise_as(SimConfigError):
        return _parse(doc, base_dir)


def _parse(doc: Mapping[str, Any], base_dir: Path) -> SimSettings:
    tc.table(doc, "", {"sim", "csms", "site_meter", "frequency"})
    p = "sim"
    sim = tc.table(doc.get("sim", {}), p, {"seed", "fleet", "variation_frac", "plant_step_s",
                                         "meter_values_period_s", "baseline_kw"})
    fleet = _path(sim, "fleet", p, base_dir)
    if fleet is None:
        raise SimConfigError("sim.fleet: required (path of the fleet TOML)")
    return SimSettings(
        fleet=fleet,
        seed=tc.integer(sim, "seed", p, 0, lo=0, hi=2**63 - 1),
        variation_frac=tc.num(sim, "variation_frac", p, 0.0, lo=0.0, hi=0.9),
        plant_step_s=tc.num(sim, "plant_step_s", p, 0.05, lo=0.001, hi=1.0),
        meter_values_period_s=tc.num(sim, "meter_values_period_s", p, 5.0, lo=0.1, hi=3600),
        baseline_kw=tc.num(sim, "baseline_kw", p, 0.0, lo=-1000, hi=1000),
        csms=_csms(doc.get("csms", {}), base_dir),
        site_meter=_site_meter(doc.get("site_meter", {})),
        frequency=_frequency(doc.get("frequency", {}), base_dir),
    )


def load_sim_settings(path: str | Path) -> SimSettings:
    """Read and check a sim config file.

    Raises:
        SimConfigError: one line naming the file and the offending key.
    """
    p = Path(path)
    return tc.load_checked(p, lambda doc: parse_sim_settings(doc, p.parent), error=SimConfigError)
