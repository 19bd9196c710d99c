"""Trace library: every trace is a valid trace CSV, steps follow the service definitions,
gb-normal has the targeted statistics, the published events hit their landmarks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from controller.control.services import DEFAULT_DEFINITIONS, Curve, response_share
from sim_chargers import tracelib
from sim_chargers.traces import Trace, TraceError, builtin_event, load_trace, parse_trace


def _window(tr: Trace, t0: float, t1: float) -> np.ndarray:
    return tr.f_hz[(tr.t_s >= t0) & (tr.t_s <= t1)]


# -- every trace ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(tracelib.TRACES))
def test_every_trace_written_as_csv_reads_back_identically(name: str, tmp_path: Path) -> None:
    tr = tracelib.generate(name)
    path = tmp_path / f"{name}.csv"
    path.write_text(tracelib.to_csv(tr), encoding="utf-8")
    back = load_trace(path)
    assert np.array_equal(back.t_s, tr.t_s)
    assert np.array_equal(back.f_hz, tr.f_hz)
    assert back.t_s[0] == 0.0
    assert back.duration_s == tracelib.TRACES[name].default_seconds
    assert np.all(np.diff(back.t_s) > 0)
    assert np.all((back.f_hz > 45.0) & (back.f_hz < 55.0))


@pytest.mark.parametrize("rate_hz", [1.0, 3.0, 10.0, 25.0, 50.0])
def test_traces_are_sampled_uniformly_at_the_requested_rate(rate_hz: float) -> None:
    tr = tracelib.generate("gb-2019-08-09", seconds=20.0, rate_hz=rate_hz)
    assert np.allclose(np.diff(tr.t_s), 1.0 / rate_hz, atol=2e-6)
    assert len(tr.t_s) == int(20 * rate_hz) + 1
    parse_trace(tracelib.to_csv(tr))  # 50 Hz is the SPEC §3.2 limit and must still parse


def test_csv_has_the_spec_header_and_no_padding_zeros() -> None:
    text = tracelib.to_csv(tracelib.generate("step-dc-l-sat", seconds=30.0, rate_hz=1.0))
    lines = text.splitlines()
    assert lines[0] == "t_s,f_hz"
    assert lines[1] == "0.0,50.0"
    assert "15.0,49.5" in lines
    assert text.endswith("\n")


# -- steps from the service definitions ----------------------------------------------------------
def _expected_points(name: str) -> dict[str, float]:
    defn = DEFAULT_DEFINITIONS[name]
    pts = defn.curve.points
    return {"deadband": defn.deadband_hz + tracelib.DEADBAND_MARGIN_HZ,
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
        assert abs(near - defn.trigger_hz) == pytest.approx(tracelib.DEADBAND_MARGIN_HZ)
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
    tr = tracelib.ramp("down", 120.0, 10.0, depth_hz=1.0, ramp_s=40.0)
    assert tr.f_at(30.0) == pytest.approx(49.5)
    assert tr.f_at(50.0) == 49.0
    assert tr.f_at(60.0) == 49.0
    with pytest.raises(TraceError, match="ramp_s"):
        tracelib.ramp("up", 60.0, 10.0, ramp_s=25.0)
    with pytest.raises(TraceError, match="depth_hz"):
        tracelib.ramp("up", 60.0, 10.0, depth_hz=6.0)


# -- GB normal operation -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_gb_normal_spends_less_time_at_50_hz_than_either_side(seed: int) -> None:
    df = tracelib.generate("gb-normal", seed=seed, rate_hz=1.0).f_hz - 50.0  # one hour
    assert np.mean(np.abs(df) <= 0.2) >= 0.99  # operational limits 49.8-50.2 Hz
    density_at_50 = np.mean(np.abs(df) <= 0.01) / 0.02
    density_either_side = np.mean((np.abs(df) >= 0.05) & (np.abs(df) <= 0.08)) / 0.06
    assert density_at_50 < 0.8 * density_either_side
    assert 0.045 <= float(np.std(df)) <= 0.085
    assert abs(float(np.mean(df))) < 0.04  # above and below 50 Hz in turn, not one-sided
    assert 0.3 <= np.mean(df > 0) <= 0.7


@pytest.mark.parametrize("seed", range(3))
def test_gb_normal_rate_of_change_stays_small(seed: int) -> None:
    f = tracelib.generate("gb-normal", seed=seed, rate_hz=1.0).f_hz
    rocof = np.abs(np.diff(f))  # Hz/s on 1-s samples
    assert np.percentile(rocof, 99) <= 0.01
    assert rocof.max() <= 0.02


def test_gb_normal_is_deterministic_for_a_seed_and_differs_between_seeds() -> None:
    a = tracelib.generate("gb-normal", seconds=600.0, seed=7)
    b = tracelib.generate("gb-normal", seconds=600.0, seed=7)
    c = tracelib.generate("gb-normal", seconds=600.0, seed=8)
    assert np.array_equal(a.f_hz, b.f_hz)
    assert not np.array_equal(a.f_hz, c.f_hz)


def test_gb_normal_longer_trace_extends_a_shorter_one_and_rate_keeps_the_curve() -> None:
    short = tracelib.generate("gb-normal", seconds=300.0, seed=3, rate_hz=10.0)
    long = tracelib.generate("gb-normal", seconds=900.0, seed=3, rate_hz=10.0)
    assert np.array_equal(long.f_hz[: len(short.f_hz)], short.f_hz)
    slow = tracelib.generate("gb-normal", seconds=300.0, seed=3, rate_hz=1.0)
    assert np.array_equal(short.f_hz[::10], slow.f_hz)


def test_deterministic_shapes_ignore_the_seed() -> None:
    for name in ("gb-2019-08-09", "step-dc-l-knee", "ramp-up", "ce-2021-01-08-se"):
        assert np.array_equal(tracelib.generate(name, seed=1).f_hz,
                              tracelib.generate(name, seed=2).f_hz)


# -- published events ----------------------------------------------------------------------------
def test_gb_2019_08_09_hits_the_published_landmarks() -> None:
    tr = tracelib.generate("gb-2019-08-09")
    first = _window(tr, 0.0, 50.0)
    assert float(first.min()) == pytest.approx(49.1, abs=0.02)
    t_first = float(tr.t_s[int(np.argmin(first))])
    assert 15.0 <= t_first <= 20.0
    assert np.allclose(_window(tr, 35.0, 58.0), 49.2, atol=0.03)  # the hold before the GT trips
    assert float(tr.f_hz.min()) == pytest.approx(48.8, abs=0.005)
    assert float(tr.t_s[int(np.argmin(tr.f_hz))]) == pytest.approx(76.0, abs=2.0)
    assert np.all(_window(tr, 0.0, 60.0) > 49.0)
    assert tr.f_at(200.0) < 49.9  # recovery takes minutes ...
    assert np.all(_window(tr, 300.0, 360.0) == 50.0)  # ... and is complete by 300 s
    assert tr.f_at(0.0) == 50.0


def test_ce_2021_01_08_north_west_falls_to_49_74_hz_then_settles_near_49_84() -> None:
    tr = tracelib.generate("ce-2021-01-08-nw")
    assert float(tr.f_hz.min()) == pytest.approx(49.74, abs=0.005)
    assert float(tr.t_s[int(np.argmin(tr.f_hz))]) <= 16.0
    assert np.allclose(_window(tr, 40.0, 300.0), 49.84, atol=0.01)
    assert np.all(tr.f_hz <= 50.0)


def test_ce_2021_01_08_south_east_rises_to_50_6_hz_then_settles_at_50_2_to_50_3() -> None:
    tr = tracelib.generate("ce-2021-01-08-se")
    assert float(tr.f_hz.max()) == pytest.approx(50.6, abs=0.005)
    assert float(tr.t_s[int(np.argmax(tr.f_hz))]) <= 16.0
    settled = _window(tr, 40.0, 300.0)
    assert np.all((settled >= 50.2) & (settled <= 50.3))
    assert np.all(tr.f_hz >= 50.0)


def test_longer_event_traces_hold_the_last_value() -> None:
    tr = tracelib.generate("ce-2021-01-08-nw", seconds=900.0)
    assert tr.duration_s == 900.0
    assert tr.f_at(900.0) == 49.84


# -- built-in events, errors ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["flat", "dc-l-dip", "dc-h-rise", "fcr-step"])
def test_builtin_events_are_in_the_library_and_match_builtin_event(name: str) -> None:
    ref = builtin_event(name)
    tr = tracelib.generate(name)
    assert tr.duration_s == ref.duration_s
    assert np.array_equal(tr.f_hz, ref.f_at_many(tr.t_s))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seconds": 0.0}, "seconds: must be within 1..86400"),
    ({"seconds": -5.0}, "seconds"),
    ({"seconds": float("nan")}, "seconds"),
    ({"seconds": float("inf")}, "seconds"),
    ({"seconds": 86_401.0}, "seconds"),
    ({"rate_hz": 0.0}, "rate_hz: must be within (0, 50] Hz"),
    ({"rate_hz": 60.0}, "rate_hz"),
    ({"seed": -1}, "seed: must be a non-negative integer"),
])
def test_bad_arguments_raise_trace_error(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(TraceError) as err:
        tracelib.generate("gb-normal", **kwargs)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(TraceError, match=r"unknown trace 'gb-2003'; known: gb-normal, ramp-down"):
        tracelib.generate("gb-2003")
