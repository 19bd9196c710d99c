"""Daemon configuration: TOML file -> frozen dataclasses, every key checked.

Reads only the file it is given; no other I/O. Every limit has a default and a comment saying
where the number comes from; config/v2ghub.example.toml documents every key with unit and default.
Unknown keys, wrong types and out-of-range values raise ConfigError with one line that names the
key and says what is expected.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from controller import tomlcheck as tc
from controller.control.controller import DISPATCH_NAMES
from controller.control.services import (
    COMPOUND_NAMES,
    DEFAULT_DEFINITIONS,
    NOMINAL_HZ,
    SERVICE_NAMES,
    Curve,
    ServiceDefinition,
    ServiceError,
    with_over_delivery,
)
from controller.control.vehicles import CHEMISTRIES, UnknownVehicleError, lookup


class ConfigError(tc.CheckError):
    """The configuration is invalid; the message is one line naming the key."""


Discharge = Literal["negative_limit", "none"]


# A profile that outlives a silent daemon by minutes keeps a charger on a stale frequency
# response long after anyone controls it: a safety problem, not a tuning choice (SPEC §2.4).
MAX_PROFILE_VALIDITY_S = 300.0
# A frequency response on 5-s-old data is already wrong for DC, which must start within 0.5 s
# (SPEC §2.1); the default 0.5 s is the value to keep, 5 s the loosest that is still accepted.
MAX_METER_STALE_AFTER_S = 5.0
# The meter plausibility window is 45-55 Hz (SPEC §3.3), so |Δf| never exceeds 5 Hz.
MAX_ABS_DF_HZ = 5.0
# OCPP 2.1 caps a frequency-watt curve at 20 points (v2xFreqWattCurve, SPEC §2.4); every §2.1
# curve needs at most three.
MAX_CURVE_POINTS = 20
# FCR over-delivery above 50 Hz: seed eq. 7 allows +20 %, and no more.
MAX_OVER_DELIVERY_HIGH = 0.2


@dataclass(frozen=True, slots=True)
class StationConfig:
    id: str
    password: str | None = None
    discharge: Discharge = "none"
    vehicle: str | None = None
    max_power_kw: float = 11.0  # a typical three-phase 16 A AC EVSE (seed §IV: 11 kW)
    soc_min: float | None = None  # SoC window of this station's vehicles; None: [energy]'s
    soc_max: float | None = None


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert_file: str
    key_file: str
    ca_file: str | None = None  # client CA, required for security profile 3


@dataclass(frozen=True, slots=True)
class OcppConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    security_profile: int = 1
    stations: tuple[StationConfig, ...] = ()
    tls: TlsConfig | None = None
    # OCPP-J has no frame limit; 64 KiB is 10x the largest 2.0.1 message we accept (a full
    # TransactionEvent with meter values) and caps memory per connection after inflate.
    max_frame_bytes: int = 65_536
    # permessage-deflate costs ~31 KB RAM per connection and 10-25 % throughput (PITFALLS.md).
    compression: bool = False
    call_timeout_s: float = 10.0  # OCPP-J leaves it to the implementation; 10 s << 30 s default
    # Every frequency-response profile lapses by itself (SPEC §2.4): short enough that a charger
    # falls back to its baseline soon after the daemon goes silent, long enough to ride out
    # a couple of missed refreshes. At most MAX_PROFILE_VALIDITY_S.
    profile_validity_s: float = 30.0
    heartbeat_interval_s: int = 60
    ping_interval_s: float = 20.0  # websocket keepalive; a dead TCP peer is detected in ~2x this
    # JSON file remembering which stations this CSMS accepted, so they stay in service across a
    # daemon restart (stations boot only after their own reboot). None: not remembered.
    state_file: str | None = None


@dataclass(frozen=True, slots=True)
class MeterConfig:
    protocol: Literal["udp", "tcp"] = "udp"
    host: str = "127.0.0.1"
    port: int = 9100
    # DC must start within 0.5 s (SPEC §2.1): a sample older than that cannot drive a response.
    stale_after_s: float = 0.5
    f_min_hz: float = 45.0  # SPEC §3.3 plausibility window
    f_max_hz: float = 55.0
    # Source IP addresses the meter listener accepts (SPEC §3.3 input is otherwise
    # unauthenticated); empty = any sender.
    allowed_sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MqttConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str | None = None  # default v2ghub/<site id> (SPEC §3.4)
    username: str | None = None
    password: str | None = None
    fleet_period_s: float = 1.0
    evse_period_s: float = 10.0
    buffer_size: int = 10_000  # messages held while the broker is away; oldest dropped first


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    name: str
    contract_kw: float
    # The definitions with this table's overrides applied, one per product (DC -> DC-L, DC-H);
    # empty when the table overrides nothing (the SPEC §2.1 defaults apply).
    definitions: tuple[ServiceDefinition, ...] = ()


@dataclass(frozen=True, slots=True)
class ControlConfig:
    tick_period_s: float = 0.1  # issue 2: a tick every 100 ms by default
    min_step_w: float = 100.0  # only setpoints that moved more than this are sent
    # Refresh a profile before it lapses: a third of its validity leaves two retries.
    refresh_s: float = 10.0
    fallback_ramp_s: float = 2.0  # response decays to baseline over this on bad meter input
    # "naive": capacity-proportional split, vehicles idle at 0 W between events (no standing
    # energy cost). "compensated": dynamics-aware, keeps vehicles flowing at a standing
    # baseline that cancels at the site so change delays (0.02-0.78 s) apply instead of start
    # delays (0.5-3.8 s, seed Table 11); costs conversion losses and drifts SoC until energy
    # management lands (issue 4), hence not the default yet.
    dispatch: str = "naive"


@dataclass(frozen=True, slots=True)
class AgeingConfig:
    """`[ageing]`: battery ageing telemetry (seed eqs. 5-6, controller/ageing_tracker.py)."""

    # Prices the lost capacity; per kWh of nominal capacity, in the currency the cost is wanted
    # in. Default: BloombergNEF's Dec 2024 survey, BEV packs $97/kWh, rounded.
    battery_price_per_kwh: float = 100.0
    # Chemistry of an EVSE whose station names no `vehicle` (a configured vehicle brings its own
    # from the model library). NMC: 76 % of EV models (seed §II-D).
    chemistry: str = "NMC"


@dataclass(frozen=True, slots=True)
class EnergyConfig:
    """`[energy]`: SoC window the compensated dispatch keeps vehicles in (control/energy.py)."""

    soc_min: float = 0.2  # retailer default window 20-80 % (issue 4 item 4)
    soc_max: float = 0.8
    # energy_reserve_low alarm when a contract can be held for less than this x its sustain
    alarm_ratio: float = 1.2


@dataclass(frozen=True, slots=True)
class Settings:
    site_id: str
    ocpp: OcppConfig
    meter: MeterConfig = field(default_factory=MeterConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    services: tuple[ServiceConfig, ...] = ()
    control: ControlConfig = field(default_factory=ControlConfig)
    ageing: AgeingConfig = field(default_factory=AgeingConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)

    @property
    def mqtt_prefix(self) -> str:
        return self.mqtt.prefix or f"v2ghub/{self.site_id}"

    def contract_overrides(self) -> dict[str, ServiceDefinition]:
        """Configured definitions by product name, for `services.contracts_from(overrides=)`."""
        return {d.name: d for s in self.services for d in s.definitions}


_STATION_KEYS = {"id", "password", "discharge", "vehicle", "max_power_kw", "soc_min", "soc_max"}


def _station(raw: Any, path: str, profile: int) -> StationConfig:
    tbl = tc.table(raw, path)
    tc.reject_unknown(tbl, _STATION_KEYS, path)
    sid = tc.req_string(tbl, "id", path)
    # OCPP 2.0.1 identity: identifierString up to 48 chars, used in the URL path (A00.FR.005).
    if len(sid) > 48 or not all(ch.isalnum() or ch in "-_.:*+|@" for ch in sid):
        raise ConfigError(f"{path}.id: {sid!r} is not a valid OCPP identity (<=48 chars, no '/')")
    password = tc.string(tbl, "password", path, None)
    # OCPP 2.0.1 Part 2 A00.FR.205: BasicAuthPassword is 16..40 characters.
    if profile in (1, 2) and (password is None or not 16 <= len(password) <= 40):
        raise ConfigError(
            f"{path}.password: security profile {profile} needs a 16-40 character password"
        )
    vehicle = tc.string(tbl, "vehicle", path, None)
    if vehicle is not None:
        try:
            lookup(vehicle)
        except UnknownVehicleError as exc:
            raise ConfigError(f"{path}.vehicle: {exc}") from None
    return StationConfig(
        id=sid,
        password=password,
        discharge=tc.choice(tbl, "discharge", path, "none", ("negative_limit", "none")),  # type: ignore[arg-type]
        vehicle=vehicle,
        max_power_kw=tc.num(tbl, "max_power_kw", path, 11.0, positive=True, hi=1000.0),
        **_soc_window(tbl, path, None),
    )


def _soc_window(tbl: Mapping[str, Any], path: str,
                default: tuple[float, float] | None) -> dict[str, Any]:
    """`soc_min`/`soc_max` (0..1, min < max); absent keys stay None without a default."""
    def get(key: str, i: int) -> float | None:
        if default is None and key not in tbl:
            return None
        return tc.num(tbl, key, path, default[i] if default else None, lo=0, hi=1)

    lo, hi = get("soc_min", 0), get("soc_max", 1)
    if lo is not None and hi is not None and not lo < hi:
        raise ConfigError(f"{path}.soc_min: must be below soc_max ({lo} >= {hi})")
    return {"soc_min": lo, "soc_max": hi}


_GROUP_KEYS = _STATION_KEYS - {"id"} | {"id_format", "count", "first"}


def _station_group(raw: Any, path: str, profile: int) -> list[StationConfig]:
    """`[[ocpp.station_group]]`: many identical stations, ids from a format string."""
    tbl = tc.table(raw, path)
    tc.reject_unknown(tbl, _GROUP_KEYS, path)
    fmt = tc.string(tbl, "id_format", path, "CP{:03d}") or "CP{:03d}"
    count = tc.integer(tbl, "count", path, 1, lo=1, hi=100_000)
    first = tc.integer(tbl, "first", path, 1, lo=0, hi=10_000_000)
    common = {k: v for k, v in tbl.items() if k in _STATION_KEYS}
    out = []
    for n in range(first, first + count):
        try:
            sid = fmt.format(n)
        except (IndexError, KeyError, ValueError) as exc:
            raise ConfigError(f"{path}.id_format: {fmt!r} cannot format {n}: {exc}") from None
        out.append(_station({**common, "id": sid}, f"{path}[{sid}]", profile))
    return out


def _tls(raw: Any, path: str) -> TlsConfig:
    tbl = tc.table(raw, path)
    tc.reject_unknown(tbl, {"cert_file", "key_file", "ca_file"}, path)
    return TlsConfig(tc.req_string(tbl, "cert_file", path), tc.req_string(tbl, "key_file", path),
                     tc.string(tbl, "ca_file", path, None))


def _ocpp(raw: Any) -> OcppConfig:
    path = "ocpp"
    tbl = tc.table(raw, path)
    allowed = {"host", "port", "security_profile", "station", "station_group", "tls",
               "max_frame_bytes", "compression", "call_timeout_s", "profile_validity_s",
               "heartbeat_interval_s", "ping_interval_s", "state_file"}
    tc.reject_unknown(tbl, allowed, path)
    d = OcppConfig()
    profile = tc.integer(tbl, "security_profile", path, d.security_profile, lo=0, hi=3)
    host = tc.string(tbl, "host", path, d.host) or d.host
    if profile == 0 and not _is_loopback(host):
        raise ConfigError(
            "ocpp.security_profile: 0 (no authentication) is only allowed on a loopback host; "
            f"got host {host!r}. Use profile 1-3 or bind to 127.0.0.1"
        )
    stations_raw = tbl.get("station", [])
    groups_raw = tbl.get("station_group", [])
    if not isinstance(stations_raw, list) or not isinstance(groups_raw, list):
        raise ConfigError("ocpp.station / ocpp.station_group: expected arrays of tables [[...]]")
    stations = [_station(s, f"ocpp.station[{i}]", profile) for i, s in enumerate(stations_raw)]
    for i, g in enumerate(groups_raw):
        stations.extend(_station_group(g, f"ocpp.station_group[{i}]", profile))
    seen: set[str] = set()
    for st in stations:
        if st.id in seen:
            raise ConfigError(f"ocpp.station: duplicate station id {st.id!r}")
        seen.add(st.id)
    if not stations:
        raise ConfigError("ocpp.station: at least one [[ocpp.station]] is required")
    tls = _tls(tbl["tls"], "ocpp.tls") if "tls" in tbl else None
    if profile >= 2 and tls is None:
        raise ConfigError(
            f"ocpp.tls: security profile {profile} needs [ocpp.tls] cert_file and key_file")
    if profile == 3 and (tls is None or tls.ca_file is None):
        raise ConfigError("ocpp.tls.ca_file: security profile 3 (mTLS) needs the client CA file")
    state_file = tc.string(tbl, "state_file", path, None)
    if state_file is not None and (not state_file.strip() or state_file.endswith("/")):
        raise ConfigError(f"ocpp.state_file: expected a file path, got {state_file!r}")
    return OcppConfig(
        host=host,
        port=tc.integer(tbl, "port", path, d.port, lo=0, hi=65535),
        security_profile=profile,
        stations=tuple(stations),
        tls=tls,
        max_frame_bytes=tc.integer(tbl, "max_frame_bytes", path, d.max_frame_bytes,
                             lo=4096, hi=16 * 1024 * 1024),
        compression=tc.boolean(tbl, "compression", path, d.compression),
        call_timeout_s=tc.num(tbl, "call_timeout_s", path, d.call_timeout_s, lo=0.1, hi=300),
        profile_validity_s=tc.num(tbl, "profile_validity_s", path, d.profile_validity_s,
                                  lo=2, hi=MAX_PROFILE_VALIDITY_S),
        heartbeat_interval_s=tc.integer(tbl, "heartbeat_interval_s", path, d.heartbeat_interval_s,
                                  lo=1, hi=86_400),
        ping_interval_s=tc.num(tbl, "ping_interval_s", path, d.ping_interval_s, lo=1, hi=3600),
        state_file=state_file,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _meter(raw: Any) -> MeterConfig:
    path = "meter"
    tbl = tc.table(raw, path)
    tc.reject_unknown(tbl, {"protocol", "host", "port", "stale_after_s", "f_min_hz", "f_max_hz",
                            "allowed_sources"}, path)
    d = MeterConfig()
    return MeterConfig(
        protocol=tc.choice(tbl, "protocol", path, d.protocol, ("udp", "tcp")),  # type: ignore[arg-type]
        host=tc.string(tbl, "host", path, d.host) or d.host,
        port=tc.integer(tbl, "port", path, d.port, lo=0, hi=65535),
        stale_after_s=tc.num(tbl, "stale_after_s", path, d.stale_after_s, lo=0.02,
                             hi=MAX_METER_STALE_AFTER_S),
        f_min_hz=tc.num(tbl, "f_min_hz", path, d.f_min_hz, lo=40, hi=50),
        f_max_hz=tc.num(tbl, "f_max_hz", path, d.f_max_hz, lo=50, hi=70),
        allowed_sources=_ip_list(tbl, "allowed_sources", path),
    )


def _ip_list(tbl: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    """IP addresses in canonical text form (what the socket layer reports as the peer)."""
    out: list[str] = []
    for i, raw in enumerate(tc.array(tbl, key, path)):
        try:
            out.append(str(ipaddress.ip_address(raw if isinstance(raw, str) else "")))
        except ValueError:
            raise ConfigError(f"{path}.{key}[{i}]: expected an IP address, got {raw!r}") from None
    return tuple(out)


def _mqtt(raw: Any) -> MqttConfig:
    path = "mqtt"
    tbl = tc.table(raw, path)
    tc.reject_unknown(tbl, {"enabled", "host", "port", "prefix", "username", "password",
                          "fleet_period_s", "evse_period_s", "buffer_size"}, path)
    d = MqttConfig()
    prefix = tc.string(tbl, "prefix", path, None)
    if prefix is not None and (not prefix or any(c in prefix for c in "#+")):
        raise ConfigError(f"mqtt.prefix: {prefix!r} must be non-empty without '#' or '+'")
    return MqttConfig(
        enabled=tc.boolean(tbl, "enabled", path, d.enabled),
        host=tc.string(tbl, "host", path, d.host) or d.host,
        port=tc.integer(tbl, "port", path, d.port, lo=1, hi=65535),
        prefix=prefix,
        username=tc.string(tbl, "username", path, None),
        password=tc.string(tbl, "password", path, None),
        fleet_period_s=tc.num(tbl, "fleet_period_s", path, d.fleet_period_s, lo=0.1, hi=3600),
        evse_period_s=tc.num(tbl, "evse_period_s", path, d.evse_period_s, lo=0.1, hi=3600),
        buffer_size=tc.integer(tbl, "buffer_size", path, d.buffer_size, lo=10, hi=10_000_000),
    )


_CURVE_KEYS = ("points", "deadband_hz", "over_delivery_high")  # curve services only
_TIMING_KEYS = ("start_s", "full_s", "sustain_s")
_OVERRIDE_KEYS = {*_CURVE_KEYS, *_TIMING_KEYS, "trigger_hz"}
_TIMING_MAX_S = 24 * 3600.0  # a day: far above any §2.1 sustain time (60 min)


def _service(raw: Any, path: str) -> ServiceConfig:
    tbl = tc.table(raw, path, {"name", "contract_kw", *_OVERRIDE_KEYS})
    name = tc.req_string(tbl, "name", path)
    if name not in DEFAULT_DEFINITIONS and name not in COMPOUND_NAMES:
        known = ", ".join((*SERVICE_NAMES, *COMPOUND_NAMES))
        raise ConfigError(f"{path}.name: unknown service {name!r}; known: {known}")
    contract_kw = tc.num(tbl, "contract_kw", path, 0.0, positive=True, hi=1e6)
    parts = COMPOUND_NAMES.get(name, (name,))
    if "over_delivery_high" in tbl and all(
            DEFAULT_DEFINITIONS[p].direction == "low" for p in parts):
        raise ConfigError(f"{path}.over_delivery_high: {name} answers only low frequency; "
                          "over-delivery applies above 50 Hz")
    if not _OVERRIDE_KEYS & tbl.keys():
        return ServiceConfig(name, contract_kw)
    # A compound name (DC = DC-L + DC-H) applies its overrides to both products.
    try:
        defs = tuple(_definition(DEFAULT_DEFINITIONS[p], tbl, path) for p in parts)
    except ServiceError as exc:  # the checks here come first; this keeps any other one-line
        raise ConfigError(f"{path}: {exc}") from None
    return ServiceConfig(name, contract_kw, defs)


def _definition(base: ServiceDefinition, tbl: Mapping[str, Any], path: str) -> ServiceDefinition:
    """`base` with the table's overrides (SPEC §2.1: curve points are configuration)."""
    unused = ("trigger_hz",) if not base.is_static else _CURVE_KEYS
    for key in unused:
        if key in tbl:
            kind = "a static trigger" if base.is_static else "a curve, not a trigger"
            raise ConfigError(f"{path}.{key}: not used by {base.name} ({kind})")
    defn = base
    if not base.is_static and ("points" in tbl or "deadband_hz" in tbl):
        defn = replace(defn, **_curve(base, tbl, path))
    if "over_delivery_high" in tbl:
        defn = with_over_delivery(defn, tc.num(tbl, "over_delivery_high", path, None, lo=0.0,
                                               hi=MAX_OVER_DELIVERY_HIGH))
    if base.trigger_hz is not None and "trigger_hz" in tbl:
        defn = replace(defn, trigger_hz=_trigger_hz(base, tbl, path))
    timings: dict[str, Any] = {k: tc.num(tbl, k, path, None, positive=True, hi=_TIMING_MAX_S)
                               for k in _TIMING_KEYS if k in tbl}
    defn = replace(defn, **timings)
    if defn.start_s is not None and defn.start_s > defn.full_s:
        key = "start_s" if "start_s" in tbl else "full_s"
        raise ConfigError(f"{path}.{key}: start_s ({defn.start_s} s) must not exceed "
                          f"full_s ({defn.full_s} s)")
    return defn


