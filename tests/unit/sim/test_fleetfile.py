"""Fleet TOML -> per-vehicle arrays; every bad input names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim_chargers.fleetfile import FleetFileError, load_fleet, parse_fleet

CONFIG = Path(__file__).resolve().parents[3] / "config"


def group(**kw: Any) -> dict[str, Any]:
    g: dict[str, Any] = {"model": "Nissan Ariya", "count": 2, "charger_kw": 11, "soc": 0.6}
    g.update(kw)
    return g


def test_groups_expand_to_per_vehicle_arrays_from_the_library() -> None:
    spec = parse_fleet({"group": [group(), group(model="tesla m3", count=1, soc=1.0)]})
    assert spec.n == 3
    assert spec.model_names[0] == "Nissan Ariya (2022)"
    assert spec.model_names[2] == "Tesla M3 LRDM (2020)"
    assert spec.params.t_a_s.tolist() == [0.5, 0.5, 2.0]
    assert spec.params.ramp_up_w_s[2] == pytest.approx(730.0)
    assert spec.params.capacity_wh[0] == pytest.approx(87_000.0)
    assert spec.params.max_charge_w.tolist() == [11_000.0] * 3
    assert spec.params.max_discharge_w.tolist() == [11_000.0] * 3
    assert spec.soc_frac.tolist() == [0.6, 0.6, 1.0]
    assert spec.params.efficiency.tolist() == [1.0] * 3


def test_overrides_replace_model_figures() -> None:
    spec = parse_fleet({"group": [group(t_a_s=4.0, ramp_down_kw_s=3.3, capacity_kwh=40,
                                        t_zero_cross_s=0.7, t_b_s=1, t_d_s=2)]})
    assert spec.params.t_a_s[0] == 4.0
    assert spec.params.ramp_down_w_s[0] == pytest.approx(3300.0)
    assert spec.params.capacity_wh[0] == pytest.approx(40_000.0)
    assert spec.params.t_zero_s[0] == 0.7
    assert spec.models[0].t_d_s == 2


def test_variation_is_seeded_and_bounded() -> None:
    doc = {"group": [group(count=200)]}
    a = parse_fleet(doc, variation_frac=0.2, seed=7)
    b = parse_fleet(doc, variation_frac=0.2, seed=7)
    c = parse_fleet(doc, variation_frac=0.2, seed=8)
    assert np.array_equal(a.params.t_a_s, b.params.t_a_s)
    assert not np.array_equal(a.params.t_a_s, c.params.t_a_s)
    ratio = a.params.ramp_up_w_s / 6590.0
    assert ratio.min() >= 0.8
    assert ratio.max() <= 1.2
    assert ratio.std() > 0.05
    assert np.all(a.params.capacity_wh == 87_000.0)


@pytest.mark.parametrize(("doc", "message"), [
    ({"group": [group(colour="red")]}, "unknown key 'group[0].colour'"),
    ({"group": [group(model="Trabant")]}, "group[0].model: unknown vehicle model 'Trabant'; "
                                          "known models: 'VW ID3 Pro (2023)'"),
    ({"group": [group(count=0)]}, "group[0].count"),
    ({"group": [group(count=True)]}, "group[0].count"),
    ({"group": [group(soc=1.5)]}, "group[0].soc"),
    ({"group": [group(charger_kw=0)]}, "group[0].charger_kw"),
    ({"group": [group(ramp_up_kw_s=0)]}, "group[0].ramp_up_kw_s"),
    ({"group": [group(t_a_s=float("nan"))]}, "group[0].t_a_s"),
    ({"group": [{"model": "Nissan Ariya", "count": 1, "soc": 0.5}]}, "group[0].charger_kw"),
    ({"group": []}, "group: at least one"),
    ({"vehicles": []}, "unknown key 'vehicles'"),
])
def test_bad_fleet_files_name_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(FleetFileError) as err:
        parse_fleet(doc)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_load_fleet_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "fleet.toml"
    f.write_text('[[group]]\nmodel = "Renault Zoe"\ncount = 1\ncharger_kw = 11\nsoc = 0.5\nx = 1\n')
    with pytest.raises(FleetFileError, match=r"fleet\.toml: unknown key 'group\[0\]\.x'"):
        load_fleet(f)
    with pytest.raises(FleetFileError, match="no such fleet file"):
        load_fleet(tmp_path / "missing.toml")
    f.write_text("[[group]\n")
    with pytest.raises(FleetFileError, match="not valid TOML"):
        load_fleet(f)


def test_shipped_fleet_files_load() -> None:
    example = load_fleet(CONFIG / "fleet.example.toml")
    mixed = load_fleet(CONFIG / "fleet.mixed.toml")
    assert example.n == 20
    assert len(set(example.model_names)) == 6
    assert np.all(example.soc_frac == 0.6)
    assert np.all(example.charger_w == 11_000.0)
    assert mixed.n == 60
    assert all(mixed.model_names.count(m) == 10 for m in set(mixed.model_names))
    assert np.all(mixed.soc_frac == 0.5)
