"""Trace shapes: steps land on the service points (and follow configured curves), ramps go
where they are told and refuse what does not fit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from controller.control.services import DEFAULT_DEFINITIONS, Curve, response_share
from sim_chargers import tracelib, traceshapes
from sim_chargers.traces import Trace, TraceError


def _window(tr: Trace, t0: float, t1: float) -> np.ndarray:
    return tr.f_hz[(tr.t_s >= t0) & (tr.t_s <= t1)]


# -- steps from the service definitions ----------------------------------------------------------
def _expected_points(name: str) -> dict[str, float]:
    defn = DEFAULT_DEFINITIONS[name]
    pts = defn.curve.points
    return {"deadband": defn.deadband_hz + traceshapes.DEADBAND_MARGIN_HZ,
            "knee": pts[1][0] if len(pts) > 1 else pts[0][0], "sat": pts[-1][0]}


_PRODUCTS = [(n, d) for n, d in DEFAULT_DEFINITIONS.items() if d.trigger_hz is None]
_STEP_CASES = [
    (name, side, point)
    for name, defn in _PRODUCTS
    for side in ({"low": "l", "high": "h", "both": "lh"}[defn.direction])
    for point in ("deadband", "knee", "sat")
]


@pytest.mark.parametrize(("service", "side", "point"), _STEP_CASES)
def test_steps_land_exactly_on_the_service_points(service: str, side: str, point: str) -> None:
    family = service.lower().removesuffix("-l").removesuffix("-h")
    tr = tracelib.generate(f"step-{family}-{side}-{point}")
    abs_df = _expected_points(service)[point]
    f_event = 50.0 - abs_df if side == "l" else 50.0 + abs_df
    assert _window(tr, 0.0, 9.99).tolist() == [50.0] * 100
    assert np.allclose(_window(tr, 10.0, 109.9), f_event, rtol=0, atol=1e-9)
    assert np.all(_window(tr, 110.0, 120.0) == 50.0)
    share = abs(response_share(DEFAULT_DEFINITIONS[service], tr.f_at(60.0)))
    curve = DEFAULT_DEFINITIONS[service].curve.points
    if point == "deadband":
        assert 0.0 < share < 0.05  # just outside: responding, but barely
    elif point == "knee":
        assert share == pytest.approx(curve[min(1, len(curve) - 1)][1])
    else:
        assert share == pytest.approx(1.0)


def test_every_service_has_deadband_knee_and_sat_steps_in_each_of_its_directions() -> None:
    names = set(tracelib.TRACES)
    for stem in ("fcr-l", "fcr-h", "dc-l", "dc-h", "dm-l", "dm-h", "dr-l", "dr-h"):
        for point in ("deadband", "knee", "sat"):
            assert f"step-{stem}-{point}" in names
    assert tracelib.generate("step-dc-l-knee").f_at(60.0) == pytest.approx(49.8)
    assert tracelib.generate("step-dm-h-knee").f_at(60.0) == pytest.approx(50.1)
    assert tracelib.generate("step-dr-h-knee").f_at(60.0) == pytest.approx(50.2)


def test_static_service_steps_sit_on_and_just_short_of_its_trigger() -> None:
    static = {n: d for n, d in DEFAULT_DEFINITIONS.items() if d.trigger_hz is not None}
    for name, defn in static.items():
        assert defn.trigger_hz is not None
        stem = f"step-{name.lower()}-{'l' if defn.direction == 'low' else 'h'}"
        on = tracelib.generate(f"{stem}-trigger").f_at(60.0)
        near = tracelib.generate(f"{stem}-near-trigger").f_at(60.0)
        assert on == defn.trigger_hz
        assert abs(near - defn.trigger_hz) == pytest.approx(traceshapes.DEADBAND_MARGIN_HZ)
        assert abs(near - 50.0) < abs(on - 50.0)


def test_a_configured_curve_moves_the_steps() -> None:
    dc_l = DEFAULT_DEFINITIONS["DC-L"]
    custom = replace(dc_l, deadband_hz=0.03,
                     curve=Curve(((0.03, 0.0), (0.3, 0.1), (0.8, 1.0))))
    registry = tracelib.build_registry({"DC-L": custom})
    at = {p: tracelib.generate(f"step-dc-l-{p}", registry=registry).f_at(60.0)
          for p in ("deadband", "knee", "sat")}
    assert at == pytest.approx({"deadband": 49.965, "knee": 49.7, "sat": 49.2})
    assert "step-dm-l-knee" not in registry


def test_step_lead_and_tail_shrink_for_short_traces() -> None:
    tr = tracelib.generate("step-dc-h-sat", seconds=6.0, rate_hz=10.0)
    assert tr.f_at(0.9) == 50.0
    assert tr.f_at(1.0) == 50.5
    assert tr.f_at(4.9) == 50.5
    assert tr.f_at(5.0) == 50.0


# -- ramps ---------------------------------------------------------------------------------------
def test_ramp_down_goes_to_49_5_hz_over_10_s_and_back() -> None:
    tr = tracelib.generate("ramp-down")
    assert [tr.f_at(t) for t in (0.0, 10.0, 15.0, 20.0, 40.0, 45.0, 50.0, 60.0)] == \
        pytest.approx([50.0, 50.0, 49.75, 49.5, 49.5, 49.75, 50.0, 50.0])
    assert np.all(np.diff(_window(tr, 10.0, 20.0)) < 0)
    up = tracelib.generate("ramp-up")
    assert up.f_at(30.0) == 50.5


def test_ramps_are_parameterisable_and_refuse_what_does_not_fit() -> None:
    tr = traceshapes.ramp("down", 120.0, 10.0, depth_hz=1.0, ramp_s=40.0)
    assert tr.f_at(30.0) == pytest.approx(49.5)
    assert tr.f_at(50.0) == 49.0
    assert tr.f_at(60.0) == 49.0
    with pytest.raises(TraceError, match="ramp_s"):
        traceshapes.ramp("up", 60.0, 10.0, ramp_s=25.0)
    with pytest.raises(TraceError, match="depth_hz"):
        traceshapes.ramp("up", 60.0, 10.0, depth_hz=6.0)