def _curve(base: ServiceDefinition, tbl: Mapping[str, Any], path: str) -> dict[str, Any]:
    """deadband_hz and curve: 0 at the deadband, then linear through the configured points."""
    points = _points(tbl, path) if "points" in tbl else _points_after_deadband(base)
    deadband = tc.num(tbl, "deadband_hz", path, base.deadband_hz, lo=0.0, hi=MAX_ABS_DF_HZ)
    if not deadband < points[0][0]:
        key = "deadband_hz" if "deadband_hz" in tbl else "points"
        raise ConfigError(f"{path}.{key}: deadband_hz ({deadband} Hz) must be below the first "
                          f"curve point ({points[0][0]} Hz)")
    return {"deadband_hz": deadband, "curve": Curve(((deadband, 0.0), *points))}


def _points_after_deadband(defn: ServiceDefinition) -> tuple[tuple[float, float], ...]:
    """A default curve's points without its leading zero at the deadband (the config form)."""
    pts = defn.curve.points
    return pts[1:] if len(pts) > 1 and pts[0] == (defn.deadband_hz, 0.0) else pts


def _points(tbl: Mapping[str, Any], path: str) -> tuple[tuple[float, float], ...]:
    """`points = [[abs_df_hz, share], ...]`: Hz strictly increasing within 0..5, share 0..1."""
    raw = tbl["points"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CURVE_POINTS:
        raise ConfigError(f"{path}.points: expected an array of 1..{MAX_CURVE_POINTS} "
                          f"[abs_df_hz, share] pairs, got {raw!r}")
    out: list[tuple[float, float]] = []
    for i, pt in enumerate(raw):
        key = f"{path}.points[{i}]"
        if not (isinstance(pt, list) and len(pt) == 2 and all(
                not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
                for v in pt)):
            raise ConfigError(f"{key}: expected [abs_df_hz, share], two finite numbers; got {pt!r}")
        hz, share = float(pt[0]), float(pt[1])
        if not 0.0 <= hz <= MAX_ABS_DF_HZ:
            raise ConfigError(f"{key}: abs_df_hz must be 0..{MAX_ABS_DF_HZ} Hz, got {hz}")
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"{key}: share must be 0..1 (of contract_kw), got {share}")
        if out and not hz > out[-1][0]:
            raise ConfigError(f"{key}: abs_df_hz must increase, got {hz} after {out[-1][0]}")
        out.append((hz, share))
    return tuple(out)


