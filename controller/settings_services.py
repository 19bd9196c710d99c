"""Daemon configuration: the [[service]] tables -> contracted volumes and definition overrides.

A [[service]] names a product (or a compound such as DC = DC-L + DC-H) and a volume, and may
override its curve points, deadband, timings, over-delivery or static trigger (SPEC §2.1: "Curve
points must be configuration"). Overrides are applied to the SPEC §2.1 defaults of
controller/control/services.py and checked against the limits named here; one product contracted
twice must have one definition. No I/O here; errors are the one-line ConfigError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from controller import tomlcheck as tc
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
from controller.settings_types import ConfigError, ServiceConfig

# The meter plausibility window is 45-55 Hz (SPEC §3.3), so |Δf| never exceeds 5 Hz.
MAX_ABS_DF_HZ = 5.0
# OCPP 2.1 caps a frequency-watt curve at 20 points (v2xFreqWattCurve, SPEC §2.4); every §2.1
# curve needs at most three.
MAX_CURVE_POINTS = 20
# FCR over-delivery above 50 Hz: seed eq. 7 allows +20 %, and no more.
MAX_OVER_DELIVERY_HIGH = 0.2

_CURVE_KEYS = ("points", "deadband_hz", "over_delivery_high")  # curve services only
_TIMING_KEYS = ("start_s", "full_s", "sustain_s")
_OVERRIDE_KEYS = {*_CURVE_KEYS, *_TIMING_KEYS, "trigger_hz"}
_TIMING_MAX_S = 24 * 3600.0  # a day: far above any §2.1 sustain time (60 min)


def parse_services(raw: Any) -> tuple[ServiceConfig, ...]:
    """`[[service]]`: every contracted service, its overrides applied.

    Raises:
        ConfigError: one line naming the offending key (tomlcheck's CheckError for a bad value).
    """
    if not isinstance(raw, list):
        raise ConfigError("service: expected an array of tables [[service]]")
    services = tuple(_service(s, f"service[{i}]") for i, s in enumerate(raw))
    _check_one_definition_per_product(services)
    return services


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
