"""Daemon config: the SPEC §3.2 minimal file, the documented example, one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from controller.settings import ConfigError, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "config" / "v2ghub.minimal.toml"
EXAMPLE = ROOT / "config" / "v2ghub.example.toml"


def minimal_doc() -> dict:
    return tomllib.loads(MINIMAL.read_text())


def test_minimal_file_from_the_spec_is_accepted_with_defaults():
    s = load_settings(MINIMAL)
    assert s.site_id == "demo"
    assert s.mqtt_prefix == "v2ghub/demo"
    assert [st.id for st in s.ocpp.stations] == ["CP001"]
    st = s.ocpp.stations[0]
    assert st.discharge == "negative_limit"
    assert st.max_power_kw == 10
    assert [(sv.name, sv.contract_kw) for sv in s.services] == [("DC-L", 100.0)]
    assert s.control.tick_period_s == 0.1
    assert s.ocpp.profile_validity_s == 30.0


def test_example_file_documents_every_key_and_loads():
    s = load_settings(EXAMPLE)
    assert len(s.ocpp.stations) == 20  # one station + a group of 19
    assert s.ocpp.stations[-1].id == "CP020"


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["ocpp"].update(prot=1), "unknown key 'ocpp.prot'"),
    (lambda d: d.update(extra={}), "unknown key 'extra'"),
    (lambda d: d["ocpp"]["station"][0].update(colour="red"), "ocpp.station[0].colour"),
    (lambda d: d["ocpp"]["station"][0].update(password="short"), "16-40 character password"),
    (lambda d: d["ocpp"]["station"][0].update(vehicle="Trabant"), "unknown vehicle model"),
    (lambda d: d["ocpp"]["station"][0].update(discharge="yes"), "ocpp.station[0].discharge"),
    (lambda d: d["ocpp"].update(port="9000"), "ocpp.port"),
    (lambda d: d["ocpp"].update(security_profile=0, host="0.0.0.0"), "loopback"),
    (lambda d: d["ocpp"].update(security_profile=2), "needs [ocpp.tls]"),
    (lambda d: d["meter"].update(protocol="serial"), "meter.protocol"),
    (lambda d: d["meter"].update(stale_after_s=float("nan")), "meter.stale_after_s"),
    (lambda d: d["service"][0].update(name="XYZ"), "unknown service 'XYZ'"),
    (lambda d: d["service"][0].update(contract_kw=-5), "must be > 0"),
    (lambda d: d["ocpp"]["station"].append(dict(d["ocpp"]["station"][0])), "duplicate station"),
    (lambda d: d.update(control={"refresh_s": 40.0}), "shorter than ocpp.profile_validity_s"),
    (lambda d: d["mqtt"].update(prefix="a/#"), "mqtt.prefix"),
    (lambda d: d["site"].update(id="a/b"), "site.id"),
    (lambda d: d.pop("ocpp"), "[ocpp] is missing"),
    (lambda d: d["ocpp"].update(state_file=""), "ocpp.state_file"),
    (lambda d: d["ocpp"].update(state_file="/var/lib/v2ghub/"), "ocpp.state_file"),
    (lambda d: d["ocpp"].update(state_file=7), "ocpp.state_file"),
])
def test_bad_config_is_rejected_with_a_message_naming_the_key(mutate, message):
    doc = minimal_doc()
    mutate(doc)
    with pytest.raises(ConfigError) as err:
        parse_settings(doc)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_station_state_file_is_optional_and_off_by_default():
    assert load_settings(MINIMAL).ocpp.state_file is None
    doc = minimal_doc()
    doc["ocpp"]["state_file"] = "/var/lib/v2ghub/stations.json"
    assert parse_settings(doc).ocpp.state_file == "/var/lib/v2ghub/stations.json"
    assert "state_file" in EXAMPLE.read_text()  # documented with its default


def test_compound_service_names_are_accepted():
    doc = minimal_doc()
    doc["service"] = [{"name": "DC", "contract_kw": 50}]
    assert parse_settings(doc).services[0].name == "DC"


def test_station_group_expands_ids_from_the_format():
    doc = minimal_doc()
    doc["ocpp"]["station_group"] = [{"id_format": "G{:02d}", "first": 7, "count": 3,
                                     "password": "0123456789abcdef"}]
    ids = [st.id for st in parse_settings(doc).ocpp.stations]
    assert ids == ["CP001", "G07", "G08", "G09"]


def test_unreadable_or_invalid_toml_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\nid=")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "missing.toml")
