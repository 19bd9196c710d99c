"""Version negotiation (versions.py): which OCPP version a station's offer gets."""

import pytest

from controller.ocpp import versions


@pytest.mark.parametrize(("offered", "chosen"), [
    (["ocpp2.0.1", "ocpp2.1"], "2.1"),  # both offered, in either order: 2.1 wins
    (["ocpp2.1", "ocpp2.0.1"], "2.1"),
    (["ocpp2.0.1"], "2.0.1"),
    (["ocpp2.1"], "2.1"),
    (["ocpp1.6", "ocpp2.0.1"], "2.0.1"),
    (["ocpp1.6"], None),
    ([], None),
])
def test_a_station_offering_both_versions_gets_2_1(offered, chosen):
    assert versions.select(offered) == chosen


def test_subprotocol_names_map_both_ways():
    for version in (versions.V201, versions.V21):
        assert versions.version_of(versions.subprotocol(version)) == version
    assert versions.version_of(None) is None
    assert versions.version_of("ocpp1.6") is None
    assert versions.SUBPROTOCOLS[0] == "ocpp2.1"  # the server's preference order
