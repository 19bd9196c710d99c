"""Tests for controller/control/vehicles.py: the chemistry field added for ageing."""

from __future__ import annotations

from dataclasses import replace

from controller.control.ageing import TABLE_3, params_for
from controller.control.vehicles import CHEMISTRIES, NEUTRAL, TABLE_11, lookup


def test_every_library_vehicle_has_a_chemistry_with_ageing_parameters() -> None:
    for m in (*TABLE_11, NEUTRAL):
        assert m.chemistry in CHEMISTRIES
        assert params_for(m.chemistry) in TABLE_3.values()
    by_name = {m.name: m.chemistry for m in TABLE_11}
    assert by_name["Tesla M3 LRDM (2020)"] == "NCA"
    assert by_name["Nissan LEAF e+ (2022)"] == "NMC"  # seed Table 2: NMC523
    assert NEUTRAL.chemistry == "NMC"


def test_chemistry_defaults_to_nmc_and_survives_overrides() -> None:
    ariya = lookup("Nissan Ariya")
    assert ariya.chemistry == "NMC"
    assert replace(ariya, t_a_s=1.0).chemistry == "NMC"
