"""Frequency-response service definitions and their piecewise-linear response curves.

Pure numpy: no I/O, no clock reads. A service maps the grid frequency to a signed share of the
contracted power (SPEC §2.1: + = site imports/charges, - = exports); several contracted services
add. Every function takes a float or a numpy array of frequencies and is vectorised (np.interp),
never a Python loop over samples.

Errors (one tree):
    ValueError
     └── ServiceError          bad curve / definition / unknown service name

Static FFR (SFFR) is *not* here: it is stateful (a trigger at 49.7 Hz, then hold for the
contracted duration even if the frequency recovers) and belongs to a later issue. A definition
with `trigger_hz` set is refused rather than approximated by a memoryless curve.
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
        trigger_hz: static trigger (SFFR); not supported yet, see module docstring.
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

    def __post_init__(self) -> None:
        if self.direction not in ("low", "high", "both"):
            raise ServiceError(f"{self.name}: direction must be low, high or both")
        if not (math.isfinite(self.deadband_hz) and self.deadband_hz >= 0):
            raise ServiceError(f"{self.name}: deadband_hz must be finite and ≥ 0")
        if not (math.isfinite(self.over_delivery_high) and 0 <= self.over_delivery_high <= 1):
            raise ServiceError(f"{self.name}: over_delivery_high must be within 0..1")
        if self.trigger_hz is not None:
            raise ServiceError(
                f"{self.name}: static-trigger services (SFFR) are stateful (trigger and hold) "
                "and not implemented yet"
            )


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
    # SFFR: stateful trigger-and-hold; a later issue (see module docstring).
}
SERVICE_NAMES: tuple[str, ...] = tuple(DEFAULT_DEFINITIONS)
# SPEC §3.1: a compound name contracts both directions at the same volume.
COMPOUND_NAMES: dict[str, tuple[str, str]] = {
    "DC": ("DC-L", "DC-H"), "DM": ("DM-L", "DM-H"), "DR": ("DR-L", "DR-H"),
}


# -- evaluation ----------------------------------------------------------------------------------
def _share_array(defn: ServiceDefinition, freq_hz: FloatArray) -> FloatArray:
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
    mag = abs(df)
    if not mag > defn.deadband_hz:
        return 0.0
    share = defn.curve.share_scalar(mag)
    if df < 0:
        return -share if defn.direction in ("low", "both") else 0.0
    if defn.direction in ("high", "both"):
        return min(share * (1.0 + defn.over_delivery_high), 1.0)
    return 0.0


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
