"""Fleet state as a struct of numpy arrays, one row per EVSE.

Pure data: no I/O, no clock reads. The composition root updates rows from OCPP session events;
the controller reads whole columns in one vectorised pass per tick.

Rows are created on first sight of an (station_id, evse_id) and never removed: a station that
drops is marked offline, so row indices stay stable for the life of the process.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from controller.control.vehicles import NEUTRAL, VehicleModel

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

_FLOAT_FIELDS: dict[str, float] = {
    "max_charge_w": 0.0,  # magnitude >= 0: min of EVSE rating and EV-reported limit
    "max_discharge_w": 0.0,  # magnitude >= 0; 0 when the station may not export
    "baseline_w": 0.0,  # setpoint with no frequency response
    "setpoint_w": np.nan,  # last offered setpoint (NaN: never)
    "sent_at_s": np.nan,  # monotonic time of the last offer
    "measured_w": np.nan,  # last MeterValues active power (import - export)
    "soc_frac": np.nan,  # last reported state of charge, 0..1
    # Energy management (control.energy): battery capacity (the prior's, set_prior) and the
    # row's SoC window; NaN = unknown capacity / the configured default window.
    "capacity_wh": np.nan,
    "soc_min_frac": np.nan,
    "soc_max_frac": np.nan,
    # Departure (control.departure): when the vehicle leaves (monotonic s, NaN: not known), the
    # SoC it must have by then (NaN: none) and the SoC floor that keeps that reachable (NaN:
    # none), which raises the window's minimum.
    "departure_at_s": np.nan,
    "target_soc_frac": np.nan,
    "soc_floor_frac": np.nan,
    # Dynamics prior per row (control.dynamics): vehicles.NEUTRAL until `set_prior` names the
    # vehicle (config `vehicle`, or what the EV reports); later refined by identification.
    "t_a_s": NEUTRAL.t_a_s,  # start delay from idle
    "t_c_s": NEUTRAL.t_c_s,  # change delay while power flows
    "t_zero_s": NEUTRAL.t_zero_cross_s,  # extra dead time for a charge <-> discharge switch
    "ramp_up_w_s": NEUTRAL.ramp_up_w_s,  # |p| rising
    "ramp_down_w_s": NEUTRAL.ramp_down_w_s,  # |p| falling
    "quantum_w": 0.0,  # setpoint resolution of the EVSE (0: continuous)
    # Online identification (control.identify), for telemetry: setpoint changes measured, and
    # which dynamics columns hold identified values (bit i = identify.PARAMS[i]; 0 = priors).
    "dyn_changes": 0.0,
    "dyn_identified_bits": 0.0,
}
# Columns that `set_prior` fills from a VehicleModel.
DYNAMICS_FIELDS = ("t_a_s", "t_c_s", "t_zero_s", "ramp_up_w_s", "ramp_down_w_s")
_BOOL_FIELDS = ("online", "tx_active", "can_discharge")


class FleetState:
    """Struct-of-arrays fleet state; columns are views of the first `n` rows."""

    def __init__(self, capacity: int = 64) -> None:
        self._cap = max(1, capacity)
        self.n = 0
        self.keys: list[tuple[str, int]] = []
        self.index: dict[tuple[str, int], int] = {}
        self._by_station: dict[str, list[int]] = {}
        self._f: dict[str, FloatArray] = {
            k: np.full(self._cap, v, dtype=np.float64) for k, v in _FLOAT_FIELDS.items()
        }
        self._b: dict[str, BoolArray] = {k: np.zeros(self._cap, dtype=bool) for k in _BOOL_FIELDS}

    # -- rows ---------------------------------------------------------------------------------
    def row(self, station_id: str, evse_id: int, *, max_power_w: float,
            can_discharge: bool) -> int:
        """Return the row of (station_id, evse_id), creating it with the EVSE's rating."""
        key = (station_id, evse_id)
        found = self.index.get(key)
        if found is not None:
            return found
        if self.n == self._cap:
            self._grow()
        i = self.n
        self.n += 1
        self.keys.append(key)
        self.index[key] = i
        self._by_station.setdefault(station_id, []).append(i)
        self._f["max_charge_w"][i] = max_power_w
        self._f["max_discharge_w"][i] = max_power_w if can_discharge else 0.0
        self._b["can_discharge"][i] = can_discharge
        return i

    def set_prior(self, rows: int | Sequence[int] | IntArray,
                  model: VehicleModel | Sequence[VehicleModel]) -> None:
        """Write a vehicle prior (one model, or one per row): dynamics columns and capacity."""
        idx = np.atleast_1d(np.asarray(rows, dtype=np.intp))
        models = [model] * idx.size if isinstance(model, VehicleModel) else list(model)
        if len(models) != idx.size:
            raise ValueError(f"set_prior: {idx.size} rows but {len(models)} models")
        cols = {"t_a_s": [m.t_a_s for m in models], "t_c_s": [m.t_c_s for m in models],
                "t_zero_s": [m.t_zero_cross_s for m in models],
                "ramp_up_w_s": [m.ramp_up_w_s for m in models],
                "ramp_down_w_s": [m.ramp_down_w_s for m in models]}
        for k, vals in cols.items():
            self._f[k][idx] = vals
        self._f["capacity_wh"][idx] = [1000.0 * m.battery_kwh for m in models]

    def rows_of(self, station_id: str) -> list[int]:
        """Rows belonging to one station (empty if never seen)."""
        return self._by_station.get(station_id, [])

    def mark_sent(self, rows: IntArray, setpoint_w: FloatArray, now_s: float) -> None:
        """Record that `setpoint_w` (one per row in `rows`) was offered at `now_s`."""
        self._f["setpoint_w"][rows] = setpoint_w
        self._f["sent_at_s"][rows] = now_s

    def _grow(self) -> None:
        new_cap = self._cap * 2
        for k, arr in self._f.items():
            grown = np.full(new_cap, _FLOAT_FIELDS[k], dtype=np.float64)
            grown[: self._cap] = arr
            self._f[k] = grown
        for k, barr in self._b.items():
            bgrown = np.zeros(new_cap, dtype=bool)
            bgrown[: self._cap] = barr
            self._b[k] = bgrown
        self._cap = new_cap

    # -- columns (views of the valid rows; writes go through to the state) ------------------------
    @property
    def online(self) -> BoolArray:
        return self._b["online"][: self.n]

    @property
    def tx_active(self) -> BoolArray:
        return self._b["tx_active"][: self.n]

    @property
    def can_discharge(self) -> BoolArray:
        return self._b["can_discharge"][: self.n]

    @property
    def max_charge_w(self) -> FloatArray:
        return self._f["max_charge_w"][: self.n]

    @property
    def max_discharge_w(self) -> FloatArray:
        return self._f["max_discharge_w"][: self.n]

    @property
    def baseline_w(self) -> FloatArray:
        return self._f["baseline_w"][: self.n]

    @property
    def setpoint_w(self) -> FloatArray:
        return self._f["setpoint_w"][: self.n]

    @property
    def sent_at_s(self) -> FloatArray:
        return self._f["sent_at_s"][: self.n]

    @property
    def measured_w(self) -> FloatArray:
        return self._f["measured_w"][: self.n]

    @property
    def soc_frac(self) -> FloatArray:
        return self._f["soc_frac"][: self.n]

    @property
    def capacity_wh(self) -> FloatArray:
        return self._f["capacity_wh"][: self.n]

    @property
    def soc_min_frac(self) -> FloatArray:
        return self._f["soc_min_frac"][: self.n]

    @property
    def soc_max_frac(self) -> FloatArray:
        return self._f["soc_max_frac"][: self.n]

    @property
    def departure_at_s(self) -> FloatArray:
        return self._f["departure_at_s"][: self.n]

    @property
    def target_soc_frac(self) -> FloatArray:
        return self._f["target_soc_frac"][: self.n]

    @property
    def soc_floor_frac(self) -> FloatArray:
        return self._f["soc_floor_frac"][: self.n]

    @property
    def t_a_s(self) -> FloatArray:
        return self._f["t_a_s"][: self.n]

    @property
    def t_c_s(self) -> FloatArray:
        return self._f["t_c_s"][: self.n]

    @property
    def t_zero_s(self) -> FloatArray:
        return self._f["t_zero_s"][: self.n]

    @property
    def ramp_up_w_s(self) -> FloatArray:
        return self._f["ramp_up_w_s"][: self.n]

    @property
    def ramp_down_w_s(self) -> FloatArray:
        return self._f["ramp_down_w_s"][: self.n]

    @property
    def quantum_w(self) -> FloatArray:
        return self._f["quantum_w"][: self.n]

    @property
    def dyn_changes(self) -> FloatArray:
        return self._f["dyn_changes"][: self.n]

    @property
    def dyn_identified_bits(self) -> FloatArray:
        return self._f["dyn_identified_bits"][: self.n]
