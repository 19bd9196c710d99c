"""Tests for controller/control/meter.py: MeterGuard validation, freshness and states."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.control.meter import REASONS, MeterGuard, MeterSampleError

T0 = 1_700_000_000.0


def sample(t: float = T0, f_hz: object = 50.0, **extra: object) -> bytes:
    return orjson.dumps({"t": t, "f_hz": f_hz, **extra})


def test_good_sample_is_accepted_with_receive_time() -> None:
    guard = MeterGuard()
    s = guard.accept(sample(f_hz=49.95, p_w=-1200.5), recv_s=10.0)
    assert (s.t_wall_s, s.f_hz, s.p_w, s.recv_s) == (T0, 49.95, -1200.5, 10.0)
    assert guard.freq_hz(10.1) == 49.95
    assert guard.state(10.1) == "ok"
    assert guard.accepted == 1


def test_integer_numbers_and_null_power_are_accepted() -> None:
    s = MeterGuard().accept(b'{"t": 1700000000, "f_hz": 50, "p_w": null}', 0.0)
    assert (s.t_wall_s, s.f_hz, s.p_w) == (1_700_000_000.0, 50.0, None)


REJECTS = [
    (b"not json", "not_json"),
    (b"", "not_json"),
    (b"\xff\xfe", "not_json"),
    (b"[50.0]", "not_object"),
    (b"50.0", "not_object"),
    (b'{"f_hz": 50.0}', "missing_field"),
    (b'{"t": 1700000000.0}', "missing_field"),
    (b'{"t": 1700000000.0, "f_hz": "50.0"}', "wrong_type"),
    (b'{"t": 1700000000.0, "f_hz": true}', "wrong_type"),
    (b'{"t": true, "f_hz": 50.0}', "wrong_type"),
    (b'{"t": 1700000000.0, "f_hz": 50.0, "p_w": "1"}', "wrong_type"),
    (b'{"t": 1700000000.0, "f_hz": 50.0, "p_w": false}', "wrong_type"),
    (b'{"t": 1700000000.0, "f_hz": NaN}', "non_finite"),
    (b'{"t": 1700000000.0, "f_hz": Infinity}', "non_finite"),
    (b'{"t": 1700000000.0, "f_hz": -Infinity}', "non_finite"),
    (b'{"t": NaN, "f_hz": 50.0}', "non_finite"),
    (b'{"t": 1700000000.0, "f_hz": 1e999}', "non_finite"),
    (b'{"t": 1700000000.0, "f_hz": 50.0, "p_w": -1e999}', "non_finite"),
    (b'{"t": 1700000000.0, "f_hz": 44.99}', "implausible"),
    (b'{"t": 1700000000.0, "f_hz": 55.01}', "implausible"),
    (b'{"t": 1700000000.0, "f_hz": 0}', "implausible"),
]


@pytest.mark.parametrize(("raw", "reason"), REJECTS)
def test_bad_sample_is_rejected_with_reason_and_counted(raw: bytes, reason: str) -> None:
    guard = MeterGuard()
    with pytest.raises(MeterSampleError) as info:
        guard.accept(raw, recv_s=1.0)
    assert info.value.reason == reason
    assert reason in str(info.value)
    assert guard.rejects[reason] == 1
    assert guard.freq_hz(1.0) is None
    assert guard.last is None


def test_sample_whose_time_does_not_advance_is_rejected() -> None:
    guard = MeterGuard()
    guard.accept(sample(T0, 50.0), 1.0)
    for t in (T0, T0 - 0.02):
        with pytest.raises(MeterSampleError) as info:
            guard.accept(sample(t, 49.0), 1.02)
        assert info.value.reason == "not_advancing"
    assert guard.freq_hz(1.03) == 50.0  # the duplicates never drive anything
    assert guard.rejects["not_advancing"] == 2


def test_sample_time_jumping_ahead_of_receive_clock_is_rejected() -> None:
    guard = MeterGuard(max_clock_skew_s=1.0)
    guard.accept(sample(T0), 1.0)
    with pytest.raises(MeterSampleError) as info:
        guard.accept(sample(T0 + 1e6), 1.02)
    assert info.value.reason == "time_jump"


def test_meter_with_stepped_clock_re_anchors_after_stale_window() -> None:
    guard = MeterGuard(stale_after_s=0.5)
    guard.accept(sample(T0 + 100.0), 1.0)  # clock was 100 s ahead, then stepped back
    with pytest.raises(MeterSampleError):
        guard.accept(sample(T0), 1.1)
    assert guard.accept(sample(T0 + 0.02, 49.9), 1.6).f_hz == 49.9
    assert guard.state(1.6) == "ok"


@pytest.mark.parametrize(
    ("now_s", "state", "freq"),
    [(10.0, "ok", 49.9), (10.5, "ok", 49.9), (10.5001, "stale", None), (100.0, "stale", None)],
)
def test_sample_goes_stale_after_stale_after_s(now_s: float, state: str,
                                               freq: float | None) -> None:
    guard = MeterGuard(stale_after_s=0.5)
    guard.accept(sample(f_hz=49.9), recv_s=10.0)
    assert guard.state(now_s) == state
    assert guard.freq_hz(now_s) == freq


def test_guard_without_any_datagram_reports_no_data() -> None:
    guard = MeterGuard()
    assert guard.state(123.0) == "no_data"
    assert guard.freq_hz(123.0) is None


def test_stream_of_rejects_after_good_data_reports_invalid_then_stale() -> None:
    guard = MeterGuard(stale_after_s=0.5)
    guard.accept(sample(T0, 50.0), 0.0)
    for i in range(1, 20):  # meter keeps talking, but only garbage
        with pytest.raises(MeterSampleError):
            guard.accept(b"garbage", 0.1 * i)
    assert guard.state(1.9) == "invalid"  # good sample is 1.9 s old, garbage 0 s
    assert guard.freq_hz(1.9) is None
    assert guard.state(2.5) == "stale"  # garbage stopped too
    assert guard.rejects["not_json"] == 19


def test_single_garbled_datagram_does_not_interrupt_a_good_stream() -> None:
    guard = MeterGuard(stale_after_s=0.5)
    guard.accept(sample(T0, 49.95), 0.0)
    with pytest.raises(MeterSampleError):
        guard.accept(b"{", 0.02)
    assert guard.state(0.03) == "ok"
    assert guard.freq_hz(0.03) == 49.95


def test_only_rejects_ever_reports_invalid() -> None:
    guard = MeterGuard()
    with pytest.raises(MeterSampleError):
        guard.accept(sample(f_hz=60.0), 5.0)
    assert guard.state(5.1) == "invalid"
    assert isinstance(guard.last_error, MeterSampleError)
    assert guard.last_error.reason == "implausible"


def test_guard_recovers_when_good_samples_return() -> None:
    guard = MeterGuard(stale_after_s=0.5)
    guard.accept(sample(T0, 50.0), 0.0)
    assert guard.state(3.0) == "stale"
    guard.accept(sample(T0 + 3.0, 49.8), 3.0)
    assert guard.state(3.1) == "ok"
    assert guard.freq_hz(3.1) == 49.8


@given(st.binary(max_size=200))
def test_any_bytes_are_either_a_valid_sample_or_a_documented_reject(raw: bytes) -> None:
    guard = MeterGuard()
    reason = None
    try:
        s = guard.accept(raw, 0.0)
    except MeterSampleError as exc:
        reason = exc.reason
    if reason is None:
        assert 45.0 <= s.f_hz <= 55.0
    else:
        assert reason in REASONS
        assert guard.freq_hz(0.0) is None


@given(st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True),
                          st.one_of(st.floats(), st.booleans(), st.text(max_size=3))),
                max_size=30))
def test_freq_is_always_none_or_finite_and_plausible(values: list[tuple[float, object]]) -> None:
    guard = MeterGuard()
    for i, (t, f) in enumerate(values):
        raw = orjson.dumps({"t": t, "f_hz": f}, option=orjson.OPT_SERIALIZE_NUMPY)
        with contextlib.suppress(MeterSampleError):
            guard.accept(raw, 0.01 * i)
        got = guard.freq_hz(0.01 * i)
        assert got is None or 45.0 <= got <= 55.0
