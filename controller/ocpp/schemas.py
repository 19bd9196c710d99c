"""OCPP 2.0.1 and 2.1 payload validation: fastjsonschema validators compiled once per action.

The schemas are the official ones shipped in the `ocpp` package (ocpp/v201/schemas and
ocpp/v21/schemas). A validator is compiled lazily on first use and cached for the life of the
Validators object, one object per version (~7 us per check instead of ~150 us with jsonschema,
PITFALLS.md). No I/O beyond reading those package files once;
validate() raises only ValidationError.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

import fastjsonschema

from controller.ocpp import versions
from controller.ocpp.errors import (
    FORMAT_VIOLATION,
    OCCURRENCE_CONSTRAINT_VIOLATION,
    PROPERTY_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION,
    ValidationError,
)

Kind = Literal["request", "response"]
_Validator = Callable[[Any], Any]

# fastjsonschema rule -> OCPP 2.0.1 Part 4 §4.2.3 error code.
_RULE_CODES: dict[str, str] = {
    "required": OCCURRENCE_CONSTRAINT_VIOLATION,  # a required field is missing
    "minItems": OCCURRENCE_CONSTRAINT_VIOLATION,  # too few / too many occurrences of an item
    "maxItems": OCCURRENCE_CONSTRAINT_VIOLATION,
    "type": TYPE_CONSTRAINT_VIOLATION,
    "enum": PROPERTY_CONSTRAINT_VIOLATION,
    "const": PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMinimum": PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMaximum": PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": PROPERTY_CONSTRAINT_VIOLATION,
    "format": PROPERTY_CONSTRAINT_VIOLATION,
    # An unknown field makes the payload not conform to the message's syntax at all
    # ("Payload for Action is syntactically incorrect" = FormatViolation), rather than a
    # known field carrying a bad value (PropertyConstraintViolation).
    "additionalProperties": FORMAT_VIOLATION,
}


class Validators:
    """Lazily compiled, cached schema validators for one OCPP version's actions."""

    def __init__(self, version: str = "v201") -> None:
        """Args: version: the `ocpp` package module of the schemas, "v201" or "v21"."""
        self.package = version
        self.ocpp_version: versions.OcppVersion = (
            versions.V21 if version == versions.SCHEMA_PACKAGES[versions.V21] else versions.V201)
        self._dir = importlib.resources.files(f"ocpp.{version}") / "schemas"
        self._actions = frozenset(
            p.name.removesuffix("Request.json")
            for p in self._dir.iterdir()
            if p.name.endswith("Request.json")
        )
        self._cache: dict[tuple[str, Kind], _Validator] = {}

    @property
    def actions(self) -> frozenset[str]:
        """Every action that has a request schema."""
        return self._actions

    def has_action(self, action: str) -> bool:
        """True when `action` is a message of this OCPP version."""
        return action in self._actions

    def validate(self, action: str, kind: Kind, payload: Any) -> None:
        """Check a payload against its schema.

        Raises:
            ValidationError: the payload fails (code mapped per Part 4 §4.2.3), or the action
                is unknown (code NotImplemented; callers check has_action first).
        """
        try:
            check = self._cache[(action, kind)]
        except KeyError:
            check = self._compile(action, kind)
        try:
            check(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            code = _RULE_CODES.get(str(exc.rule), FORMAT_VIOLATION)
            raise ValidationError(code, f"{action} {kind}: {exc.message}") from None

    def _compile(self, action: str, kind: Kind) -> _Validator:
        if action not in self._actions:
            raise ValidationError("NotImplemented", f"unknown action {action!r}")
        name = f"{action}{'Request' if kind == 'request' else 'Response'}.json"
        schema = json.loads((self._dir / name).read_text(encoding="utf-8"))
        schema.pop("$id", None)  # an http $id would make fastjsonschema try to resolve it
        check: _Validator = fastjsonschema.compile(schema, use_default=False)
        self._cache[(action, kind)] = check
        return check


@cache
def validators_for(version: versions.OcppVersion) -> Validators:
    """One process-wide Validators per OCPP version (compiled validators are shared)."""
    return Validators(versions.SCHEMA_PACKAGES[version])


def default_validators() -> Validators:
    """The process-wide Validators for OCPP 2.0.1."""
    return validators_for(versions.V201)
