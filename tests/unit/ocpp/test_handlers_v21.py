"""The handlers against the OCPP 2.1 schemas: every reply 2.1-valid, 2.1 fields read."""

import copy

import pytest

from controller.ocpp import handlers
from controller.ocpp.events import EvLimitsReported
from controller.ocpp.handlers import HANDLERS, StationState
from controller.ocpp.schemas import validators_for

from .test_handlers import SAMPLE_REQUESTS, WALL_S

V21 = validators_for("2.1")


def _sample_v21(action):
    """The 2.0.1 sample, adapted where 2.1 made a field required."""
    p = copy.deepcopy(SAMPLE_REQUESTS[action])
    if action == "NotifyMonitoringReport":  # 2.1: eventNotificationType is required
        for monitor in p.get("monitor", []):
            for vm in monitor["variableMonitoring"]:
                vm.setdefault("eventNotificationType", "CustomMonitor")
    return p


@pytest.mark.parametrize("action", sorted(SAMPLE_REQUESTS))
def test_every_handler_answers_a_2_1_valid_response(action):
    p = _sample_v21(action)
    V21.validate(action, "request", p)
    reply, _ = HANDLERS[action](p, StationState(), WALL_S)
    V21.validate(action, "response", reply)


def test_2_1_v2x_charging_parameters_give_charge_and_discharge_limits():
    p = {"evseId": 1, "chargingNeeds": {
        "requestedEnergyTransfer": "AC_BPT", "availableEnergyTransfer": ["AC_BPT"],
        "acChargingParameters": {"energyAmount": 20000, "evMinCurrent": 6,
                                 "evMaxCurrent": 16, "evMaxVoltage": 400},
        "v2xChargingParameters": {"maxChargePower": 11000.0, "maxDischargePower": 7400.0}}}
    V21.validate("NotifyEVChargingNeeds", "request", p)
    reply, events = handlers.notify_ev_charging_needs(p, StationState(), WALL_S)
    assert reply == {"status": "Accepted"}
    assert events[0] == EvLimitsReported(1, 11000.0, 7400.0)


def test_v2x_parameters_without_powers_keep_the_ac_figure_and_no_discharge_limit():
    p = {"evseId": 1, "chargingNeeds": {
        "requestedEnergyTransfer": "AC_three_phase",
        "acChargingParameters": {"energyAmount": 20000, "evMinCurrent": 6,
                                 "evMaxCurrent": 16, "evMaxVoltage": 400},
        "v2xChargingParameters": {"targetSoC": 80}}}
    V21.validate("NotifyEVChargingNeeds", "request", p)
    _, events = handlers.notify_ev_charging_needs(p, StationState(), WALL_S)
    assert events[0].max_discharge_w is None
    assert events[0].max_charge_w == pytest.approx(3 * 16 * 400 / 3**0.5)
