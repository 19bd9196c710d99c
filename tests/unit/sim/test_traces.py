"""Trace CSV reader and built-in frequency events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim_chargers.traces import TraceError, builtin_event, load_trace, parse_trace


def test_trace_is_read_with_zero_order_hold() -> None:
    tr = parse_trace("t_s,f_hz\n0,50.0\n1.0,49.9\n2.5,50.1\n")
    assert tr.duration_s == 2.5
    assert tr.f_at(-1.0) == 50.0
    assert tr.f_at(0.99) == 50.0
    assert tr.f_at(1.0) == 49.9
    assert tr.f_at(2.4) == 49.9
    assert tr.f_at(100.0) == 50.1
    assert tr.f_at_many([0.5, 1.5, 3.0]).tolist() == [50.0, 49.9, 50.1]


def test_crlf_bom_and_trailing_blank_lines_are_accepted() -> None:
    tr = parse_trace("\ufefft_s,f_hz\r\n0,50\r\n0.02,49.98\r\n\r\n")
    assert tr.f_hz.tolist() == [50.0, 49.98]


@pytest.mark.parametrize(("text", "message"), [
    ("time,freq\n0,50\n", "x.csv:1: header must be exactly 't_s,f_hz'"),
    ("", "x.csv:1: header"),
    ("t_s,f_hz\n", "x.csv:2: no samples"),
    ("t_s,f_hz\n0,50\n1,abc\n", "x.csv:3: not numbers"),
    ("t_s,f_hz\n0,50\n1,50,3\n", "x.csv:3: expected 2 fields"),
    ("t_s,f_hz\n0,50\n1,nan\n", "x.csv:3: values must be finite"),
    ("t_s,f_hz\n0,50\n1,inf\n", "x.csv:3: values must be finite"),
    ("t_s,f_hz\n0,50\n1,50\n1,50\n", "x.csv:4: t_s must increase strictly"),
    ("t_s,f_hz\n0,50\n1,50\n0.5,50\n", "x.csv:4: t_s must increase strictly"),
    ("t_s,f_hz\n0,50\n0.01,50\n", "x.csv:3: samples 0.01 s apart; the rate limit is 50 Hz"),
    ("t_s,f_hz\n-1,50\n", "x.csv:2: t_s must start at >= 0"),
])
def test_bad_traces_are_rejected_with_the_line_number(text: str, message: str) -> None:
    with pytest.raises(TraceError) as err:
        parse_trace(text, "x.csv")
    assert message in str(err.value)


def test_load_trace_reads_a_file_and_reports_a_missing_one(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("t_s,f_hz\n0,50\n0.02,49.9\n")
    assert load_trace(f).f_at(1.0) == 49.9
    with pytest.raises(TraceError, match="no such trace file"):
        load_trace(tmp_path / "nope.csv")


def test_dc_l_dip_holds_49_5_hz_for_20_s_after_5_s_of_nominal() -> None:
    tr = builtin_event("dc-l-dip")
    assert [tr.f_at(t) for t in (0, 4.99, 5.0, 24.99, 25.0, 29.0)] == [
        50.0, 50.0, 49.5, 49.5, 50.0, 50.0]
    assert tr.duration_s == 30.0


def test_dc_h_rise_mirrors_the_dip_and_durations_are_parameters() -> None:
    tr = builtin_event("dc-h-rise", pre_s=1.0, hold_s=2.0, post_s=3.0)
    assert [tr.f_at(t) for t in (0.5, 1.5, 3.5)] == [50.0, 50.5, 50.0]
    assert tr.duration_s == 6.0


def test_fcr_step_and_flat() -> None:
    fcr = builtin_event("fcr-step")
    assert fcr.f_at(6.0) == 49.8
    assert fcr.f_at(64.9) == 49.8
    assert fcr.f_at(65.0) == 50.0
    flat = builtin_event("flat")
    assert np.all(flat.f_hz == 50.0)


def test_a_ramped_event_is_sampled_at_50_hz_and_monotonic() -> None:
    tr = builtin_event("dc-l-dip", ramp_s=1.0)
    assert np.all(np.diff(tr.t_s) >= 0.02 - 1e-9)
    assert tr.f_at(5.5) == pytest.approx(49.75)
    assert tr.f_at(6.0) == 49.5
    down = tr.f_hz[(tr.t_s > 5.0) & (tr.t_s <= 6.0)]
    assert np.all(np.diff(down) < 0)


def test_unknown_event_lists_the_known_ones() -> None:
    with pytest.raises(TraceError, match="known: flat, dc-l-dip, dc-h-rise, fcr-step"):
        builtin_event("blackout")
    with pytest.raises(TraceError, match="hold_s"):
        builtin_event("flat", hold_s=-1)
