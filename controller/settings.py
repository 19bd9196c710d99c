"""Daemon configuration: TOML file -> frozen dataclasses, every key checked.

Reads only the file it is given; no other I/O. Every limit has a default and a comment saying
where the number comes from; config/v2ghub.example.toml documents every key with unit and default.
Unknown keys, wrong types and out-of-range values raise ConfigError with one line that names the
key and says what is expected.
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from controller.control.services import COMPOUND_NAMES, DEFAULT_DEFINITIONS, SERVICE_NAMES
from controller.control.vehicles import UnknownVehicleError, lookup


class ConfigError(ValueError):
    """The configuration is invalid; the message is one line naming the key."""


Discharge = Literal["negative_limit", "none"]


@dataclass(frozen=True, slots=True)
class StationConfig:
    id: str
    password: str | None = None
    discharge: Discharge = "none"
    vehicle: str | None = None
    max_power_kw: float = 11.0  # a typical three-phase 16 A AC EVSE (seed §IV: 11 kW)


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
    # a couple of missed refreshes.
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


@dataclass(frozen=True, slots=True)
class ControlConfig:
    tick_period_s: float = 0.1  # issue 2: a tick every 100 ms by default
    min_step_w: float = 100.0  # only setpoints that moved more than this are sent
    # Refresh a profile before it lapses: a third of its validity leaves two retries.
    refresh_s: float = 10.0
    fallback_ramp_s: float = 2.0  # response decays to baseline over this on bad meter input


@dataclass(frozen=True, slots=True)
class Settings:
    site_id: str
    ocpp: OcppConfig
    meter: MeterConfig = field(default_factory=MeterConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    services: tuple[ServiceConfig, ...] = ()
    control: ControlConfig = field(default_factory=ControlConfig)

    @property
    def mqtt_prefix(self) -> str:
        return self.mqtt.prefix or f"v2ghub/{self.site_id}"


# ---------------------------------------------------------------------------------------------
# Parsing helpers: each takes the dotted key path so errors can name it.


def _table(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a table, got {type(raw).__name__}")
    return dict(raw)


def _reject_unknown(tbl: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in tbl:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise ConfigError(
                f"unknown key {where!r}; allowed here: {', '.join(sorted(allowed))}"
            )


def _num(tbl: Mapping[str, Any], key: str, path: str, default: float, *,
         lo: float | None = None, hi: float | None = None, positive: bool = False) -> float:
    val = tbl.get(key, default)
    if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
        raise ConfigError(f"{path}.{key}: expected a finite number, got {val!r}")
    if positive and val <= 0:
        raise ConfigError(f"{path}.{key}: must be > 0, got {val!r}")
    if lo is not None and val < lo:
        raise ConfigError(f"{path}.{key}: must be >= {lo}, got {val!r}")
    if hi is not None and val > hi:
        raise ConfigError(f"{path}.{key}: must be <= {hi}, got {val!r}")
    return float(val)


def _int(tbl: Mapping[str, Any], key: str, path: str, default: int, *, lo: int, hi: int) -> int:
    val = tbl.get(key, default)
    if isinstance(val, bool) or not isinstance(val, int) or not lo <= val <= hi:
        raise ConfigError(f"{path}.{key}: expected an integer {lo}..{hi}, got {val!r}")
    return val


def _str(tbl: Mapping[str, Any], key: str, path: str, default: str | None) -> str | None:
    val = tbl.get(key, default)
    if val is not None and not isinstance(val, str):
        raise ConfigError(f"{path}.{key}: expected a string, got {val!r}")
    return val


def _req_str(tbl: Mapping[str, Any], key: str, path: str) -> str:
    val = _str(tbl, key, path, None)
    if not val:
        raise ConfigError(f"{path}.{key}: required (a non-empty string)")
    return val


def _bool(tbl: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    val = tbl.get(key, default)
    if not isinstance(val, bool):
        raise ConfigError(f"{path}.{key}: expected true or false, got {val!r}")
    return val


def _choice(tbl: Mapping[str, Any], key: str, path: str, default: str,
            choices: tuple[str, ...]) -> str:
    val = tbl.get(key, default)
    if val not in choices:
        raise ConfigError(f"{path}.{key}: expected one of {', '.join(choices)}; got {val!r}")
    return str(val)


# ---------------------------------------------------------------------------------------------


_STATION_KEYS = {"id", "password", "discharge", "vehicle", "max_power_kw"}


def _station(raw: Any, path: str, profile: int) -> StationConfig:
    tbl = _table(raw, path)
    _reject_unknown(tbl, _STATION_KEYS, path)
    sid = _req_str(tbl, "id", path)
    # OCPP 2.0.1 identity: identifierString up to 48 chars, used in the URL path (A00.FR.005).
    if len(sid) > 48 or not all(ch.isalnum() or ch in "-_.:*+|@" for ch in sid):
        raise ConfigError(f"{path}.id: {sid!r} is not a valid OCPP identity (<=48 chars, no '/')")
    password = _str(tbl, "password", path, None)
    # OCPP 2.0.1 Part 2 A00.FR.205: BasicAuthPassword is 16..40 characters.
    if profile in (1, 2) and (password is None or not 16 <= len(password) <= 40):
        raise ConfigError(
            f"{path}.password: security profile {profile} needs a 16-40 character password"
        )
    vehicle = _str(tbl, "vehicle", path, None)
    if vehicle is not None:
        try:
            lookup(vehicle)
        except UnknownVehicleError as exc:
            raise ConfigError(f"{path}.vehicle: {exc}") from None
    return StationConfig(
        id=sid,
        password=password,
        discharge=_choice(tbl, "discharge", path, "none", ("negative_limit", "none")),  # type: ignore[arg-type]
        vehicle=vehicle,
        max_power_kw=_num(tbl, "max_power_kw", path, 11.0, positive=True, hi=1000.0),
    )


_GROUP_KEYS = _STATION_KEYS - {"id"} | {"id_format", "count", "first"}


def _station_group(raw: Any, path: str, profile: int) -> list[StationConfig]:
    """`[[ocpp.station_group]]`: many identical stations, ids from a format string."""
    tbl = _table(raw, path)
    _reject_unknown(tbl, _GROUP_KEYS, path)
    fmt = _str(tbl, "id_format", path, "CP{:03d}") or "CP{:03d}"
    count = _int(tbl, "count", path, 1, lo=1, hi=100_000)
    first = _int(tbl, "first", path, 1, lo=0, hi=10_000_000)
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
    tbl = _table(raw, path)
    _reject_unknown(tbl, {"cert_file", "key_file", "ca_file"}, path)
    return TlsConfig(_req_str(tbl, "cert_file", path), _req_str(tbl, "key_file", path),
                     _str(tbl, "ca_file", path, None))


def _ocpp(raw: Any) -> OcppConfig:
    path = "ocpp"
    tbl = _table(raw, path)
    allowed = {"host", "port", "security_profile", "station", "station_group", "tls",
               "max_frame_bytes", "compression", "call_timeout_s", "profile_validity_s",
               "heartbeat_interval_s", "ping_interval_s", "state_file"}
    _reject_unknown(tbl, allowed, path)
    d = OcppConfig()
    profile = _int(tbl, "security_profile", path, d.security_profile, lo=0, hi=3)
    host = _str(tbl, "host", path, d.host) or d.host
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
    state_file = _str(tbl, "state_file", path, None)
    if state_file is not None and (not state_file.strip() or state_file.endswith("/")):
        raise ConfigError(f"ocpp.state_file: expected a file path, got {state_file!r}")
    return OcppConfig(
        host=host,
        port=_int(tbl, "port", path, d.port, lo=0, hi=65535),
        security_profile=profile,
        stations=tuple(stations),
        tls=tls,
        max_frame_bytes=_int(tbl, "max_frame_bytes", path, d.max_frame_bytes,
                             lo=4096, hi=16 * 1024 * 1024),
        compression=_bool(tbl, "compression", path, d.compression),
        call_timeout_s=_num(tbl, "call_timeout_s", path, d.call_timeout_s, lo=0.1, hi=300),
        profile_validity_s=_num(tbl, "profile_validity_s", path, d.profile_validity_s,
                                lo=2, hi=3600),
        heartbeat_interval_s=_int(tbl, "heartbeat_interval_s", path, d.heartbeat_interval_s,
                                  lo=1, hi=86_400),
        ping_interval_s=_num(tbl, "ping_interval_s", path, d.ping_interval_s, lo=1, hi=3600),
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
    tbl = _table(raw, path)
    _reject_unknown(tbl, {"protocol", "host", "port", "stale_after_s", "f_min_hz", "f_max_hz"},
                    path)
    d = MeterConfig()
    return MeterConfig(
        protocol=_choice(tbl, "protocol", path, d.protocol, ("udp", "tcp")),  # type: ignore[arg-type]
        host=_str(tbl, "host", path, d.host) or d.host,
        port=_int(tbl, "port", path, d.port, lo=0, hi=65535),
        stale_after_s=_num(tbl, "stale_after_s", path, d.stale_after_s, lo=0.02, hi=60),
        f_min_hz=_num(tbl, "f_min_hz", path, d.f_min_hz, lo=40, hi=50),
        f_max_hz=_num(tbl, "f_max_hz", path, d.f_max_hz, lo=50, hi=70),
    )


def _mqtt(raw: Any) -> MqttConfig:
    path = "mqtt"
    tbl = _table(raw, path)
    _reject_unknown(tbl, {"enabled", "host", "port", "prefix", "username", "password",
                          "fleet_period_s", "evse_period_s", "buffer_size"}, path)
    d = MqttConfig()
    prefix = _str(tbl, "prefix", path, None)
    if prefix is not None and (not prefix or any(c in prefix for c in "#+")):
        raise ConfigError(f"mqtt.prefix: {prefix!r} must be non-empty without '#' or '+'")
    return MqttConfig(
        enabled=_bool(tbl, "enabled", path, d.enabled),
        host=_str(tbl, "host", path, d.host) or d.host,
        port=_int(tbl, "port", path, d.port, lo=1, hi=65535),
        prefix=prefix,
        username=_str(tbl, "username", path, None),
        password=_str(tbl, "password", path, None),
        fleet_period_s=_num(tbl, "fleet_period_s", path, d.fleet_period_s, lo=0.1, hi=3600),
        evse_period_s=_num(tbl, "evse_period_s", path, d.evse_period_s, lo=0.1, hi=3600),
        buffer_size=_int(tbl, "buffer_size", path, d.buffer_size, lo=10, hi=10_000_000),
    )


def _service(raw: Any, path: str) -> ServiceConfig:
    tbl = _table(raw, path)
    _reject_unknown(tbl, {"name", "contract_kw"}, path)
    name = _req_str(tbl, "name", path)
    if name not in DEFAULT_DEFINITIONS and name not in COMPOUND_NAMES:
        known = ", ".join((*SERVICE_NAMES, *COMPOUND_NAMES))
        raise ConfigError(f"{path}.name: unknown service {name!r}; known: {known}")
    return ServiceConfig(name, _num(tbl, "contract_kw", path, 0.0, positive=True, hi=1e6))


def _control(raw: Any) -> ControlConfig:
    path = "control"
    tbl = _table(raw, path)
    _reject_unknown(tbl, {"tick_period_s", "min_step_w", "refresh_s", "fallback_ramp_s"}, path)
    d = ControlConfig()
    return ControlConfig(
        tick_period_s=_num(tbl, "tick_period_s", path, d.tick_period_s, lo=0.01, hi=10),
        min_step_w=_num(tbl, "min_step_w", path, d.min_step_w, lo=0, hi=1e6),
        refresh_s=_num(tbl, "refresh_s", path, d.refresh_s, lo=0.5, hi=3600),
        fallback_ramp_s=_num(tbl, "fallback_ramp_s", path, d.fallback_ramp_s, lo=0, hi=600),
    )


def parse_settings(doc: Mapping[str, Any]) -> Settings:
    """Build Settings from a parsed TOML document (see load_settings)."""
    _reject_unknown(doc, {"site", "ocpp", "meter", "mqtt", "service", "control"}, "")
    site = _table(doc.get("site", {}), "site")
    _reject_unknown(site, {"id"}, "site")
    site_id = _req_str(site, "id", "site")
    if any(c in site_id for c in "/#+") or len(site_id) > 64:
        raise ConfigError(f"site.id: {site_id!r} must be <=64 chars without '/', '#' or '+'")
    if "ocpp" not in doc:
        raise ConfigError("ocpp: required table [ocpp] is missing")
    services_raw = doc.get("service", [])
    if not isinstance(services_raw, list):
        raise ConfigError("service: expected an array of tables [[service]]")
    services = tuple(_service(s, f"service[{i}]") for i, s in enumerate(services_raw))
    names = [s.name for s in services]
    for n in set(names):
        if names.count(n) > 1:
            raise ConfigError(f"service: {n!r} is contracted twice; add the volumes instead")
    settings = Settings(
        site_id=site_id,
        ocpp=_ocpp(doc["ocpp"]),
        meter=_meter(doc.get("meter", {})),
        mqtt=_mqtt(doc.get("mqtt", {})),
        services=services,
        control=_control(doc.get("control", {})),
    )
    if settings.control.refresh_s >= settings.ocpp.profile_validity_s:
        raise ConfigError(
            "control.refresh_s: must be shorter than ocpp.profile_validity_s "
            f"({settings.control.refresh_s} >= {settings.ocpp.profile_validity_s}), "
            "or profiles lapse between refreshes"
        )
    return settings


def load_settings(path: str | Path) -> Settings:
    """Read and check a daemon config file.

    Raises:
        ConfigError: one line naming the file and the offending key.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    try:
        return parse_settings(doc)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
