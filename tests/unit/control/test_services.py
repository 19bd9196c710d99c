"""Tests for controller/control/services.py: curves, signs, FCR eq. 7, contracts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.control.services import (
    DEFAULT_DEFINITIONS,
    SERVICE_NAMES,
    ContractedService,
    Curve,
    ServiceDefinition,
    ServiceError,
    contracts_from,
    request_w,
    response_share,
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


def test_service_names_cover_the_spec_products_but_not_sffr_yet() -> None:
    assert set(SERVICE_NAMES) == {"FCR", "DC-L", "DC-H", "DM-L", "DM-H", "DR-L", "DR-H"}
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
    ([("SFFR", 1.0)], "unknown service 'SFFR'"),
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


def test_static_trigger_service_is_refused_not_faked() -> None:
    with pytest.raises(ServiceError, match="SFFR"):
        ServiceDefinition("SFFR", "low", 0.0, Curve(((0.0, 1.0),)), None, 30.0, 1800.0,
                          trigger_hz=49.7)


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
