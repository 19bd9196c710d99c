import pytest

from controller.ocpp.errors import ValidationError
from controller.ocpp.schemas import Validators, default_validators

BOOT = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}


@pytest.fixture(scope="module")
def validators() -> Validators:
    return Validators()


def test_valid_boot_notification_passes(validators):
    validators.validate("BootNotification", "request", BOOT)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"reason": "PowerUp"}, "OccurrenceConstraintViolation"),
        ({**BOOT, "reason": 5}, "TypeConstraintViolation"),
        ({**BOOT, "reason": "Bored"}, "PropertyConstraintViolation"),
        ({**BOOT, "chargingStation": {"model": "M" * 21, "vendorName": "V"}},
         "PropertyConstraintViolation"),
        ({**BOOT, "surprise": 1}, "FormatViolation"),
    ],
)
def test_schema_failures_map_to_ocpp_error_codes(validators, payload, code):
    with pytest.raises(ValidationError) as info:
        validators.validate("BootNotification", "request", payload)
    assert info.value.code == code


def test_responses_are_validated_against_the_response_schema(validators):
    validators.validate("SetChargingProfile", "response", {"status": "Accepted"})
    with pytest.raises(ValidationError):
        validators.validate("SetChargingProfile", "response", {"status": "Maybe"})


def test_known_and_unknown_actions_are_told_apart(validators):
    assert validators.has_action("SetChargingProfile")
    assert validators.has_action("NotifyEVChargingNeeds")
    assert not validators.has_action("MakeCoffee")


def test_validators_are_compiled_once_and_shared():
    assert default_validators() is default_validators()
    v = Validators()
    v.validate("Heartbeat", "request", {})
    first = v._cache[("Heartbeat", "request")]
    v.validate("Heartbeat", "request", {})
    assert v._cache[("Heartbeat", "request")] is first
