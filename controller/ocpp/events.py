"""Events the OCPP session emits towards the application (frozen, slotted dataclasses).

No I/O and no behaviour here: plain values, safe to pass between tasks and to log.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StationBooted:
    vendor: str
    model: str


@dataclass(frozen=True, slots=True)
class EvseStatusChanged:
    evse_id: int
    connector_status: str


@dataclass(frozen=True, slots=True)
class TransactionChanged:
    evse_id: int
    transaction_id: str | None
    ev_connected: bool


@dataclass(frozen=True, slots=True)
class MeterReading:
    evse_id: int
    power_w: float | None  # + import (charging), - export
    soc_frac: float | None


@dataclass(frozen=True, slots=True)
class EvLimitsReported:
    evse_id: int
    max_charge_w: float | None
    max_discharge_w: float | None


@dataclass(frozen=True, slots=True)
class SetpointResult:
    evse_id: int
    limit_w: float
    accepted: bool
    status: str
    rtt_s: float


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """A station's answer to our TriggerMessage (F06): Accepted, Rejected or NotImplemented."""

    requested_message: str
    evse_id: int | None
    status: str


@dataclass(frozen=True, slots=True)
class CallFailed:
    action: str
    evse_id: int | None
    reason: str  # "timeout", "CALLERROR <code>", "connection lost", "invalid response ..."


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    detail: str


@dataclass(frozen=True, slots=True)
class StationConnected:
    """A websocket for the station opened (emitted by the adapter). `booted`: the session is
    already accepted (booted earlier on this daemon, or remembered across a restart), so the
    station is in service without a new BootNotification."""

    booted: bool


@dataclass(frozen=True, slots=True)
class StationLost:
    """Emitted by the server adapter (not the session) when a station's connection closes."""

    reason: str


Event = (StationBooted | EvseStatusChanged | TransactionChanged | MeterReading
         | EvLimitsReported | SetpointResult | TriggerResult | CallFailed | ProtocolViolation
         | StationConnected | StationLost)
