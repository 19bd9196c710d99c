"""`evaluate` feeds online identification: the controller learns the plant, not the library."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from controller.control.identify import Identifier
from controller.control.services import contracts_from
from controller.tools import evaluate as ev
from sim_chargers.fleetfile import parse_fleet
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
