"""Frequency-response services: what the contracts ask for at a frequency, SFFR memory included.

Pure numpy: no I/O, no clock reads. A service maps the grid frequency to a signed share of the
contracted power (SPEC §2.1: + = site imports/charges, - = exports); several contracted services
add. Every function takes a float or a numpy array of frequencies and is vectorised (np.interp),
never a Python loop over samples. The services core's names are importable from here: the
definition types live in service_definition.py, the SPEC §2.1 default products in
service_defaults.py, and both are re-exported.

Errors (one tree, defined in service_definition.py):
    ValueError
     └── ServiceError          bad curve / definition / unknown service name

Static FFR (SFFR) is stateful: a trigger at 49.7 Hz, then a hold even if the frequency recovers.
`response_share` of a static definition is only the *instantaneous* trigger condition; the memory
lives in `ServiceState` (scalar, one tick at a time: the controller) and `static_active` /
`expected_w` (arrays, fast time: evaluate and the metric). Both implement the same rule and tests
hold them equal. `request_w` refuses static contracts rather than silently dropping the hold.

SFFR rule (NESO Static FFR technical requirements: "triggered at a defined frequency deviation
(49.7)", "response provided within 30 seconds and sustained until 30 minutes following the point
at which the frequency trigger was reached"). NESO does not publish a re-arm rule on that page;
ours is an ASSUMPTION, with its numbers configurable per definition:
- idle -> active at the first sample with f <= trigger_hz (low product; a high product mirrors
  it with f >= trigger_hz). While active the share is 100 % of Pc (-1 low, +1 high).
- active -> idle at the first sample where BOTH the hold has elapsed (now >= triggered_at +
  sustain_s, 30 min by default) AND the frequency has stayed recovered (f > trigger_hz +
  reset_margin_hz for a low product) on every sample for at least reset_after_s (now >= start of
  that recovered run + reset_after_s). A recovery during the hold counts. Until then the response
  is held, so a frequency still low at 30 min keeps it active.
- NaN frequency neither triggers nor counts as recovered (it breaks a recovered run).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import overload

import numpy as np
import numpy.typing as npt

from controller.control.service_defaults import COMPOUND_NAMES, DEFAULT_DEFINITIONS, SERVICE_NAMES
from controller.control.service_definition import (
    ContractedService,
    Curve,
    Direction,
    ServiceDefinition,
    ServiceError,
)

# The services core's names, wherever defined: definitions and defaults are re-exported here.
__all__ = [
    "COMPOUND_NAMES",
    "DEFAULT_DEFINITIONS",
    "NOMINAL_HZ",
    "SERVICE_NAMES",
    "ContractedService",
    "Curve",
    "Direction",
    "ServiceDefinition",
    "ServiceError",
    "ServiceState",
    "contracts_from",
    "expected_w",
    "request_w",
    "response_share",
    "static_active",
    "with_over_delivery",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

NOMINAL_HZ = 50.0  # GB and Continental Europe (SPEC §2.1: Δf = f - 50 Hz)


# -- evaluation ----------------------------------------------------------------------------------
def _share_array(defn: ServiceDefinition, freq_hz: FloatArray) -> FloatArray:
    if defn.trigger_hz is not None:
        hit = _tripped(defn, defn.trigger_hz, freq_hz)
        static: FloatArray = np.where(np.isnan(freq_hz), np.nan,
                                      np.where(hit, _static_sign(defn), 0.0))
        return static
    df = freq_hz - NOMINAL_HZ
    mag = np.abs(df)
    share = np.where(mag > defn.deadband_hz, defn.curve.share(mag), 0.0)
    low = -share if defn.direction in ("low", "both") else np.zeros_like(share)
    if defn.direction in ("high", "both"):
        high = np.minimum(share * (1.0 + defn.over_delivery_high), 1.0)
    else:
        high = np.zeros_like(share)
    out: FloatArray = np.where(df < 0, low, np.where(df > 0, high, df * 0.0))  # NaN stays NaN
    return out


def _share_scalar(defn: ServiceDefinition, freq_hz: float) -> float:
    """Scalar twin of `_share_array` (one tick = one frequency; numpy costs ~30 us per call)."""
    df = freq_hz - NOMINAL_HZ
    if math.isnan(df):
        return math.nan
    if defn.trigger_hz is not None:
        trig, _, low = _static_levels(defn)
        hit = freq_hz <= trig if low else freq_hz >= trig
        return _static_sign(defn) if hit else 0.0
    mag = abs(df)
    if not mag > defn.deadband_hz:
        return 0.0
    share = defn.curve.share_scalar(mag)
    if df < 0:
        return -share if defn.direction in ("low", "both") else 0.0
    if defn.direction in ("high", "both"):
        return min(share * (1.0 + defn.over_delivery_high), 1.0)
    return 0.0


def _static_levels(defn: ServiceDefinition) -> tuple[float, float, bool]:
    """(trigger Hz, recovery level Hz, is_low) of a static definition."""
    trig = defn.trigger_hz if defn.trigger_hz is not None else math.nan
    low = defn.direction == "low"
    return trig, trig + defn.reset_margin_hz if low else trig - defn.reset_margin_hz, low


def _static_sign(defn: ServiceDefinition) -> float:
    return -1.0 if defn.direction == "low" else 1.0


def _tripped(defn: ServiceDefinition, trigger_hz: float, freq_hz: FloatArray) -> BoolArray:
    out: BoolArray = freq_hz <= trigger_hz if defn.direction == "low" else freq_hz >= trigger_hz
    return out


@overload
def response_share(defn: ServiceDefinition, freq_hz: float) -> float: ...
@overload
def response_share(defn: ServiceDefinition, freq_hz: FloatArray) -> FloatArray: ...
def response_share(defn: ServiceDefinition, freq_hz: float | FloatArray) -> float | FloatArray:
    """Signed share of Pc (-1..+1) that `defn` asks for at `freq_hz`.

    Args:
        defn: the service.
        freq_hz: grid frequency, a float or an array (NaN in gives NaN out).

    Returns:
        A float for a scalar input, else an array of the input's shape.
    """
    if np.ndim(freq_hz) == 0:
        return _share_scalar(defn, float(freq_hz))
    return _share_array(defn, np.asarray(freq_hz, dtype=np.float64))


@overload
def request_w(contracts: Sequence[ContractedService], freq_hz: float) -> float: ...
@overload
def request_w(contracts: Sequence[ContractedService], freq_hz: FloatArray) -> FloatArray: ...
def request_w(contracts: Sequence[ContractedService],
              freq_hz: float | FloatArray) -> float | FloatArray:
    """Total signed power response (W) of all contracts at `freq_hz`; responses add (SPEC §2.1).

    Returns:
        A float for a scalar input, else an array of the input's shape.
    """
    # Loops over contracts (a handful), never over samples.
    for c in contracts:
        if c.definition.is_static:
            raise ServiceError(f"{c.definition.name}: static trigger-and-hold service; use "
                               "ServiceState (per tick) or expected_w (arrays)")
    if np.ndim(freq_hz) == 0:
        f = float(freq_hz)
        return float(sum(c.contract_w * _share_scalar(c.definition, f) for c in contracts))
    arr = np.asarray(freq_hz, dtype=np.float64)
    total = np.zeros_like(arr)
    for c in contracts:
        total = total + c.contract_w * _share_array(c.definition, arr)
    return total


def contracts_from(names_and_kw: Iterable[tuple[str, float]],
                   overrides: Mapping[str, ServiceDefinition] | None = None,
                   ) -> list[ContractedService]:
    """Build contracts from (service name, contract kW) pairs.

    Compound names "DC", "DM", "DR" expand to their L and H products at the same volume
    (SPEC §3.1). `overrides` replaces default definitions by name (configured curves).

    Raises:
        ServiceError: unknown name, or a volume that is not finite and > 0.
    """
    defs = {**DEFAULT_DEFINITIONS, **(overrides or {})}
    out: list[ContractedService] = []
    for name, kw in names_and_kw:
        if not (math.isfinite(kw) and kw > 0):
            raise ServiceError(f"{name}: contract_kw must be finite and > 0, got {kw!r}")
        for part in COMPOUND_NAMES.get(name, (name,)):
            if part not in defs:
                known = ", ".join([*defs, *COMPOUND_NAMES])
                raise ServiceError(f"unknown service {part!r}; known: {known}")
            out.append(ContractedService(defs[part], kw * 1000.0))
    return out


def with_over_delivery(defn: ServiceDefinition, extra: float) -> ServiceDefinition:
    """Copy of `defn` allowing `extra` over-delivery for Δf > 0 (seed eq. 7 uses 0.2)."""
    return replace(defn, over_delivery_high=extra)


# -- static trigger-and-hold (SFFR): per tick ----------------------------------------------------
@dataclass
class _Hold:
    triggered_at_s: float | None = None  # None: armed (idle)
    recovered_since_s: float | None = None  # start of the current recovered run while active


def _advance(defn: ServiceDefinition, hold: _Hold, now_s: float, freq_hz: float) -> bool:
    """One sample of the SFFR rule (module docstring); True while the response is held."""
    trig, level, low = _static_levels(defn)
    if hold.triggered_at_s is None:
        if freq_hz <= trig if low else freq_hz >= trig:
            hold.triggered_at_s, hold.recovered_since_s = now_s, None
            return True
        return False
    if not (freq_hz > level if low else freq_hz < level):  # NaN is not recovered
        hold.recovered_since_s = None
        return True
    if hold.recovered_since_s is None:
        hold.recovered_since_s = now_s
    if (now_s >= hold.triggered_at_s + defn.sustain_s
            and now_s >= hold.recovered_since_s + defn.reset_after_s):
        hold.triggered_at_s = hold.recovered_since_s = None
        return False
    return True


class ServiceState:
    """Contracts plus the memory of their static triggers; the controller owns one.

    `request_w(now_s, freq_hz)` advances every static contract by one sample and returns the total
    signed request (W). Call it once per tick with increasing `now_s`, also when the frequency is
    unusable (NaN: nothing triggers, a recovered run is broken, the hold time still runs).
    """

    def __init__(self, contracts: Sequence[ContractedService]) -> None:
        self.contracts = tuple(contracts)
        self._dynamic = tuple(c for c in self.contracts if not c.definition.is_static)
        self._static = tuple(c for c in self.contracts if c.definition.is_static)
        self._holds = [_Hold() for _ in self._static]

    @property
    def active(self) -> tuple[bool, ...]:
        """Per static contract (in contract order): is its response being held now?"""
        return tuple(h.triggered_at_s is not None for h in self._holds)

    def request_w(self, now_s: float, freq_hz: float) -> float:
        """Total signed request (W) at this sample; NaN when a dynamic contract sees NaN."""
        f = float(freq_hz)
        total = float(sum(c.contract_w * _share_scalar(c.definition, f) for c in self._dynamic))
        for c, hold in zip(self._static, self._holds, strict=True):
            if _advance(c.definition, hold, now_s, f):
                total += _static_sign(c.definition) * c.contract_w
        return total


# -- static trigger-and-hold (SFFR): whole arrays (fast time) ------------------------------------
def static_active(defn: ServiceDefinition, t_s: FloatArray, freq_hz: FloatArray) -> BoolArray:
    """Held-response mask of a static service over samples, starting armed (same rule as
    ServiceState). Vectorised per sample; the only Python loop is over trigger events.

    Raises:
        ServiceError: `defn` is not static.
    """
    if defn.trigger_hz is None:
        raise ServiceError(f"{defn.name}: not a static trigger service")
    t = np.asarray(t_s, dtype=np.float64)
    f = np.asarray(freq_hz, dtype=np.float64)
    n = t.size
    active = np.zeros(n, dtype=bool)
    if n == 0:
        return active
    trig, level, low = _static_levels(defn)
    trips = np.flatnonzero(_tripped(defn, trig, f))
    rec = f > level if low else f < level
    # first index of the recovered run containing each sample (valid where rec)
    run_start = np.maximum.accumulate(np.where(rec, -1, np.arange(n))) + 1
    ok = np.flatnonzero(rec & (t >= t[np.minimum(run_start, n - 1)] + defn.reset_after_s))
    i = 0
    while (j := int(np.searchsorted(trips, i))) < trips.size:
        k = int(trips[j])
        first = max(int(np.searchsorted(t, t[k] + defn.sustain_s, side="left")), k + 1)
        j2 = int(np.searchsorted(ok, first))
        if j2 == ok.size:
            active[k:] = True
            break
        m = int(ok[j2])
        active[k:m] = True
        i = m + 1
    return active


def expected_w(contracts: Sequence[ContractedService], t_s: FloatArray,
               freq_hz: FloatArray) -> FloatArray:
    """E(t) of SPEC §3.5 over samples: the contracts' summed request, static holds included."""
    f = np.asarray(freq_hz, dtype=np.float64)
    total: FloatArray = np.zeros_like(f)
    for c in contracts:
        if c.definition.is_static:
            total = total + np.where(static_active(c.definition, t_s, f),
                                     _static_sign(c.definition) * c.contract_w, 0.0)
        else:
            total = total + c.contract_w * _share_array(c.definition, f)
    return total