def _trigger_hz(base: ServiceDefinition, tbl: Mapping[str, Any], path: str) -> float:
    """A low product triggers below 50 Hz (45..50), a high one above (50..55)."""
    low = base.direction == "low"
    trig = tc.num(tbl, "trigger_hz", path, None, lo=NOMINAL_HZ - MAX_ABS_DF_HZ if low else None,
                  hi=None if low else NOMINAL_HZ + MAX_ABS_DF_HZ)
    if trig == NOMINAL_HZ or (trig > NOMINAL_HZ) == low:
        side = "below" if low else "above"
        raise ConfigError(f"{path}.trigger_hz: {base.name} must trigger {side} "
                          f"{NOMINAL_HZ} Hz, got {trig}")
    return trig


def _control(raw: Any) -> ControlConfig:
    path = "control"
    tbl = tc.table(raw, path)
    tc.reject_unknown(tbl, {"tick_period_s", "min_step_w", "refresh_s", "fallback_ramp_s",
                            "dispatch"}, path)
    d = ControlConfig()
    return ControlConfig(
        tick_period_s=tc.num(tbl, "tick_period_s", path, d.tick_period_s, lo=0.01, hi=10),
        min_step_w=tc.num(tbl, "min_step_w", path, d.min_step_w, lo=0, hi=1e6),
        refresh_s=tc.num(tbl, "refresh_s", path, d.refresh_s, lo=0.5, hi=3600),
        fallback_ramp_s=tc.num(tbl, "fallback_ramp_s", path, d.fallback_ramp_s, lo=0, hi=600),
        dispatch=tc.choice(tbl, "dispatch", path, d.dispatch, DISPATCH_NAMES),
    )


