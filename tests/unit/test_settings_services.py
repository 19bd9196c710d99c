"""Daemon config [[service]] tables (controller/settings_services.py): contracted products,
configurable curves, timings, over-delivery and triggers, one definition per product."""

from __future__ import annotations

import pytest

from controller.app import Daemon
from controller.control.services import DEFAULT_DEFINITIONS, contracts_from, response_share
from controller.settings import ConfigError, load_settings, parse_settings
from tests.unit.settings_docs import EXAMPLE, MINIMAL, assert_one_line_error, minimal_doc


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["service"][0].update(name="XYZ"), "unknown service 'XYZ'"),
    (lambda d: d["service"][0].update(contract_kw=-5), "must be > 0"),
])
def test_bad_config_is_rejected_with_a_message_naming_the_key(mutate, message):
    assert_one_line_error(mutate, message)


def test_compound_service_names_are_accepted():
    doc = minimal_doc()
    doc["service"] = [{"name": "DC", "contract_kw": 50}]
    assert parse_settings(doc).services[0].name == "DC"


# -- configurable service curves (SPEC §2.1: "Curve points must be configuration") ------------


def with_service(**keys):
    doc = minimal_doc()
    doc["service"] = [{"name": "DC-L", "contract_kw": 100, **keys}]
    return doc


def test_service_without_overrides_uses_the_spec_defaults():
    s = load_settings(MINIMAL)
    assert s.services[0].definitions == ()
    assert s.contract_overrides() == {}
    (contract,) = contracts_from([("DC-L", 100.0)], overrides=s.contract_overrides())
    assert contract.definition is DEFAULT_DEFINITIONS["DC-L"]


def test_configured_points_and_deadband_replace_the_default_curve():
    s = parse_settings(with_service(points=[[0.1, 0.5], [0.3, 1.0]], deadband_hz=0.02,
                                    start_s=0.4, full_s=0.8, sustain_s=600))
    (defn,) = s.services[0].definitions
    assert defn.curve.points == ((0.02, 0.0), (0.1, 0.5), (0.3, 1.0))
    assert defn.deadband_hz == 0.02
    assert (defn.start_s, defn.full_s, defn.sustain_s) == (0.4, 0.8, 600.0)
    assert defn.direction == "low"
    (contract,) = contracts_from(((sv.name, sv.contract_kw) for sv in s.services),
                                 overrides=s.contract_overrides())
    # 0.1 Hz low: 50 % of 100 kW exported (the default DC curve gives ~1.4 % there)
    assert response_share(contract.definition, 49.9) == pytest.approx(-0.5)
    assert response_share(contract.definition, 49.985) == 0.0  # inside the new 20 mHz deadband


def test_deadband_alone_keeps_the_default_points():
    (defn,) = parse_settings(with_service(deadband_hz=0.05)).services[0].definitions
    assert defn.curve.points == ((0.05, 0.0), (0.2, 0.05), (0.5, 1.0))


def test_compound_name_applies_its_overrides_to_both_products():
    doc = minimal_doc()
    doc["service"] = [{"name": "DC", "contract_kw": 50, "points": [[0.2, 1.0]]}]
    s = parse_settings(doc)
    overrides = s.contract_overrides()
    assert set(overrides) == {"DC-L", "DC-H"}
    assert overrides["DC-L"].direction == "low"
    assert overrides["DC-H"].direction == "high"
    contracts = contracts_from([("DC", 50.0)], overrides=overrides)
    assert [response_share(c.definition, 50.2) for c in contracts] == [0.0, 1.0]
    assert [response_share(c.definition, 49.8) for c in contracts] == [-1.0, 0.0]


def test_fcr_over_delivery_above_50_hz_follows_seed_eq_7():
    doc = minimal_doc()
    doc["service"] = [{"name": "FCR", "contract_kw": 100, "over_delivery_high": 0.2}]
    (defn,) = parse_settings(doc).services[0].definitions
    assert defn.over_delivery_high == 0.2
    assert response_share(defn, 50.105) == pytest.approx(0.6)  # 0.5 x 1.2
    assert response_share(defn, 49.895) == pytest.approx(-0.5)  # low side unchanged


def test_sffr_trigger_is_configurable():
    doc = minimal_doc()
    doc["service"] = [{"name": "SFFR", "contract_kw": 100, "trigger_hz": 49.6}]
    (defn,) = parse_settings(doc).services[0].definitions
    assert defn.trigger_hz == 49.6
    assert response_share(defn, 49.65) == 0.0
    assert response_share(defn, 49.6) == -1.0


def test_daemon_builds_its_contracts_with_the_configured_curves():
    s = parse_settings(with_service(points=[[0.1, 1.0]]))
    (contract,) = Daemon(s).contracts
    assert contract.definition == s.services[0].definitions[0]
    assert contract.contract_w == 100_000.0


