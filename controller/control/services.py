"""Frequency-response service definitions and their piecewise-linear response curves.

Pure numpy: no I/O, no clock reads. A service maps the grid frequency to a signed share of the
contracted power (SPEC §2.1: + = site imports/charges, - = exports); several contracted services
add. Every function takes a float or a numpy array of frequencies and is vectorised (np.interp),
never a Python loop over samples.

Errors (one tree):
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

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Direction = Literal["low", "high", "both"]

NOMINAL_HZ = 50.0  # GB and Continental Europe (SPEC §2.1: Δf = f - 50 Hz)


class ServiceError(ValueError):
    """A curve or service definition is invalid, or a service name is unknown."""


@dataclass(frozen=True)
class Curve:
    """Piecewise-linear share of Pc versus |Δf|: 0 below the first point, flat after the last.

    Attributes:
        points: ((|Δf| Hz, share), ...), Hz strictly increasing, all finite, Hz and share ≥ 0.
    """

    points: tuple[tuple[float, float], ...]
    _hz: FloatArray = field(init=False, repr=False, compare=False)
    _share: FloatArray = field(init=False, repr=False, compare=False)
    _hz_list: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pts = tuple((float(hz), float(share)) for hz, share in self.points)
        if not pts:
            raise ServiceError("curve: needs at least one (|Δf| Hz, share) point")
        for hz, share in pts:
            if not (math.isfinite(hz) and math.isfinite(share)) or hz < 0 or share < 0:
                raise ServiceError(
                    f"curve: point ({hz}, {share}) must be finite with |Δf| ≥ 0 and share ≥ 0"
                )
        for (h0, _), (h1, _) in itertools.pairwise(pts):
            if not h1 > h0:
                raise ServiceError(f"curve: |Δf| must strictly increase, got {h0} then {h1}")
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "_hz", np.array([p[0] for p in pts], dtype=np.float64))
        object.__setattr__(self, "_share", np.array([p[1] for p in pts], dtype=np.float64))
        object.__setattr__(self, "_hz_list", tuple(p[0] for p in pts))

    def share(self, abs_df_hz: FloatArray) -> FloatArray:
        """Unsigned share at |Δf| (array in, array out)."""
        out: FloatArray = np.interp(abs_df_hz, self._hz, self._share, left=0.0,
                                    right=self._share[-1])
        return out

    def share_scalar(self, abs_df_hz: float) -> float:
        """Same as `share` for one value, without numpy overhead (the per-tick path)."""
        pts = self.points
        if abs_df_hz < pts[0][0]:
            return 0.0
        j = bisect.bisect_right(self._hz_list, abs_df_hz) - 1
        if j >= len(pts) - 1:
            return pts[-1][1]
        (x0, y0), (x1, y1) = pts[j], pts[j + 1]
        return y0 + (y1 - y0) * (abs_df_hz - x0) / (x1 - x0)


@dataclass(frozen=True)
class ServiceDefinition:
    """One frequency service product (SPEC §2.1 table row).

    Attributes:
        name: e.g. "DC-L".
        direction: "low" answers Δf < 0 with export (negative), "high" answers Δf > 0 with
            import (positive), "both" does both (FCR).
        deadband_hz: no response while |Δf| ≤ this.
        curve: share of Pc versus |Δf| outside the deadband.
        start_s: response must have started by this (None: not specified).
        full_s: full delivery by this.
        sustain_s: must be held for this long.
        over_delivery_high: extra share allowed for Δf > 0, as in seed eq. 7 (x (1 + this)),
            the result capped at 100 % of Pc.
        trigger_hz: static trigger (SFFR): when set, the service is a stateful step to 100 %
            of Pc held for `sustain_s` (module docstring); `deadband_hz` and `curve` are then
            unused, and direction must be "low" (trigger when f <= trigger_hz) or "high".
        reset_margin_hz: static only: f must recover beyond trigger_hz by this to re-arm.
        reset_after_s: static only: ... and stay recovered this long (after the hold).
    """

    name: str
    direction: Direction
    deadband_hz: float
    curve: Curve
    start_s: float | None
    full_s: float
    sustain_s: float
    over_delivery_high: float = 0.0
    trigger_hz: float | None = None
    reset_margin_hz: float = 0.05  # assumption (module docstring): 50 mHz above the trigger
    reset_after_s: float = 30.0  # assumption: recovered for the SFFR full-delivery time

    @property
    def is_static(self) -> bool:
        """True for a trigger-and-hold product (SFFR)."""
        return self.trigger_hz is not None

    def __post_init__(self) -> None:
        if self.direction not in ("low", "high", "both"):
            raise ServiceError(f"{self.name}: direction must be low, high or both")
        if not (math.isfinite(self.deadband_hz) and self.deadband_hz >= 0):
            raise ServiceError(f"{self.name}: deadband_hz must be finite and ≥ 0")
        if not (math.isfinite(self.over_delivery_high) and 0 <= self.over_delivery_high <= 1):
            raise ServiceError(f"{self.name}: over_delivery_high must be within 0..1")
        if self.trigger_hz is not None:
            self._check_static(self.trigger_hz)

    def _check_static(self, trigger_hz: float) -> None:
        if not (math.isfinite(trigger_hz) and 45.0 <= trigger_hz <= 55.0):
            raise ServiceError(f"{self.name}: trigger_hz must be within 45..55 Hz")
        if self.direction == "both":
            raise ServiceError(f"{self.name}: a static trigger answers one direction, low or high")
        for label, val in (("sustain_s", self.sustain_s), ("reset_after_s", self.reset_after_s),
                           ("reset_margin_hz", self.reset_margin_hz)):
            if not (math.isfinite(val) and val >= 0):
                raise ServiceError(f"{self.name}: {label} must be finite and >= 0")


@dataclass(frozen=True)
class ContractedService:
    """A service contracted for `contract_w` (Pc, W, > 0)."""

    definition: ServiceDefinition
    contract_w: float


# -- defaults (SPEC §2.1) ------------------------------------------------------------------------
# Sources: NESO "Dynamic Containment / Moderation / Regulation" service terms (deadband ±0.015 Hz,
# knee and full-delivery points, timings); EU 2017/1485 (SOGL) Annex V (FCR: full activation at
# ±200 mHz, insensitivity ±10 mHz, full by 30 s); seed Table 10 (timings) and eq. 7 (FCR).
_DB_GB_HZ = 0.015  # NESO dynamic services deadband


def _gb(name: str, direction: Direction, pts: tuple[tuple[float, float], ...], *,
        start_s: float, full_s: float, sustain_s: float) -> ServiceDefinition:
    return ServiceDefinition(name, direction, _DB_GB_HZ, Curve(pts), start_s, full_s, sustain_s)


# DC: 5 % at 0.2 Hz (linear from the deadband), then linear to 100 % at 0.5 Hz; 0.5 s / 1 s / 15 min
_DC_PTS = ((_DB_GB_HZ, 0.0), (0.2, 0.05), (0.5, 1.0))
# DM: 5 % at 0.1 Hz, then linear to 100 % at 0.2 Hz; 0.5 s / 1 s / 30 min
_DM_PTS = ((_DB_GB_HZ, 0.0), (0.1, 0.05), (0.2, 1.0))
# DR: linear to 100 % at 0.2 Hz; 2 s / 10 s / 60 min
_DR_PTS = ((_DB_GB_HZ, 0.0), (0.2, 1.0))

DEFAULT_DEFINITIONS: dict[str, ServiceDefinition] = {
    # FCR, seed eq. 7: P = Pmax·Δf/200 mHz, saturating at ±Pmax, x (1 + 20 %) allowed above 50 Hz
    # (still capped at Pmax). Eq. 7 itself is asymmetric: no response above 50 Hz only at exactly
    # 50 Hz, and below only under 49.99 Hz, stepping to 5 % there. We use the symmetric 10 mHz
    # deadband of SPEC §2.1 / SOGL Annex V with the curve linear from the deadband edge (no step),
    # and no over-delivery by default (over_delivery_high=0.2 reproduces eq. 7's high side).
    "FCR": ServiceDefinition("FCR", "both", 0.010, Curve(((0.010, 0.0), (0.200, 1.0))),
                             None, 30.0, 15 * 60.0),
    "DC-L": _gb("DC-L", "low", _DC_PTS, start_s=0.5, full_s=1.0, sustain_s=15 * 60.0),
    "DC-H": _gb("DC-H", "high", _DC_PTS, start_s=0.5, full_s=1.0, sustain_s=15 * 60.0),
    "DM-L": _gb("DM-L", "low", _DM_PTS, start_s=0.5, full_s=1.0, sustain_s=30 * 60.0),
    "DM-H": _gb("DM-H", "high", _DM_PTS, start_s=0.5, full_s=1.0, sustain_s=30 * 60.0),
    "DR-L": _gb("DR-L", "low", _DR_PTS, start_s=2.0, full_s=10.0, sustain_s=60 * 60.0),
    "DR-H": _gb("DR-H", "high", _DR_PTS, start_s=2.0, full_s=10.0, sustain_s=60 * 60.0),
    # SFFR (NESO Static FFR): trigger 49.7 Hz, full by 30 s, held 30 min after the trigger; the
    # curve is unused (a step to 100 %); re-arm rule and its defaults in the module docstring.
    "SFFR": ServiceDefinition("SFFR", "low", 0.0, Curve(((0.0, 1.0),)), None, 30.0, 30 * 60.0,
                              trigger_hz=49.7),
}
SERVICE_NAMES: tuple[str, ...] = tuple(DEFAULT_DEFINITIONS)
# SPEC §3.1: a compound name contracts both directions at the same volume.
COMPOUND_NAMES: dict[str, tuple[str, str]] = {
    "DC": ("DC-L", "DC-H"), "DM": ("DM-L", "DM-H"), "DR": ("DR-L", "DR-H"),
}


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