MAX_BATTERY_PRICE_PER_KWH = 100_000.0  # 100x any pack price on record: a typo, not a price


def _ageing(raw: Any) -> AgeingConfig:
    path = "ageing"
    tbl = tc.table(raw, path, {"battery_price_per_kwh", "chemistry"})
    d = AgeingConfig()
    return AgeingConfig(
        battery_price_per_kwh=tc.num(tbl, "battery_price_per_kwh", path,
                                     d.battery_price_per_kwh, lo=0,
                                     hi=MAX_BATTERY_PRICE_PER_KWH),
        chemistry=tc.choice(tbl, "chemistry", path, d.chemistry, CHEMISTRIES),
    )


def _energy(raw: Any) -> EnergyConfig:
    path = "energy"
    tbl = tc.table(raw, path, {"soc_min", "soc_max", "alarm_ratio"})
    d = EnergyConfig()
    return EnergyConfig(**_soc_window(tbl, path, (d.soc_min, d.soc_max)),
                        alarm_ratio=tc.num(tbl, "alarm_ratio", path, d.alarm_ratio, lo=1, hi=10))


def parse_settings(doc: Mapping[str, Any]) -> Settings:
    """Build Settings from a parsed TOML document (see load_settings).

    Raises:
        ConfigError: one line naming the offending key.
    """
    with tc.reraise_as(ConfigError):
        return _parse(doc)


