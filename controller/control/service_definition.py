"""What a frequency-response service product is: its curve, its definition, a contract.

Frozen, validated values (SPEC §2.1): `Curve` (piecewise-linear share of Pc versus |Δf|),
`ServiceDefinition` (one product: direction, deadband, curve, timings, optional static trigger)
and `ContractedService` (a definition at a contracted volume). Construction checks every field and
raises `ServiceError`, the one exception of the services core (its tree: services.py docstring).

Not here: the default products (service_defaults.py), turning a frequency into a request and the
SFFR trigger-and-hold memory (services.py). Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Direction = Literal["low", "high", "both"]


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
            of Pc held for `sustain_s` (services.py docstring); `deadband_hz` and `curve` are then
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
    reset_margin_hz: float = 0.05  # assumption (services.py docstring): 50 mHz above the trigger
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