@pytest.mark.parametrize(("name", "keys", "message"), [
    ("DC-L", {"points": [[0.3, 0.5], [0.2, 1.0]]}, "service[0].points[1]: abs_df_hz must increase"),
    ("DC-L", {"points": [[0.2, 0.5], [0.2, 1.0]]}, "service[0].points[1]: abs_df_hz must increase"),
    ("DC-L", {"points": [[0.2, 1.5]]}, "service[0].points[0]: share must be 0..1"),
    ("DC-L", {"points": [[0.2, -0.1]]}, "service[0].points[0]: share must be 0..1"),
    ("DC-L", {"points": [[float("nan"), 1.0]]}, "service[0].points[0]: expected [abs_df_hz"),
    ("DC-L", {"points": [[0.2, float("inf")]]}, "service[0].points[0]: expected [abs_df_hz"),
    ("DC-L", {"points": [[0.2]]}, "service[0].points[0]: expected [abs_df_hz"),
    ("DC-L", {"points": [[0.2, True]]}, "service[0].points[0]: expected [abs_df_hz"),
    ("DC-L", {"points": []}, "service[0].points: expected an array of 1..20"),
    ("DC-L", {"points": 0.2}, "service[0].points: expected an array"),
    ("DC-L", {"points": [[6.0, 1.0]]}, "service[0].points[0]: abs_df_hz must be 0..5"),
    ("DC-L", {"points": [[0.01, 1.0]]}, "service[0].points: deadband_hz (0.015 Hz) must be below"),
    ("DC-L", {"deadband_hz": 0.2}, "service[0].deadband_hz: deadband_hz (0.2 Hz) must be below"),
    ("DC-L", {"deadband_hz": float("nan")}, "service[0].deadband_hz: expected a finite number"),
    ("DC-L", {"deadband_hz": -0.01}, "service[0].deadband_hz: must be >= 0"),
    ("DC-L", {"over_delivery_high": 0.1}, "service[0].over_delivery_high: DC-L answers only low"),
    ("FCR", {"over_delivery_high": 0.3}, "service[0].over_delivery_high: must be <= 0.2"),
    ("FCR", {"over_delivery_high": -0.1}, "service[0].over_delivery_high: must be >= 0"),
    ("DC-L", {"start_s": 0}, "service[0].start_s: must be > 0"),
    ("DC-L", {"start_s": 2.0}, "service[0].start_s: start_s (2.0 s) must not exceed full_s"),
    ("DC-L", {"full_s": 0.2}, "service[0].full_s: start_s (0.5 s) must not exceed full_s"),
    ("DC-L", {"sustain_s": float("inf")}, "service[0].sustain_s: expected a finite number"),
    ("DC-L", {"trigger_hz": 49.7}, "service[0].trigger_hz: not used by DC-L"),
    ("SFFR", {"points": [[0.2, 1.0]]}, "service[0].points: not used by SFFR"),
    ("SFFR", {"deadband_hz": 0.01}, "service[0].deadband_hz: not used by SFFR"),
    ("SFFR", {"trigger_hz": 50.2}, "service[0].trigger_hz: SFFR must trigger below 50.0 Hz"),
    ("SFFR", {"trigger_hz": 44.0}, "service[0].trigger_hz: must be >= 45.0"),
    ("DC-L", {"curve": [[0.2, 1.0]]}, "unknown key 'service[0].curve'"),
])
def test_bad_service_override_is_one_line_naming_the_key(name, keys, message):
    doc = minimal_doc()
    doc["service"] = [{"name": name, "contract_kw": 100, **keys}]
    with pytest.raises(ConfigError) as err:
        parse_settings(doc)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_one_product_cannot_have_two_curves():
    doc = minimal_doc()
    doc["service"] = [{"name": "DC", "contract_kw": 50},
                      {"name": "DC-L", "contract_kw": 10, "points": [[0.2, 1.0]]}]
    with pytest.raises(ConfigError, match=r"service\[1\]: DC-L is also contracted by service\[0\]"):
        parse_settings(doc)
    doc["service"][1].pop("points")  # the same (default) curve twice is fine: volumes add
    assert len(parse_settings(doc).services) == 2


def test_example_config_documents_every_service_key():
    text = EXAMPLE.read_text()
    for key in ("points", "deadband_hz", "over_delivery_high", "start_s", "full_s",
                "sustain_s", "trigger_hz", "allowed_sources"):
        assert f"{key} =" in text or f"# {key} =" in text, key


def test_example_service_keys_restate_the_defaults():
    (svc,) = load_settings(EXAMPLE).services
    assert svc.definitions == (DEFAULT_DEFINITIONS["DC-L"],)

