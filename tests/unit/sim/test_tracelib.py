"""Trace library: every named trace is a valid trace CSV, the built-in events are in it,
arguments and names are checked, and only gb-normal uses the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim_chargers import tracelib
from sim_chargers.traces import TraceError, builtin_event, load_trace, parse_trace


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


def test_deterministic_shapes_ignore_the_seed() -> None:
    for name in ("gb-2019-08-09", "step-dc-l-knee", "ramp-up", "ce-2021-01-08-se"):
        assert np.array_equal(tracelib.generate(name, seed=1).f_hz,
                              tracelib.generate(name, seed=2).f_hz)


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
