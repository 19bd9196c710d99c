"""Tests for controller/tools/eligibility.py: seed Table 12 (paper), strict, the CLI.

The simulated mode (and the CLI in that mode) is tested in test_eligibility_sim.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from controller.control.services import DEFAULT_DEFINITIONS
from controller.control.vehicles import TABLE_11, VehicleModel
from controller.tools import eligibility as el

TIMINGS = {t.name: t for t in el.service_timings()}
ARIYA, TESLA, LEAF, ID3, ZOE = TABLE_11[1], TABLE_11[4], TABLE_11[2], TABLE_11[0], TABLE_11[5]

# Seed Table 12, all 24 cells: (vehicle, service) -> (eligible, EVs, reasons).
YES100 = (True, 100, ())
LTR = (False, None, ("LTR",))
TABLE_12 = {
    "VW ID3 Pro (2023)": (YES100, LTR, LTR, LTR),
    "Nissan Ariya (2022)": (YES100, (True, 152, ()), (True, 152, ()), YES100),
    "Nissan LEAF e+ (2022)": (YES100, LTR, LTR, LTR),
    "Skoda Enyaq iV 60 (2021)": (YES100, LTR, LTR, YES100),
    "Tesla M3 LRDM (2020)": (YES100, (False, None, ("LTR", "MTFL")),
                             (False, None, ("LTR", "MTFL")), (True, 137, ())),
    "Renault Zoe 40 (2018)": (YES100, LTR, LTR, LTR),
}
PAPER_CELLS = [(v, s, exp) for v, row in TABLE_12.items()
               for s, exp in zip(("SFFR", "DC", "DM", "DR"), row, strict=True)]


def _paper() -> dict[tuple[str, str], el.Verdict]:
    return {(v.vehicle, v.service): v
            for v in el.assess_all(el.default_groups(), el.service_timings(), "paper")}


def test_paper_mode_covers_exactly_the_24_cells_of_table_12() -> None:
    assert set(_paper()) == {(v, s) for v, s, _ in PAPER_CELLS}
    assert len(PAPER_CELLS) == 24


@pytest.mark.parametrize(("vehicle", "service", "expected"), PAPER_CELLS)
def test_paper_mode_reproduces_seed_table_12_cell(vehicle: str, service: str,
                                                  expected: tuple[bool, int | None,
                                                                  tuple[str, ...]]) -> None:
    v = _paper()[(vehicle, service)]
    assert (v.eligible, v.evs_needed, v.reasons) == expected


def test_service_timings_are_seed_table_10() -> None:
    got = {n: (t.start_s, t.full_s, t.sustain_s / 60, t.volume_kw) for n, t in TIMINGS.items()}
    assert got == {"SFFR": (30.0, 30.0, 30.0, 1000.0), "DC": (0.5, 1.0, 15.0, 1000.0),
                   "DM": (0.5, 1.0, 30.0, 1000.0), "DR": (2.0, 10.0, 60.0, 1000.0)}


def test_service_timings_fall_back_to_the_local_table_when_a_product_is_undefined() -> None:
    only_dc = {"DC-L": DEFAULT_DEFINITIONS["DC-L"]}
    assert el.service_timings(only_dc) == el.FALLBACK_TIMINGS


def test_mtfl_floor_is_the_only_rule_marking_tesla_dc_and_nothing_else() -> None:
    marked = {k for k, v in _paper().items() if "MTFL" in v.reasons}
    assert marked == {("Tesla M3 LRDM (2020)", "DC"), ("Tesla M3 LRDM (2020)", "DM")}
    # A floor just above the next-weakest 1 s ramp (Leaf, 5.75 kW) would mark more cells.
    loose = el.Limits(min_ev_power_kw=5.76)
    leaf = el.assess(el.FleetGroup("leaf", LEAF), TIMINGS["DC"], "paper", limits=loose)
    assert "MTFL" in leaf.reasons


@pytest.mark.parametrize(("model", "service", "session", "expected"), [
    # from idle: t_a is dead time inside T_full (Ariya 6.59 kW/s x 0.5 s = 3.295 kW)
    (ARIYA, "DC", "idle", (True, 304, ())),
    (TESLA, "DR", "idle", (True, 172, ())),  # 0.73 x (10 - 2) = 5.84 kW
    (ID3, "DC", "idle", (False, None, ("LTR", "MTFL"))),  # t_a 2.54 s > T_full: nothing by 1 s
    (ID3, "DR", "idle", (False, None, ("LTR",))),
    (TESLA, "SFFR", "idle", (True, 100, ())),
    # kept in an active session: t_c, headroom 10 - 1.38 kW
    (LEAF, "DC", "active", (True, 180, ())),  # 5.75 x 0.97 = 5.58 kW
    (ZOE, "DM", "active", (True, 182, ())),
    (TESLA, "DC", "active", (False, None, ("MTFL",))),  # 0.73 x 0.98 < 1 kW
    (ID3, "DC", "active", (False, None, ("LTR",))),  # t_c 0.78 s > 0.5 s
    (ARIYA, "SFFR", "active", (True, 117, ())),  # ceil(1000 / 8.62)
])
def test_strict_mode_cases(model: VehicleModel, service: str, session: el.Session,
                           expected: tuple[bool, int | None, tuple[str, ...]]) -> None:
    v = el.assess(el.FleetGroup(model.name, model), TIMINGS[service], "strict", session)
    assert (v.eligible, v.evs_needed, v.reasons) == expected


def test_strict_is_never_more_generous_than_paper_from_idle() -> None:
    for g in el.default_groups():
        for t in TIMINGS.values():
            assert (el.per_ev_power_kw(g, t, "strict")
                    <= el.per_ev_power_kw(g, t, "paper") + 1e-12)


def test_duration_fails_when_usable_energy_cannot_hold_the_power_for_the_delivery_length() -> None:
    zoe = el.FleetGroup("zoe", ZOE, soc_frac=0.2)  # 8.82 kWh < 10 kW x 60 min
    v = el.assess(zoe, TIMINGS["DR"], "paper")
    assert v.reasons == ("LTR", "duration")
    ariya = el.FleetGroup("ariya", ARIYA, soc_frac=0.2)  # 17.4 kWh >= 10 kWh
    assert el.assess(ariya, TIMINGS["DR"], "paper").eligible
    floor = el.Limits(soc_min_frac=0.1)  # 8.7 kWh usable
    assert el.assess(ariya, TIMINGS["DR"], "paper", limits=floor).reasons == ("duration",)


def test_volume_fails_when_the_group_is_too_small() -> None:
    small = el.FleetGroup("ariya", ARIYA, count=151)
    assert el.assess(small, TIMINGS["DC"], "paper").reasons == ("volume",)
    assert el.assess(replace(small, count=152), TIMINGS["DC"], "paper").evs_needed == 152


def test_fleet_row_combines_groups_strongest_first() -> None:
    groups = [el.FleetGroup("ariya", ARIYA, count=60), el.FleetGroup("tesla", TESLA, count=100),
              el.FleetGroup("leaf", LEAF, count=500)]
    rows = {(v.vehicle, v.service): v
            for v in el.assess_all(groups, [TIMINGS["DR"]], "paper")}
    assert rows[("ariya", "DR")].reasons == ("volume",)
    assert rows[("leaf", "DR")].reasons == ("LTR",)
    fleet = rows[("fleet (all groups)", "DR")]
    # 60 Ariyas x 10 kW = 600 kW, then ceil(400 / 7.3) = 55 Teslas
    assert (fleet.eligible, fleet.evs_needed) == (True, 115)
    short = el.assess_all(groups[1:], [TIMINGS["DC"]], "paper")[-1]
    assert (short.eligible, short.reasons) == (False, ("LTR", "MTFL", "volume"))


def test_evs_for_ignores_float_dust() -> None:
    assert el.evs_for(1000.0, 10.000000000001) == 100
    assert el.evs_for(1000.0, 6.59) == 152


def test_format_table_has_a_row_per_vehicle_and_seed_style_cells() -> None:
    text = el.format_table(el.assess_all(el.default_groups(), el.service_timings()), "paper")
    lines = text.splitlines()
    assert lines[1].split() == ["vehicle", "SFFR", "DC", "DM", "DR"]
    assert len(lines) == 2 + len(TABLE_11)
    tesla = next(line for line in lines if line.startswith("Tesla"))
    assert "No (LTR, MTFL)" in tesla
    assert "Yes (137)" in tesla


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_json_is_the_spec_list_of_24_objects(capsys: pytest.CaptureFixture[str]) -> None:
    assert el.main(["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 24
    for row in rows:
        assert set(row) == {"vehicle", "service", "eligible", "evs_needed", "reasons"}
        assert row["service"] in {"SFFR", "DC", "DM", "DR"}
        assert set(row["reasons"]) <= {"LTR", "MTFL", "duration", "volume"}
        assert (row["evs_needed"] is None) == (not row["eligible"])
    tesla_dc = next(r for r in rows if r["vehicle"].startswith("Tesla") and r["service"] == "DC")
    assert tesla_dc == {"vehicle": "Tesla M3 LRDM (2020)", "service": "DC", "eligible": False,
                        "evs_needed": None, "reasons": ["LTR", "MTFL"]}


def test_cli_default_output_is_a_human_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert el.main([]) == 0
    out = capsys.readouterr().out
    assert "Yes (152)" in out
    assert "No (LTR, MTFL)" in out


def test_cli_strict_prints_idle_and_active_tables_and_json_for_one_session(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert el.main(["--mode", "strict"]) == 0
    out = capsys.readouterr().out
    assert "from idle" in out
    assert "active session" in out
    assert el.main(["--mode", "strict", "--session", "active", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    leaf_dc = next(r for r in rows if r["vehicle"].startswith("Nissan LEAF")
                   and r["service"] == "DC")
    assert (leaf_dc["eligible"], leaf_dc["evs_needed"]) == (True, 180)


def test_cli_reads_a_fleet_file_and_checks_volume(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[[group]]\nmodel = "Nissan Ariya"\ncount = 120\ncharger_kw = 10\n'
                     'soc = 0.9\n')
    assert el.main(["--fleet", str(fleet), "--json"]) == 0
    rows = {r["service"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["DC"]["reasons"] == ["volume"]  # 120 < 152
    assert rows["DR"]["evs_needed"] == 100


def test_cli_bad_fleet_file_exits_2_with_one_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[[group]]\nmodel = "Trabant"\ncount = 1\ncharger_kw = 10\nsoc = 1\n')
    assert el.main(["--fleet", str(fleet)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Trabant" in err


@pytest.mark.parametrize("argv", [["--mode", "fast"], ["--target", "0"], ["--soc-min", "1"],
                                  ["--max-evs", "0"]])
def test_cli_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert el.main(argv) == 2
    assert capsys.readouterr().err


def test_add_subparser_registers_eligibility() -> None:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    el.add_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eligibility", "--mode", "strict", "--json"])
    assert args.func is el.run
    assert (args.mode, args.json) == ("strict", True)
