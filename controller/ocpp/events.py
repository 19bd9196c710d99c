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
class VehicleIdentified:
    """A transaction's idToken: an RFID card, or the EV's own MAC (EVCCID) with Autocharge or
    ISO 15118 (idToken type "MacAddress"). Emitted once per transaction and token."""

    evse_id: int
    transaction_id: str
    id_token: str
    token_type: str


@dataclass(frozen=True, slots=True)
class EvNeedsReported:
    """ISO 15118 charging needs (NotifyEVChargingNeeds): when the EV leaves and what it wants.

    departure_in_s: seconds from receipt to the EV's departureTime (None: not given).
    energy_wh: energy the EV asks for by then (energyAmount; None: not given).
    soc_frac / capacity_wh: the EV's own SoC and battery size (DC parameters only).
    """

    evse_id: int
    departure_in_s: float | None
    energy_wh: float | None
    soc_frac: float | None
    capacity_wh: float | None


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
    station is in service without a new BootNotification. `ocpp_version`: the version
    negotiated for this connection ("2.0.1" or "2.1")."""

    booted: bool
    ocpp_version: str = "2.0.1"


@dataclass(frozen=True, slots=True)
class StationLost:
    """Emitted by the server adapter (not the session) when a station's connection closes."""

    reason: str


Event = (StationBooted | EvseStatusChanged | TransactionChanged | VehicleIdentified
         | EvNeedsReported | MeterReading | EvLimitsReported | SetpointResult | TriggerResult
         | CallFailed | ProtocolViolation | StationConnected | StationLost)
