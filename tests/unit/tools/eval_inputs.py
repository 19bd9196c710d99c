"""Small fleets, step traces and a DR run shared by the fast-time evaluation tests.

Used by test_evaluate.py, test_closed_loop.py and test_run_record.py; short traces so each test
runs in well under a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from controller.control.services import contracts_from
from controller.tools.evaluate import EvalResult, evaluate
from sim_chargers.fleetfile import FleetSpec, parse_fleet
from sim_chargers.traces import Trace


def ariya_fleet(count: int = 30, soc: float = 0.8, **extra: float) -> FleetSpec:
    return parse_fleet({"group": [{"model": "Nissan Ariya", "count": count, "charger_kw": 10,
                                   "soc": soc, **extra}]})


def step_trace(f_event: float, *, pre_s: float = 5.0, hold_s: float = 30.0,
               post_s: float = 10.0, rate_hz: float = 20.0) -> Trace:
    t = np.arange(int((pre_s + hold_s + post_s) * rate_hz) + 1) / rate_hz
    f = np.where((t >= pre_s) & (t < pre_s + hold_s), f_event, 50.0)
    return Trace(t, f, name="step")


def run_dr(kw: float, **kw_args: Any) -> EvalResult:
    return evaluate(ariya_fleet(), step_trace(49.8), contracts_from([("DR-L", kw)]), **kw_args)
