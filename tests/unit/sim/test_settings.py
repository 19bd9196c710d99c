"""Sim config TOML: defaults, paths, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim_chargers.settings import SimConfigError, load_sim_settings, parse_sim_settings

CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_minimal_config_gets_documented_defaults() -> None:
    s = parse_sim_settings({"sim": {"fleet": "f.toml"}}, Path("/cfg"))
    assert s.fleet == Path("/cfg/f.toml")
    assert s.plant_step_s == 0.05
    assert s.meter_values_period_s == 5.0
    assert s.seed == 0
    assert s.csms.url == "ws://127.0.0.1:9000"
    assert s.csms.id_format == "CP{:03d}"
    assert s.csms.discharge is True
    assert s.csms.password is None
    assert s.site_meter.protocol == "udp"
    assert s.site_meter.rate_hz == 10.0
    assert s.frequency.event == "flat"
    assert s.frequency.trace is None


def test_shipped_example_config_loads() -> None:
    s = load_sim_settings(CONFIG / "sim.example.toml")
    assert s.fleet == CONFIG / "fleet.example.toml"
    assert s.frequency.event == "dc-l-dip"


def test_trace_path_resolves_from_the_config_directory() -> None:
    s = parse_sim_settings({"sim": {"fleet": "f.toml"}, "frequency": {"trace": "t.csv"}},
                           Path("/cfg"))
    assert s.frequency.trace == Path("/cfg/t.csv")
    assert s.frequency.event is None


@pytest.mark.parametrize(("doc", "message"), [
    ({"sim": {}}, "sim.fleet: required"),
    ({"sim": {"fleet": "f", "speed": 1}}, "unknown key 'sim.speed'"),
    ({"sim": {"fleet": "f"}, "extra": {}}, "unknown key 'extra'"),
    ({"sim": {"fleet": "f", "plant_step_s": 0}}, "sim.plant_step_s"),
    ({"sim": {"fleet": "f"}, "csms": {"url": "http://x"}}, "csms.url"),
    ({"sim": {"fleet": "f"}, "csms": {"password": "short"}}, "csms.password"),
    ({"sim": {"fleet": "f"}, "csms": {"id_format": "CP{:q}"}}, "csms.id_format"),
    ({"sim": {"fleet": "f"}, "csms": {"id_format": "a/{}"}}, "csms.id_format"),
    ({"sim": {"fleet": "f"}, "csms": {"discharge": "yes"}}, "csms.discharge"),
    ({"sim": {"fleet": "f"}, "site_meter": {"rate_hz": 100}}, "site_meter.rate_hz"),
    ({"sim": {"fleet": "f"}, "site_meter": {"protocol": "mqtt"}}, "site_meter.protocol"),
    ({"sim": {"fleet": "f"}, "frequency": {"event": "x"}}, "frequency.event: unknown event"),
    ({"sim": {"fleet": "f"}, "frequency": {"event": "flat", "trace": "t"}}, "either trace"),
])
def test_bad_config_names_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(SimConfigError) as err:
        parse_sim_settings(doc, Path("."))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_load_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "sim.toml"
    f.write_text("[sim]\nfleet = 3\n")
    with pytest.raises(SimConfigError, match=r"sim\.toml: sim\.fleet"):
        load_sim_settings(f)
    with pytest.raises(SimConfigError, match="no such config file"):
        load_sim_settings(tmp_path / "none.toml")
