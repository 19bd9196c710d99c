"""Daemon config tables (controller/settings_sections.py): [ocpp] stations, groups and TLS,
[meter], [mqtt], [control] and [energy], each rejected with one line naming the key."""

from __future__ import annotations

import pytest

from controller.settings import ConfigError, load_settings, parse_settings
from tests.unit.settings_docs import EXAMPLE, MINIMAL, assert_one_line_error, minimal_doc


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["ocpp"].update(prot=1), "unknown key 'ocpp.prot'"),
    (lambda d: d["ocpp"]["station"][0].update(colour="red"), "ocpp.station[0].colour"),
    (lambda d: d["ocpp"]["station"][0].update(password="short"), "16-40 character password"),
    (lambda d: d["ocpp"]["station"][0].update(vehicle="Trabant"), "unknown vehicle model"),
    (lambda d: d["ocpp"]["station"][0].update(discharge="yes"), "ocpp.station[0].discharge"),
    (lambda d: d["ocpp"].update(port="9000"), "ocpp.port"),
    (lambda d: d["ocpp"].update(security_profile=0, host="0.0.0.0"), "loopback"),
    (lambda d: d["ocpp"].update(security_profile=2), "needs [ocpp.tls]"),
    (lambda d: d["meter"].update(protocol="serial"), "meter.protocol"),
    (lambda d: d["meter"].update(stale_after_s=float("nan")), "meter.stale_after_s"),
    (lambda d: d["ocpp"]["station"].append(dict(d["ocpp"]["station"][0])), "duplicate station"),
    (lambda d: d["mqtt"].update(prefix="a/#"), "mqtt.prefix"),
    (lambda d: d["ocpp"].update(state_file=""), "ocpp.state_file"),
    (lambda d: d["ocpp"].update(state_file="/var/lib/v2ghub/"), "ocpp.state_file"),
    (lambda d: d["ocpp"].update(state_file=7), "ocpp.state_file"),
])
def test_bad_config_is_rejected_with_a_message_naming_the_key(mutate, message):
    assert_one_line_error(mutate, message)


def test_station_state_file_is_optional_and_off_by_default():
    assert load_settings(MINIMAL).ocpp.state_file is None
    doc = minimal_doc()
    doc["ocpp"]["state_file"] = "/var/lib/v2ghub/stations.json"
    assert parse_settings(doc).ocpp.state_file == "/var/lib/v2ghub/stations.json"
    assert "state_file" in EXAMPLE.read_text()  # documented with its default


def test_station_group_expands_ids_from_the_format():
    doc = minimal_doc()
    doc["ocpp"]["station_group"] = [{"id_format": "G{:02d}", "first": 7, "count": 3,
                                     "password": "0123456789abcdef"}]
    ids = [st.id for st in parse_settings(doc).ocpp.stations]
    assert ids == ["CP001", "G07", "G08", "G09"]


# -- safety caps ----------------------------------------------------------------------------


@pytest.mark.parametrize(("section", "key", "ok", "too_big"), [
    ("ocpp", "profile_validity_s", 300, 301),  # SPEC §2.4: a profile must not outlive us long
    ("meter", "stale_after_s", 5, 5.5),  # DC starts within 0.5 s: 5-s-old data is wrong
])
def test_unsafe_lifetimes_are_capped(section, key, ok, too_big):
    doc = minimal_doc()
    doc.setdefault(section, {})[key] = ok
    assert getattr(getattr(parse_settings(doc), section), key) == ok
    doc[section][key] = too_big
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: must be <= {ok}"):
        parse_settings(doc)


# -- meter source allow-list ------------------------------------------------------------------


def test_meter_allowed_sources_default_to_any_and_are_canonical_ips():
    assert load_settings(MINIMAL).meter.allowed_sources == ()
    doc = minimal_doc()
    doc["meter"]["allowed_sources"] = ["127.0.0.2", "::1", "fd00:0::5"]
    assert parse_settings(doc).meter.allowed_sources == ("127.0.0.2", "::1", "fd00::5")


@pytest.mark.parametrize("bad", [["meter.local"], [7], "127.0.0.1", ["10.0.0.0/8"]])
def test_meter_allowed_sources_must_be_ip_addresses(bad):
    doc = minimal_doc()
    doc["meter"]["allowed_sources"] = bad
    with pytest.raises(ConfigError, match=r"meter\.allowed_sources"):
        parse_settings(doc)


def test_control_dispatch_chooses_the_strategy_the_daemon_runs():
    from controller.app import Daemon  # noqa: PLC0415
    from controller.control.dispatch_comp import CompensatedDispatch  # noqa: PLC0415

    doc = minimal_doc()
    doc["mqtt"]["enabled"] = False
    assert parse_settings(doc).control.dispatch == "naive"
    doc["control"] = {"dispatch": "compensated"}
    assert isinstance(Daemon(parse_settings(doc)).controller.dispatch, CompensatedDispatch)
    doc["control"] = {"dispatch": "psychic"}
    with pytest.raises(ConfigError, match=r"control\.dispatch"):
        parse_settings(doc)


def test_energy_window_defaults_to_20_80_and_takes_station_overrides():
    doc = minimal_doc()
    s = parse_settings(doc)
    assert (s.energy.soc_min, s.energy.soc_max, s.energy.alarm_ratio) == (0.2, 0.8, 1.2)
    assert (s.ocpp.stations[0].soc_min, s.ocpp.stations[0].soc_max) == (None, None)
    doc["energy"] = {"soc_min": 0.1, "soc_max": 0.9, "alarm_ratio": 1.5}
    doc["ocpp"]["station"][0].update(soc_min=0.3)
    s = parse_settings(doc)
    assert (s.energy.soc_min, s.energy.soc_max, s.energy.alarm_ratio) == (0.1, 0.9, 1.5)
    assert (s.ocpp.stations[0].soc_min, s.ocpp.stations[0].soc_max) == (0.3, None)


def test_example_config_documents_the_energy_table():
    s = load_settings(EXAMPLE)
    assert (s.energy.soc_min, s.energy.soc_max) == (0.2, 0.8)
    assert (s.ocpp.stations[0].soc_min, s.ocpp.stations[0].soc_max) == (0.2, 0.8)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(energy={"soc_min": 0.8, "soc_max": 0.2}), "energy.soc_min"),
    (lambda d: d.update(energy={"soc_max": 1.5}), "energy.soc_max"),
    (lambda d: d.update(energy={"alarm_ratio": 0.5}), "energy.alarm_ratio"),
    (lambda d: d.update(energy={"reserve": 1}), "energy.reserve"),
    (lambda d: d["ocpp"]["station"][0].update(soc_min=0.6, soc_max=0.5),
     "ocpp.station[0].soc_min"),
    (lambda d: d["ocpp"]["station"][0].update(soc_max="high"), "ocpp.station[0].soc_max"),
])
def test_bad_energy_window_is_one_line_naming_the_key(mutate, message):
    assert_one_line_error(mutate, message)
