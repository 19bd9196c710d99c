"""Tests for controller/control/services.py: curves, signs, FCR eq. 7, contracts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.services import (
    DEFAULT_DEFINITIONS,
    SERVICE_NAMES,
    ContractedService,
    Curve,
    ServiceDefinition,
    ServiceError,
    ServiceState,
    contracts_from,
    expected_w,
    request_w,
    response_share,
    static_active,
    with_over_delivery,
)

# (service, freq_hz, expected signed share). Points: deadband edge, inside the first segment,
# knee, second segment, saturation and beyond, and the opposite direction (must be 0).
CASES = [
    # DC: deadband 15 mHz, 5 % at 0.2 Hz, 100 % at 0.5 Hz
    ("DC-L", 49.985, 0.0),
    ("DC-L", 49.9, -0.05 * 0.085 / 0.185),
    ("DC-L", 49.8, -0.05),
    ("DC-L", 49.65, -0.525),
    ("DC-L", 49.5, -1.0),
    ("DC-L", 48.0, -1.0),
    ("DC-L", 50.3, 0.0),
    ("DC-H", 50.015, 0.0),
    ("DC-H", 50.2, 0.05),
    ("DC-H", 50.35, 0.525),
    ("DC-H", 50.5, 1.0),
    ("DC-H", 51.0, 1.0),
    ("DC-H", 49.5, 0.0),
    # DM: 5 % at 0.1 Hz, 100 % at 0.2 Hz
    ("DM-L", 49.985, 0.0),
    ("DM-L", 49.9, -0.05),
    ("DM-L", 49.85, -0.525),
    ("DM-L", 49.8, -1.0),
    ("DM-L", 50.2, 0.0),
    ("DM-H", 50.1, 0.05),
    ("DM-H", 50.15, 0.525),
    ("DM-H", 50.3, 1.0),
    ("DM-H", 49.7, 0.0),
    # DR: linear to 100 % at 0.2 Hz
    ("DR-L", 49.985, 0.0),
    ("DR-L", 49.8925, -0.5),
    ("DR-L", 49.8, -1.0),
    ("DR-L", 50.1, 0.0),
    ("DR-H", 50.1075, 0.5),
    ("DR-H", 50.2, 1.0),
    ("DR-H", 49.8, 0.0),
    # FCR both ways: deadband 10 mHz, 100 % at 200 mHz, no over-delivery by default
    ("FCR", 50.0, 0.0),
    ("FCR", 49.99, 0.0),
    ("FCR", 50.01, 0.0),
    ("FCR", 49.895, -0.5),
    ("FCR", 50.105, 0.5),
    ("FCR", 49.8, -1.0),
    ("FCR", 50.2, 1.0),
    ("FCR", 49.0, -1.0),
    ("FCR", 51.0, 1.0),
]


@pytest.mark.parametrize(("name", "freq_hz", "expected"), CASES)
def test_default_curve_gives_pinned_share(name: str, freq_hz: float, expected: float) -> None:
    assert response_share(DEFAULT_DEFINITIONS[name], freq_hz) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("freq_hz", "expected"),
    [
        (50.105, 0.6),  # 0.5 x 1.2 above 50 Hz
        (50.18, 1.0),  # 0.8947 x 1.2 = 1.07, capped at Pmax as in eq. 7
        (50.3, 1.0),
        (49.895, -0.5),  # no over-delivery below 50 Hz
        (49.7, -1.0),
    ],
)
def test_fcr_with_eq7_over_delivery_boosts_high_side_capped_at_full(freq_hz: float,
                                                                    expected: float) -> None:
    fcr = with_over_delivery(DEFAULT_DEFINITIONS["FCR"], 0.2)
    assert response_share(fcr, freq_hz) == pytest.approx(expected, abs=1e-9)


def test_service_names_cover_the_spec_products() -> None:
    assert set(SERVICE_NAMES) == {"FCR", "DC-L", "DC-H", "DM-L", "DM-H", "DR-L", "DR-H", "SFFR"}
    assert tuple(DEFAULT_DEFINITIONS) == SERVICE_NAMES


@pytest.mark.parametrize(
    ("name", "start_s", "full_s", "sustain_s"),
    [("FCR", None, 30.0, 900.0), ("DC-L", 0.5, 1.0, 900.0), ("DM-H", 0.5, 1.0, 1800.0),
     ("DR-L", 2.0, 10.0, 3600.0)],
)
def test_default_timings_follow_spec_table(name: str, start_s: float | None, full_s: float,
                                           sustain_s: float) -> None:
    d = DEFAULT_DEFINITIONS[name]
    assert (d.start_s, d.full_s, d.sustain_s) == (start_s, full_s, sustain_s)


def test_several_contracts_add() -> None:
    contracts = contracts_from([("DC-L", 100.0), ("DR-L", 50.0), ("FCR", 10.0)])
    # at 49.8 Hz: DC-L 5 % of 100 kW, DR-L 100 % of 50 kW, FCR 100 % of 10 kW, all exporting
    assert request_w(contracts, 49.8) == pytest.approx(-(5_000 + 50_000 + 10_000))


def test_compound_name_expands_to_low_and_high_products() -> None:
    contracts = contracts_from([("DC", 100.0)])
    assert [c.definition.name for c in contracts] == ["DC-L", "DC-H"]
    assert request_w(contracts, 49.5) == pytest.approx(-100_000)
    assert request_w(contracts, 50.5) == pytest.approx(100_000)


def test_override_replaces_default_curve() -> None:
    flat = ServiceDefinition("DR-L", "low", 0.015, Curve(((0.015, 1.0),)), 2.0, 10.0, 3600.0)
    contracts = contracts_from([("DR-L", 1.0)], overrides={"DR-L": flat})
    assert request_w(contracts, 49.98) == pytest.approx(-1000.0)


@pytest.mark.parametrize(("pairs", "match"), [
    ([("XYZ", 1.0)], "unknown service 'XYZ'"),
    ([("dc-l", 1.0)], "unknown service"),
    ([("DC-L", 0.0)], "contract_kw"),
    ([("DC-L", float("nan"))], "contract_kw"),
])
def test_contracts_from_rejects_unknown_names_and_bad_volumes(pairs: list[tuple[str, float]],
                                                              match: str) -> None:
    with pytest.raises(ServiceError, match=match):
        contracts_from(pairs)


@pytest.mark.parametrize("points", [
    (),
    ((0.2, 0.0), (0.1, 1.0)),
    ((0.1, 0.0), (0.1, 1.0)),
    ((0.1, float("nan")),),
    ((float("inf"), 1.0),),
    ((-0.1, 0.0),),
    ((0.1, -1.0),),
])
def test_curve_rejects_bad_points(points: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ServiceError):
        Curve(points)


def test_memoryless_request_refuses_static_contracts_rather_than_drop_the_hold() -> None:
    with pytest.raises(ServiceError, match="SFFR"):
        request_w(contracts_from([("SFFR", 1.0)]), 49.6)


@given(st.lists(st.floats(44.0, 56.0), min_size=1, max_size=50))
def test_array_input_equals_scalar_input(freqs: list[float]) -> None:
    contracts = contracts_from([("FCR", 3.0), ("DC", 7.0), ("DM-L", 2.0), ("DR-H", 5.0)])
    arr = np.array(freqs)
    vec = request_w(contracts, arr)
    assert isinstance(vec, np.ndarray)
    assert vec.shape == arr.shape
    assert vec == pytest.approx([request_w(contracts, f) for f in freqs])
    for name, defn in DEFAULT_DEFINITIONS.items():
        shares = response_share(defn, arr)
        assert shares == pytest.approx([response_share(defn, f) for f in freqs]), name


@given(st.floats(40.0, 60.0), st.sampled_from(SERVICE_NAMES))
def test_share_is_bounded_and_signed_by_direction(freq_hz: float, name: str) -> None:
    defn = DEFAULT_DEFINITIONS[name]
    share = response_share(defn, freq_hz)
    assert -1.0 <= share <= 1.0
    if defn.direction == "low":
        assert share <= 0.0
    elif defn.direction == "high":
        assert share >= 0.0
    assert share * (freq_hz - 50.0) >= 0.0  # never against the deviation


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_array_of_pinned_points_equals_scalar_path(name: str) -> None:
    defn = with_over_delivery(DEFAULT_DEFINITIONS[name], 0.2)
    freqs = np.array(sorted({f for _, f, _ in CASES} | {50.0, 49.5, 50.5, 49.985, 50.015}))
    assert response_share(defn, freqs) == pytest.approx(
        [response_share(defn, float(f)) for f in freqs], abs=1e-12)


def test_nan_frequency_gives_nan_request_in_both_paths() -> None:
    contracts = contracts_from([("FCR", 1.0)])
    assert np.isnan(request_w(contracts, float("nan")))
    assert np.isnan(request_w(contracts, np.array([float("nan")]))[0])


def test_scalar_input_returns_python_float() -> None:
    value = request_w([ContractedService(DEFAULT_DEFINITIONS["FCR"], 1000.0)], 49.9)
    assert type(value) is float


# -- SFFR: static trigger-and-hold ---------------------------------------------------------------
SFFR = DEFAULT_DEFINITIONS["SFFR"]


def sffr(hold_s: float = 10.0, reset_after_s: float = 2.0,
         margin_hz: float = 0.05) -> ServiceDefinition:
    """SFFR with short times so a table fits on screen (defaults: 30 min, 30 s, 50 mHz)."""
    return replace(SFFR, sustain_s=hold_s, reset_after_s=reset_after_s,
                   reset_margin_hz=margin_hz)


def play(defn: ServiceDefinition, samples: list[tuple[float, float]]) -> list[float]:
    state = ServiceState([ContractedService(defn, 1000.0)])
    return [state.request_w(t, f) / 1000.0 for t, f in samples]


def test_sffr_defaults_follow_spec_and_neso_terms() -> None:
    assert (SFFR.trigger_hz, SFFR.full_s, SFFR.sustain_s) == (49.7, 30.0, 1800.0)
    assert SFFR.direction == "low"
    assert SFFR.is_static
    assert not DEFAULT_DEFINITIONS["DC-L"].is_static


def test_sffr_triggers_at_49_7_hz_not_above() -> None:
    assert play(sffr(), [(0.0, 49.71), (0.1, 49.7001), (0.2, 49.7)]) == [0.0, 0.0, -1.0]


def test_sffr_holds_full_export_after_the_frequency_recovers() -> None:
    out = play(sffr(hold_s=10.0), [(0.0, 50.0), (1.0, 49.6), (1.1, 50.0), (5.0, 50.0),
                                   (10.9, 50.0)])
    assert out == [0.0, -1.0, -1.0, -1.0, -1.0]


def test_sffr_resets_when_hold_elapsed_and_recovered_long_enough() -> None:
    # trigger at 1.0; hold ends at 11.0; recovered since 1.1 (>= 2 s by then) -> reset at 11.0
    out = play(sffr(hold_s=10.0, reset_after_s=2.0),
               [(1.0, 49.6), (1.1, 50.0), (10.99, 50.0), (11.0, 50.0), (12.0, 50.0)])
    assert out == [-1.0, -1.0, -1.0, 0.0, 0.0]


def test_sffr_stays_held_while_frequency_is_low_after_the_hold() -> None:
    out = play(sffr(hold_s=1.0), [(0.0, 49.6), (5.0, 49.6), (6.0, 49.72), (7.0, 49.8),
                                  (8.9, 49.8), (9.0, 49.8)])
    # 49.72 is above the trigger but inside the 50 mHz margin: not recovered
    assert out == [-1.0, -1.0, -1.0, -1.0, -1.0, 0.0]


def test_sffr_recovery_run_is_broken_by_a_dip_or_nan() -> None:
    out = play(sffr(hold_s=0.0, reset_after_s=2.0),
               [(0.0, 49.6), (1.0, 50.0), (2.0, 49.74), (3.0, 50.0), (4.0, float("nan")),
                (5.0, 50.0), (6.9, 50.0), (7.0, 50.0)])
    assert out[:7] == [-1.0] * 7
    assert out[7] == 0.0


def test_sffr_retriggers_after_a_reset() -> None:
    out = play(sffr(hold_s=1.0, reset_after_s=0.5),
               [(0.0, 49.6), (1.0, 50.0), (1.5, 50.0), (2.0, 49.65), (2.5, 50.0)])
    assert out == [-1.0, -1.0, 0.0, -1.0, -1.0]


def test_high_static_product_mirrors_the_low_one() -> None:
    high = replace(sffr(hold_s=1.0, reset_after_s=0.0), name="SFFR-H", direction="high",
                   trigger_hz=50.3)
    assert play(high, [(0.0, 50.29), (1.0, 50.3), (1.5, 50.0), (2.0, 50.0)]) == [
        0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(("changes", "match"), [
    ({"direction": "both"}, "one direction"),
    ({"trigger_hz": 60.0}, "45..55"),
    ({"reset_after_s": -1.0}, "reset_after_s"),
    ({"reset_margin_hz": float("nan")}, "reset_margin_hz"),
])
def test_bad_static_definitions_are_refused(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ServiceError, match=match):
        replace(SFFR, **changes)


def test_sffr_instantaneous_share_is_the_trigger_condition() -> None:
    assert response_share(SFFR, 49.7) == -1.0
    assert response_share(SFFR, 49.8) == 0.0
    assert np.isnan(response_share(SFFR, float("nan")))


def test_contracts_from_accepts_sffr_by_name() -> None:
    contracts = contracts_from([("SFFR", 1000.0)])
    assert [c.definition.name for c in contracts] == ["SFFR"]


def test_expected_w_adds_static_holds_to_dynamic_contracts() -> None:
    contracts = contracts_from([("SFFR", 2.0), ("DC-L", 1.0)])
    t = np.arange(0.0, 5.0, 1.0)
    f = np.array([50.0, 49.5, 50.0, 50.0, 50.0])
    assert expected_w(contracts, t, f) == pytest.approx([0.0, -3000.0, -2000.0, -2000.0,
                                                          -2000.0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 2.0), st.sampled_from(
           [49.5, 49.69, 49.7, 49.72, 49.75, 49.76, 50.0, float("nan")])),
           min_size=1, max_size=80),
       st.floats(0.0, 5.0), st.floats(0.0, 3.0), st.sampled_from([0.0, 0.05]))
def test_array_path_equals_scalar_path(steps: list[tuple[float, float]], hold_s: float,
                                       reset_after_s: float, margin_hz: float) -> None:
    defn = sffr(hold_s, reset_after_s, margin_hz)
    t = np.cumsum([dt for dt, _ in steps])
    f = np.array([fq for _, fq in steps])
    scalar = play(defn, list(zip(t.tolist(), f.tolist(), strict=True)))
    assert (-static_active(defn, t, f).astype(float)).tolist() == scalar
    assert expected_w([ContractedService(defn, 1000.0)], t, f).tolist() == [
        s * 1000.0 for s in scalar]
