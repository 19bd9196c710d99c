"""Daemon configuration: the per-table parsers for [ocpp], [meter], [mqtt], [control], [ageing]
and [energy].

Each `parse_<table>(raw)` checks one TOML table key by key and returns its frozen dataclass
(controller/settings_types.py); the safety caps it enforces are named here with where the number
comes from. No I/O and no cross-table rules here (controller/settings.py owns those and the
[[service]] tables are controller/settings_services.py's). Errors are the one-line ConfigError or
tomlcheck's CheckError, which `settings.parse_settings` turns into ConfigError.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from controller import tomlcheck as tc
from controller.control.controller import DISPATCH_NAMES
from controller.control.vehicles import CHEMISTRIES, UnknownVehicleError, lookup
from controller.settings_types import (
    AgeingConfig,
    ConfigError,
    ControlConfig,
    EnergyConfig,
    MeterConfig,
    MqttConfig,
    OcppConfig,
    StationConfig,
    TlsConfig,
)

# A profile that outlives a silent daemon by minutes keeps a charger on a stale frequency
# response long after anyone controls it: a safety problem, not a tuning choice (SPEC §2.4).
MAX_PROFILE_VALIDITY_S = 300.0
# A frequency response on 5-s-old data is already wrong for DC, which must start within 0.5 s
# (SPEC §2.1); the default 0.5 s is the value to keep, 5 s the loosest that is still accepted.
MAX_METER_STALE_AFTER_S = 5.0
MAX_BATTERY_PRICE_PER_KWH = 100_000.0  # 100x any pack price on record: a typo, not a price


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
        checked_model(vehicle, f"{path}.vehicle")
    return StationConfig(
        id=sid,
        password=password,
        discharge=tc.choice(tbl, "discharge", path, "none", ("negative_limit", "none")),  # type: ignore[arg-type]
        vehicle=vehicle,
        max_power_kw=tc.num(tbl, "max_power_kw", path, 11.0, positive=True, hi=1000.0),
        **soc_window(tbl, path, None),
    )


def checked_model(name: str, key_path: str) -> str:
    """`name` if the model library knows it (vehicles.lookup), else ConfigError at `key_path`."""
    try:
        lookup(name)
    except UnknownVehicleError as exc:
        raise ConfigError(f"{key_path}: {exc}") from None
    return name


def soc_window(tbl: Mapping[str, Any], path: str,
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


def parse_ocpp(raw: Any) -> OcppConfig:
    """`[ocpp]`: listener, security profile, stations (single and grouped), TLS, limits."""
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


def parse_meter(raw: Any) -> MeterConfig:
    """`[meter]`: listener, freshness cap, plausibility window, source allow-list."""
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


def parse_mqtt(raw: Any) -> MqttConfig:
    """`[mqtt]`: broker, credentials, topic prefix, publish periods, buffer size."""
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


def parse_control(raw: Any) -> ControlConfig:
    """`[control]`: tick period, setpoint step, refresh, fallback ramp, dispatch strategy."""
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


def parse_ageing(raw: Any) -> AgeingConfig:
    """`[ageing]`: battery price and default chemistry for the ageing telemetry."""
    path = "ageing"
    tbl = tc.table(raw, path, {"battery_price_per_kwh", "chemistry"})
    d = AgeingConfig()
    return AgeingConfig(
        battery_price_per_kwh=tc.num(tbl, "battery_price_per_kwh", path,
                                     d.battery_price_per_kwh, lo=0,
                                     hi=MAX_BATTERY_PRICE_PER_KWH),
        chemistry=tc.choice(tbl, "chemistry", path, d.chemistry, CHEMISTRIES),
    )


def parse_energy(raw: Any) -> EnergyConfig:
    """`[energy]`: the fleet SoC window and the energy-reserve alarm ratio."""
    path = "energy"
    tbl = tc.table(raw, path, {"soc_min", "soc_max", "alarm_ratio", "departure_margin_s"})
    d = EnergyConfig()
    return EnergyConfig(**soc_window(tbl, path, (d.soc_min, d.soc_max)),
                        alarm_ratio=tc.num(tbl, "alarm_ratio", path, d.alarm_ratio, lo=1, hi=10),
                        departure_margin_s=tc.num(tbl, "departure_margin_s", path,
                                                  d.departure_margin_s, lo=0, hi=86_400))
