"""`[[vehicle]]` tables (controller/settings_vehicles.py) and `[energy] departure_margin_s`."""

from __future__ import annotations

from typing import Any

import pytest

from controller.settings import VehicleConfig, load_settings, parse_settings
from controller.timefmt import parse_rfc3339_s

from .settings_docs import EXAMPLE, assert_one_line_error, minimal_doc


def with_vehicles(*rows: dict[str, Any]) -> dict[str, Any]:
    doc = minimal_doc()
    doc["vehicle"] = list(rows)
    return doc


def test_vehicles_are_parsed_with_their_optional_figures() -> None:
    s = parse_settings(with_vehicles(
        {"id_token": "04E91A2B3C4D80", "model": "nissan leaf", "capacity_kwh": 40,
         "soc_min": 0.3, "soc_max": 0.9, "departure_soc": 0.85},
        {"id_token": "0a1b2c3d4e5f", "model": "Tesla M3"}))
    leaf, tesla = s.vehicles
    assert leaf == VehicleConfig("04E91A2B3C4D80", "nissan leaf", 40.0, 0.3, 0.9, 0.85)
    assert tesla == VehicleConfig("0a1b2c3d4e5f", "Tesla M3")
    assert tesla.key == "0a1b2c3d4e5f" == VehicleConfig("0A1B2C3D4E5F", "x").key
    assert parse_settings(minimal_doc()).vehicles == ()


def test_the_example_config_documents_a_vehicle_and_the_departure_margin() -> None:
    s = load_settings(EXAMPLE)
    assert len(s.vehicles) == 1
    assert (s.vehicles[0].departure_soc, s.vehicles[0].departure) == (0.85, "06:30")
    assert s.energy.departure_margin_s == 900.0
    assert s.site_timezone == "Europe/London"


@pytest.mark.parametrize(("row", "message"), [
    ({"model": "Nissan Ariya"}, "vehicle[0].id_token"),
    ({"id_token": "", "model": "Nissan Ariya"}, "vehicle[0].id_token"),
    ({"id_token": "x" * 37, "model": "Nissan Ariya"}, "1-36 characters"),
    ({"id_token": "A1"}, "vehicle[0].model"),
    ({"id_token": "A1", "model": "Trabant"}, "unknown vehicle model 'Trabant'"),
    ({"id_token": "A1", "model": "Nissan Ariya", "colour": "red"}, "colour"),
    ({"id_token": "A1", "model": "Nissan Ariya", "capacity_kwh": 0}, "capacity_kwh"),
    ({"id_token": "A1", "model": "Nissan Ariya", "departure_soc": 1.5}, "departure_soc"),
    ({"id_token": "A1", "model": "Nissan Ariya", "soc_max": 0.8, "departure_soc": 0.9},
     "above its soc_max"),
    ({"id_token": "A1", "model": "Nissan Ariya", "soc_min": 0.8, "soc_max": 0.5},
     "soc_min: must be below soc_max"),
    ({"id_token": "A1", "model": "Nissan Ariya", "departure": "6:30"},
     "vehicle[0].departure: expected a 24-hour time"),
])
def test_bad_vehicles_are_refused_in_one_line(row: dict[str, Any], message: str) -> None:
    assert_one_line_error(lambda doc: doc.update(vehicle=[row]), message)


def test_id_tokens_are_unique_ignoring_case() -> None:
    assert_one_line_error(lambda doc: doc.update(vehicle=[
        {"id_token": "ab12", "model": "VW ID3"}, {"id_token": "AB12", "model": "Nissan Ariya"}]),
        "vehicle[1].id_token: 'AB12' is already vehicle[0]'s")
    assert_one_line_error(lambda doc: doc.update(vehicle={"id_token": "a"}), "array of tables")


@pytest.mark.parametrize("margin", [-1, 86_401, "soon"])
def test_departure_margin_is_checked(margin: object) -> None:
    assert_one_line_error(lambda doc: doc.update(energy={"departure_margin_s": margin}),
                          "energy.departure_margin_s")


@pytest.mark.parametrize(("text", "unix_s"), [
    ("2026-11-27T04:00:00Z", 1_795_752_000.0),
    ("2026-11-27T05:00:00.500+01:00", 1_795_752_000.5),
    ("2026-11-27T04:00:00", None),  # no offset: a local time of unknown zone
    ("next tuesday", None),
])
def test_rfc3339_departure_times_parse_only_with_an_offset(text: str,
                                                          unix_s: float | None) -> None:
    assert parse_rfc3339_s(text) == unix_s
