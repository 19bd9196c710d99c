"""`evaluate` feeds online identification: the controller learns the plant, not the library."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from controller.control.controller import Controller, ControlParams
from controller.control.dispatch_comp import CompensatedDispatch
from controller.control.energy import EnergyParams
from controller.control.identify import Identifier, IdentParams
from controller.control.services import contracts_from
from controller.control.vehicles import lookup
from controller.tools import evaluate as ev
from controller.tools.closed_loop import ClosedLoop, fleet_state, vary
from sim_chargers.fleetfile import parse_fleet
from sim_chargers.plant import VehiclePlant
from sim_chargers.traces import Trace


def _on_off_trace(cycles: int, *, on_s: float = 20.0, off_s: float = 20.0,
                  rate_hz: float = 10.0) -> Trace:
    period = on_s + off_s
    t = np.arange(int(cycles * period * rate_hz) + 1) / rate_hz
    f = np.where((t % period >= 2.0) & (t % period < 2.0 + on_s), 49.8, 50.0)
    return Trace(t, f, name="on-off")


def _run(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[Identifier]:
    made: list[Identifier] = []

    class Spy(Identifier):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(ev, "Identifier", Spy)
    # the library says Ariya: t_a 0.5 s, ramp up 6.59 kW/s; these vehicles are slower
    fleet = parse_fleet({"group": [{"model": "Nissan Ariya", "count": 3, "charger_kw": 10,
                                    "soc": 0.8, "t_a_s": 3.0, "ramp_up_kw_s": 4.0}]})
    ev.evaluate(fleet, _on_off_trace(4), contracts_from([("DR-L", 24.0)]), dispatch="naive",
                variation_frac=0.0, **kwargs)
    return made


def test_evaluate_identifies_start_delay_and_ramp_that_differ_from_the_prior(
        monkeypatch: pytest.MonkeyPatch) -> None:
    (ident,) = _run(monkeypatch)
    fleet = ident.fleet
    for row in range(fleet.n):
        assert {"t_a_s", "ramp_up_w_s"} <= set(ident.identified(row))
    # the offer -> vehicle delay (0.1 s) is taken off: the vehicle's own figures come back
    np.testing.assert_allclose(fleet.t_a_s, 3.0, rtol=0.15)
    np.testing.assert_allclose(fleet.ramp_up_w_s, 4000.0, rtol=0.15)


def test_evaluate_without_identification_keeps_the_library_priors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, identify=False) == []


def test_compensated_swaps_across_zero_identify_t_zero_in_fast_time() -> None:
    # Between events the compensated dispatch swaps drifted pairs across zero (dispatch_comp
    # ENERGY): +-500 W, then the other side. A 0.3 % band and 5 kWh batteries make a swap due
    # every flip interval (30 s); the library's t_zero priors (= t_a: Ariya 0.5 s, Zoe 3.8 s)
    # are far from these vehicles' 1.5 s and 1.0 s (+-20 % per vehicle)
    spec = parse_fleet({"group": [
        {"model": "Nissan Ariya", "count": 2, "charger_kw": 11, "soc": 0.5, "capacity_kwh": 5,
         "t_zero_cross_s": 1.5},
        {"model": "Renault Zoe 40", "count": 2, "charger_kw": 11, "soc": 0.5, "capacity_kwh": 5,
         "t_zero_cross_s": 1.0}]})
    priors = [lookup(m.name) for m in spec.models]
    disp = CompensatedDispatch(priors, energy_params=EnergyParams(band_frac=0.003))
    ctl = Controller(contracts_from([("DC", 20.0)]), ControlParams(tick_period_s=0.02),
                     dispatch=disp)
    plant = VehiclePlant(vary(spec.params, 0.2, 0), spec.soc_frac)
    fleet = fleet_state(spec)
    ident = Identifier(fleet, IdentParams(transport_delay_s=0.1))
    loop = ClosedLoop(plant, fleet, ctl, ocpp_delay_s=0.1, identifier=ident)
    t = np.arange(180 * 50) / 50.0  # 3 min at 50 Hz, no event
    loop.run(t, np.full(t.size, 50.0))
    rows = [i for i in range(fleet.n) if "t_zero_s" in ident.identified(i)]
    assert len(rows) >= 1
    true_s, prior_s = plant.params.t_zero_s[rows], [priors[i].t_zero_cross_s for i in rows]
    np.testing.assert_allclose(fleet.t_zero_s[rows], true_s, rtol=0.2)
    assert np.all(np.abs(true_s / prior_s - 1.0) > 0.5)  # the prior would not have passed
