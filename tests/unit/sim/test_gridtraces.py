"""Grid traces: gb-normal has the targeted statistics and is reproducible, the published
events hit their landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from sim_chargers import tracelib
from sim_chargers.traces import Trace


def _window(tr: Trace, t0: float, t1: float) -> np.ndarray:
    return tr.f_hz[(tr.t_s >= t0) & (tr.t_s <= t1)]


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