def _parse(doc: Mapping[str, Any]) -> Settings:
    tc.reject_unknown(doc, {"site", "ocpp", "meter", "mqtt", "service", "control", "ageing",
                            "energy"}, "")
    site = tc.table(doc.get("site", {}), "site", {"id"})
    site_id = tc.req_string(site, "id", "site")
    if any(c in site_id for c in "/#+") or len(site_id) > 64:
        raise ConfigError(f"site.id: {site_id!r} must be <=64 chars without '/', '#' or '+'")
    if "ocpp" not in doc:
        raise ConfigError("ocpp: required table [ocpp] is missing")
    services_raw = doc.get("service", [])
    if not isinstance(services_raw, list):
        raise ConfigError("service: expected an array of tables [[service]]")
    services = tuple(_service(s, f"service[{i}]") for i, s in enumerate(services_raw))
    _check_one_definition_per_product(services)
    settings = Settings(
        site_id=site_id,
        ocpp=_ocpp(doc["ocpp"]),
        meter=_meter(doc.get("meter", {})),
        mqtt=_mqtt(doc.get("mqtt", {})),
        services=services,
        control=_control(doc.get("control", {})),
        ageing=_ageing(doc.get("ageing", {})),
        energy=_energy(doc.get("energy", {})),
    )
    if settings.control.refresh_s >= settings.ocpp.profile_validity_s:
        raise ConfigError(
            "control.refresh_s: must be shorter than ocpp.profile_validity_s "
            f"({settings.control.refresh_s} >= {settings.ocpp.profile_validity_s}), "
            "or profiles lapse between refreshes"
        )
    return settings


def _check_one_definition_per_product(services: tuple[ServiceConfig, ...]) -> None:
    """A name twice is an error; so is one product (DC-L via "DC" and "DC-L") with two curves."""
    names = [s.name for s in services]
    for n in set(names):
        if names.count(n) > 1:
            raise ConfigError(f"service: {n!r} is contracted twice; add the volumes instead")
    seen: dict[str, tuple[int, ServiceDefinition]] = {}
    for i, svc in enumerate(services):
        parts = COMPOUND_NAMES.get(svc.name, (svc.name,))
        defs = svc.definitions or tuple(DEFAULT_DEFINITIONS[p] for p in parts)
        for defn in defs:
            j, other = seen.setdefault(defn.name, (i, defn))
            if other != defn:
                raise ConfigError(
                    f"service[{i}]: {defn.name} is also contracted by service[{j}] with other "
                    "curve or timing settings; give both the same settings")


def load_settings(path: str | Path) -> Settings:
    """Read and check a daemon config file.

    Raises:
        ConfigError: one line naming the file and the offending key.
    """
    return tc.load_checked(path, parse_settings, error=ConfigError)
