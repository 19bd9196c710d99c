"""`[[vehicle]]` tables: vehicles the site knows, recognised by their transactions' idToken.

Parsing only (TOML values -> frozen VehicleConfig); no I/O. A depot or a retailer knows its
cars: each RFID card or, with Autocharge / ISO 15118 identification, each EV's own MAC address
arrives as the idToken of its transactions, and names the model (dynamics prior, battery), an
optional SoC window and the SoC the car must have when it leaves.
"""

from __future__ import annotations

from typing import Any

from controller import tomlcheck as tc
from controller.departure_schedule import ScheduleError, parse_hhmm
from controller.settings_sections import checked_model, soc_window
from controller.settings_types import ConfigError, VehicleConfig

_VEHICLE_KEYS = {"id_token", "model", "capacity_kwh", "soc_min", "soc_max", "departure_soc",
                 "departure"}
ID_TOKEN_MAX_CHARS = 36  # OCPP 2.0.1 IdTokenType.idToken maxLength


def parse_vehicles(raw: Any) -> tuple[VehicleConfig, ...]:
    """The `[[vehicle]]` array; idTokens must be unique (case insensitive)."""
    if not isinstance(raw, list):
        raise ConfigError("vehicle: must be an array of tables ([[vehicle]])")
    out = [_vehicle(item, f"vehicle[{i}]") for i, item in enumerate(raw)]
    seen: dict[str, int] = {}
    for i, v in enumerate(out):
        if v.key in seen:
            raise ConfigError(f"vehicle[{i}].id_token: {v.id_token!r} is already "
                              f"vehicle[{seen[v.key]}]'s (idTokens are case insensitive)")
        seen[v.key] = i
    return tuple(out)


def _vehicle(raw: Any, path: str) -> VehicleConfig:
    tbl = tc.table(raw, path)
    tc.reject_unknown(tbl, _VEHICLE_KEYS, path)
    token = tc.req_string(tbl, "id_token", path)
    if not 0 < len(token) <= ID_TOKEN_MAX_CHARS:
        raise ConfigError(f"{path}.id_token: 1-{ID_TOKEN_MAX_CHARS} characters, got "
                          f"{len(token)}")
    model = checked_model(tc.req_string(tbl, "model", path), f"{path}.model")
    capacity = (tc.num(tbl, "capacity_kwh", path, None, positive=True, hi=1000.0)
                if "capacity_kwh" in tbl else None)
    departure = (tc.num(tbl, "departure_soc", path, None, lo=0, hi=1)
                 if "departure_soc" in tbl else None)
    window = soc_window(tbl, path, None)
    daily = tc.string(tbl, "departure", path, None)
    if daily is not None:
        try:
            parse_hhmm(daily)
        except ScheduleError as exc:
            raise ConfigError(f"{path}.departure: {exc}") from None
    if departure is not None and window["soc_max"] is not None and departure > window["soc_max"]:
        raise ConfigError(f"{path}.departure_soc: above its soc_max "
                          f"({departure} > {window['soc_max']})")
    return VehicleConfig(token, model, capacity_kwh=capacity, departure_soc=departure,
                         departure=daily, **window)
