"""Daemon config (controller/settings.py): the SPEC §3.2 minimal file, the documented example,
file errors and the rules that span tables; the tables have their own test modules."""

from __future__ import annotations

import pytest

from controller.settings import ConfigError, load_settings
from tests.unit.settings_docs import EXAMPLE, MINIMAL, assert_one_line_error


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
    (lambda d: d.update(extra={}), "unknown key 'extra'"),
    (lambda d: d.update(control={"refresh_s": 40.0}), "shorter than ocpp.profile_validity_s"),
    (lambda d: d["site"].update(id="a/b"), "site.id"),
    (lambda d: d.pop("ocpp"), "[ocpp] is missing"),
])
def test_bad_config_is_rejected_with_a_message_naming_the_key(mutate, message):
    assert_one_line_error(mutate, message)


def test_unreadable_or_invalid_toml_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\nid=")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "missing.toml")
