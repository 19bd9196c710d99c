"""Daemon configuration: TOML file -> frozen `Settings`, every key checked.

The public face of the configuration: `load_settings` / `parse_settings`, the `Settings` they
return, the rules that span tables (site id, required [ocpp], refresh shorter than profile
validity) and, re-exported, the per-table dataclasses and ConfigError of
controller/settings_types.py, so `from controller.settings import MqttConfig` is the one import
path. The tables themselves are checked by controller/settings_sections.py and
controller/settings_services.py.

Reads only the file it is given; no other I/O. Every limit has a default and a comment saying
where the number comes from; config/v2ghub.example.toml documents every key with unit and default.
Unknown keys, wrong types and out-of-range values raise ConfigError with one line that names the
key and says what is expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller import tomlcheck as tc
from controller.control.services import ServiceDefinition
from controller.settings_sections import (
    parse_ageing,
    parse_control,
    parse_energy,
    parse_meter,
    parse_mqtt,
    parse_ocpp,
)
from controller.settings_services import parse_services
from controller.settings_types import (
    AgeingConfig,
    ConfigError,
    ControlConfig,
    EnergyConfig,
    MeterConfig,
    MqttConfig,
    OcppConfig,
    ServiceConfig,
    StationConfig,
    TlsConfig,
    VehicleConfig,
)
from controller.settings_vehicles import parse_vehicles

# The configuration's public API: the tables are defined in settings_types, imported from here.
__all__ = [
    "AgeingConfig",
    "ConfigError",
    "ControlConfig",
    "EnergyConfig",
    "MeterConfig",
    "MqttConfig",
    "OcppConfig",
    "ServiceConfig",
    "Settings",
    "StationConfig",
    "TlsConfig",
    "VehicleConfig",
    "load_settings",
    "parse_settings",
]


@dataclass(frozen=True, slots=True)
class Settings:
    site_id: str
    ocpp: OcppConfig
    # the site's time zone (IANA name): daily `[[vehicle]] departure` times are on its clock
    site_timezone: str = "UTC"
    meter: MeterConfig = field(default_factory=MeterConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    services: tuple[ServiceConfig, ...] = ()
    control: ControlConfig = field(default_factory=ControlConfig)
    ageing: AgeingConfig = field(default_factory=AgeingConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    vehicles: tuple[VehicleConfig, ...] = ()

    @property
    def mqtt_prefix(self) -> str:
        return self.mqtt.prefix or f"v2ghub/{self.site_id}"

    def contract_overrides(self) -> dict[str, ServiceDefinition]:
        """Configured definitions by product name, for `services.contracts_from(overrides=)`."""
        return {d.name: d for s in self.services for d in s.definitions}


def parse_settings(doc: Mapping[str, Any]) -> Settings:
    """Build Settings from a parsed TOML document (see load_settings).

    Raises:
        ConfigError: one line naming the offending key.
    """
    with tc.reraise_as(ConfigError):
        return _parse(doc)


def _parse(doc: Mapping[str, Any]) -> Settings:
    tc.reject_unknown(doc, {"site", "ocpp", "meter", "mqtt", "service", "control", "ageing",
                            "energy", "vehicle"}, "")
    site = tc.table(doc.get("site", {}), "site", {"id", "timezone"})
    site_id = tc.req_string(site, "id", "site")
    if any(c in site_id for c in "/#+") or len(site_id) > 64:
        raise ConfigError(f"site.id: {site_id!r} must be <=64 chars without '/', '#' or '+'")
    timezone = tc.string(site, "timezone", "site", "UTC") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"site.timezone: unknown time zone {timezone!r}; use an IANA name "
                          "such as \"Europe/London\"") from None
    if "ocpp" not in doc:
        raise ConfigError("ocpp: required table [ocpp] is missing")
    services = parse_services(doc.get("service", []))
    settings = Settings(
        site_id=site_id,
        site_timezone=timezone,
        ocpp=parse_ocpp(doc["ocpp"]),
        meter=parse_meter(doc.get("meter", {})),
        mqtt=parse_mqtt(doc.get("mqtt", {})),
        services=services,
        control=parse_control(doc.get("control", {})),
        ageing=parse_ageing(doc.get("ageing", {})),
        energy=parse_energy(doc.get("energy", {})),
        vehicles=parse_vehicles(doc.get("vehicle", [])),
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
    return tc.load_checked(path, parse_settings, error=ConfigError)
