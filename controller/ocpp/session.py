"""StationSession: the sans-I/O OCPP 2.0.1 / 2.1 state machine for one charging station.

Text frames in (receive_text), events and frames out (data_to_send). It answers the station's
CALLs, tracks boot and per-EVSE transactions, and runs the CSMS -> station CALL channel:
one outstanding CALL per connection (OCPP-J Part 4 §4.1.1) fed by a short queue of
TriggerMessage requests and, behind it, a latest-value-wins setpoint slot per EVSE, served
round-robin. No asyncio, no sockets, no clock reads: `now_s` (monotonic) and `wall_s` (Unix)
are arguments. receive_text/poll/connection_lost never raise.

OCPP version: each connection speaks one version, negotiated at the websocket handshake
(versions.py) and handed in by connection_made(). Every message in and out is validated against
that version's schemas; setpoints to a 2.1 station that may discharge go out as CentralSetpoint
periods with a signed `setpoint`, all others as a `limit` (profiles.py).

Restart recovery: a station only sends BootNotification after its own reboot, not after the
CSMS restarts, and it does not repeat TransactionEvent Started. A session created with
`previously_accepted=True` (the adapter remembers acceptances across restarts) counts as booted
and, once connected, asks the station to re-report with TriggerMessage TransactionEvent (all
EVSEs) and then StatusNotification per EVSE it reports (F06). It never persists anything itself.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from controller.ocpp import errors, rpc, versions
from controller.ocpp.events import (
    CallFailed,
    Event,
    ProtocolViolation,
    SetpointResult,
    TriggerResult,
)
from controller.ocpp.handlers import HANDLERS, StationState
from controller.ocpp.profiles import ACTION as SET_CHARGING_PROFILE
from controller.ocpp.profiles import ProfileFrameEncoder
from controller.ocpp.schemas import Validators, validators_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionParams:
    call_timeout_s: float = 10.0  # OCPP-J leaves it to us; 10 s << the usual 30 s (settings.py)
    profile_validity_s: float = 30.0  # every profile lapses by itself (SPEC §2.4)
    heartbeat_interval_s: int = 60
    profile_id_base: int = 1000  # chargingProfile.id = base + evse_id (K01.FR.05)
    stack_level: int = 1


TRIGGER_MESSAGE = "TriggerMessage"
DEFAULT_CONNECTOR_ID = 1  # an EVSE's first connector; used when the station never named one


@dataclass(frozen=True, slots=True)
class _Trigger:
    requested: str  # MessageTriggerEnumType
    evse_id: int | None = None
    connector_id: int | None = None

    def payload(self) -> dict[str, object]:
        if self.evse_id is None:
            return {"requestedMessage": self.requested}
        evse: dict[str, int] = {"id": self.evse_id}
        if self.connector_id is not None:
            evse["connectorId"] = self.connector_id
        return {"requestedMessage": self.requested, "evse": evse}


# F06.FR.11 / OCTT TC_F_14_CS: TransactionEvent with evse omitted asks for every EVSE with an
# ongoing transaction; each answer is an Updated event with triggerReason Trigger, evse.id set
# and (F06.FR.07) "transactionInfo with at least the chargingState".
_REPORT_TRANSACTIONS = _Trigger("TransactionEvent")


@dataclass(slots=True)
class _Outstanding:
    unique_id: str
    action: str
    evse_id: int | None
    limit_w: float
    sent_at_s: float
    deadline_s: float
    trigger: _Trigger | None = None


class StationSession:
    """Per-station OCPP state; lives across reconnections of the same station.

    A station that reconnects without rebooting does not send BootNotification again, so boot
    and transaction state survive connection_lost(); connection_made() re-arms the channel.
    """

    def __init__(self, station_id: str, *, discharge_allowed: bool, params: SessionParams,
                 validators: Validators, previously_accepted: bool = False) -> None:
        """Create the session (OCPP 2.0.1 until connection_made() names another version).

        Args:
            validators: the OCPP 2.0.1 validators (other versions use validators_for()).
            previously_accepted: this CSMS accepted the station's boot before it restarted
                (persisted by an adapter). The station is then treated as booted without a new
                BootNotification and is asked to re-report its transactions (F06).
        """
        self.station_id = station_id
        self.discharge_allowed = discharge_allowed
        self.params = params
        self._validators_201 = validators
        self._validators = validators
        self._version: versions.OcppVersion = versions.V201
        self._state = StationState(heartbeat_interval_s=params.heartbeat_interval_s)
        self._encoders: dict[versions.OcppVersion, ProfileFrameEncoder] = {}
        self._encoder = self._encoder_for(versions.V201)
        self._out: list[str] = []
        self._pending: dict[int, float] = {}  # evse_id -> limit_w; insertion order = fairness
        self._outstanding: _Outstanding | None = None
        self._connected = True
        self._next_id = 0
        self._state.booted = previously_accepted
        self._triggers: list[_Trigger] = []
        self._resync = previously_accepted  # the station must re-report (TriggerMessage)
        self._resync_queued = False
        self._reports_requested = False  # a TransactionEvent trigger was Accepted
        self._status_requested: set[int] = set()

    def _encoder_for(self, version: versions.OcppVersion) -> ProfileFrameEncoder:
        """One frame encoder per version, built once (its templates are validated once)."""
        enc = self._encoders.get(version)
        if enc is None:
            p = self.params
            enc = self._encoders[version] = ProfileFrameEncoder(
                validity_s=p.profile_validity_s, profile_id_base=p.profile_id_base,
                stack_level=p.stack_level, validators=self._validators,
                central_setpoint=version == versions.V21 and self.discharge_allowed)
        return enc

    # -- state ------------------------------------------------------------------------------

    @property
    def ocpp_version(self) -> versions.OcppVersion:
        """The version of the current (or last) connection."""
        return self._version

    @property
    def booted(self) -> bool:
        return self._state.booted

    @property
    def connected(self) -> bool:
        return self._connected

    def transaction_id(self, evse_id: int) -> str | None:
        st = self._state.evses.get(evse_id)
        return st.transaction_id if st is not None else None

    def pending_setpoints(self) -> dict[int, float]:
        return dict(self._pending)

    @property
    def resync_pending(self) -> bool:
        """True until the station has answered our request to re-report its transactions."""
        return self._resync

    def next_deadline_s(self) -> float | None:
        """When poll() must run next (the outstanding call's timeout), or None."""
        return self._outstanding.deadline_s if self._outstanding is not None else None

    # -- input ------------------------------------------------------------------------------

    def receive_text(self, text: str | bytes, now_s: float, wall_s: float) -> list[Event]:
        """Handle one websocket message from the station. Never raises."""
        try:
            frame = rpc.parse(text)
        except errors.FrameError as exc:
            if exc.message_type not in (rpc.CALLRESULT, rpc.CALLERROR):
                # Part 4 §4.2.3; a broken CALLRESULT/CALLERROR is never answered
                self._out.append(rpc.encode_error(exc.unique_id, exc.code, exc.message))
            return [ProtocolViolation(f"bad frame ({exc.code}): {exc.message}")]
        if isinstance(frame, rpc.Call):
            events = self._on_call(frame, wall_s)
        else:
            events = self._on_reply(frame, now_s)
        events.extend(self._start_next(now_s, wall_s))
        return events

    def _on_call(self, call: rpc.Call, wall_s: float) -> list[Event]:
        uid, action = call.unique_id, call.action
        handler = HANDLERS.get(action)
        if handler is None:
            known = self._validators.has_action(action)
            code = errors.NOT_SUPPORTED if known else errors.NOT_IMPLEMENTED
            self._out.append(rpc.encode_error(uid, code, f"{action} is not handled"))
            return [] if known else [ProtocolViolation(f"unknown action {action[:64]!r}")]
        if not self._state.booted and action != "BootNotification":
            # OCPP 2.0.1 Part 2 §3 generic requirement FR.04 (and B02.FR.09 for Pending):
            # before an accepted boot every other CALL gets CALLERROR SecurityError.
            self._out.append(rpc.encode_error(uid, errors.SECURITY_ERROR, "not booted"))
            return [ProtocolViolation(f"{action} before an accepted BootNotification")]
        try:
            self._validators.validate(action, "request", call.payload)
        except errors.ValidationError as exc:
            self._out.append(rpc.encode_error(uid, exc.code, exc.message))
            return [ProtocolViolation(exc.message)]
        try:
            reply, events = handler(call.payload, self._state, wall_s)
            frame = rpc.encode_result(uid, reply)
        except Exception:  # a bug in a handler; never tell the peer the details
            log.exception("station %s: handler for %s failed", self.station_id, action)
            self._out.append(rpc.encode_error(uid, errors.INTERNAL_ERROR))
            return []
        self._out.append(frame)
        if action == "BootNotification":
            # A (re)booted station reports everything by itself (B01): no need to ask.
            self._resync = self._resync_queued = False
            self._triggers.clear()
        elif action == "TransactionEvent" and self._reports_requested:
            self._after_triggered_report(call.payload)
        return events

    def _after_triggered_report(self, p: rpc.Payload) -> None:
        """A re-reported transaction names its EVSE: ask for that connector's status too.

        F06.FR.12: a StatusNotification trigger needs evse.id and evse.connectorId (stations
        reject it otherwise), so it is asked per EVSE once the EVSE is known.
        """
        if p.get("triggerReason") != "Trigger" or "evse" not in p:
            return
        evse_id = p["evse"]["id"]
        if evse_id in self._status_requested or evse_id < 1:
            return
        self._status_requested.add(evse_id)
        st = self._state.evses.get(evse_id)
        connector = st.connector_id if st is not None else None
        self._triggers.append(_Trigger("StatusNotification", evse_id,
                                       connector or DEFAULT_CONNECTOR_ID))

    def _on_reply(self, frame: rpc.CallResult | rpc.CallError, now_s: float) -> list[Event]:
        out = self._outstanding
        if out is None or frame.unique_id != out.unique_id:
            return [ProtocolViolation(f"reply to unknown or expired call id {frame.unique_id!r}")]
        self._outstanding = None
        if out.trigger is _REPORT_TRANSACTIONS:
            self._resync = False  # answered in some way: never ask twice (graceful on refusal)
        if isinstance(frame, rpc.CallError):
            return [CallFailed(out.action, out.evse_id, f"CALLERROR {frame.code[:64]}")]
        try:
            self._validators.validate(out.action, "response", frame.payload)
        except errors.ValidationError as exc:
            return [CallFailed(out.action, out.evse_id, f"invalid response ({exc.code})")]
        status = str(frame.payload["status"])
        if out.trigger is not None:
            if out.trigger is _REPORT_TRANSACTIONS and status == "Accepted":
                self._reports_requested = True
            return [TriggerResult(out.trigger.requested, out.evse_id, status)]
        return [SetpointResult(evse_id=out.evse_id or 0, limit_w=out.limit_w,
                               accepted=status == "Accepted", status=status,
                               rtt_s=now_s - out.sent_at_s)]

    # -- output -----------------------------------------------------------------------------

    def offer_setpoint(self, evse_id: int, limit_w: float) -> None:
        """Offer a power limit (W, signed) for an EVSE; replaces any value not yet sent.

        Negative limits (legacy 2.0.1 discharge convention) are clamped to 0 unless the
        station allows discharge. Held until the EVSE has a transaction (K01.FR.03).

        Raises:
            ValueError: limit_w is not finite (a caller bug).
        """
        if not math.isfinite(limit_w):
            raise ValueError(f"limit_w must be finite, got {limit_w!r}")
        if limit_w < 0.0 and not self.discharge_allowed:
            limit_w = 0.0
        self._pending[evse_id] = limit_w

    def poll(self, now_s: float, wall_s: float) -> list[Event]:
        """Expire a timed-out call, then start the next setpoint CALL if the channel is free."""
        events: list[Event] = []
        out = self._outstanding
        if out is not None and now_s >= out.deadline_s:
            self._outstanding = None
            if out.trigger is _REPORT_TRANSACTIONS:
                self._resync = False  # an unresponsive station: give up, do not loop
            events.append(CallFailed(out.action, out.evse_id, "timeout"))
        events.extend(self._start_next(now_s, wall_s))
        return events

    def _start_next(self, now_s: float, wall_s: float) -> list[Event]:
        if self._outstanding is not None or not self._connected or not self._state.booted:
            return []
        if self._resync and not self._resync_queued:
            log.info("station %s was accepted before this CSMS restarted and did not boot again: "
                     "asking it to re-report its transactions (TriggerMessage, F06)",
                     self.station_id)
            self._triggers.insert(0, _REPORT_TRANSACTIONS)
            self._resync_queued = True
        if self._triggers:  # re-reporting goes ahead of setpoints: they need transaction ids
            return self._start_trigger(self._triggers.pop(0), now_s)
        evses = self._state.evses
        for evse_id in self._pending:  # oldest offer first: round-robin across EVSEs
            st = evses.get(evse_id)
            tx_id = st.transaction_id if st is not None else None
            if tx_id is not None:
                break
        else:
            return []
        limit_w = self._pending.pop(evse_id)
        self._next_id += 1
        uid = str(self._next_id)
        try:
            frame = self._encoder.encode(uid, evse_id, tx_id, limit_w, wall_s)
        except errors.ValidationError:  # a bug in the profile template: never send it
            log.exception("station %s: invalid SetChargingProfile", self.station_id)
            return [CallFailed(SET_CHARGING_PROFILE, evse_id, "invalid profile")]
        self._out.append(frame)
        self._outstanding = _Outstanding(uid, SET_CHARGING_PROFILE, evse_id, limit_w, now_s,
                                         now_s + self.params.call_timeout_s)
        return []

    def _start_trigger(self, trigger: _Trigger, now_s: float) -> list[Event]:
        self._next_id += 1
        uid = str(self._next_id)
        payload = trigger.payload()
        try:
            self._validators.validate(TRIGGER_MESSAGE, "request", payload)
        except errors.ValidationError:  # a bug in the payload builder: never send it
            log.exception("station %s: invalid TriggerMessage", self.station_id)
            return [CallFailed(TRIGGER_MESSAGE, trigger.evse_id, "invalid request")]
        self._out.append(rpc.encode_call(uid, TRIGGER_MESSAGE, payload))
        self._outstanding = _Outstanding(uid, TRIGGER_MESSAGE, trigger.evse_id, math.nan, now_s,
                                         now_s + self.params.call_timeout_s, trigger)
        return []

    def data_to_send(self) -> list[str]:
        """Drain the frames to write to the station, in order."""
        out, self._out = self._out, []
        return out

    # -- connection -------------------------------------------------------------------------

    def connection_made(self, ocpp_version: versions.OcppVersion = versions.V201) -> None:
        """A (new) websocket to this station is open; calls may start again.

        Args:
            ocpp_version: the version negotiated for this connection; every message is
                validated against its schemas and setpoints take its profile shape.
        """
        if ocpp_version != self._version:
            self._version = ocpp_version
            self._validators = (self._validators_201 if ocpp_version == versions.V201
                                else validators_for(ocpp_version))
            self._encoder = self._encoder_for(ocpp_version)
        self._connected = True

    def connection_lost(self, now_s: float) -> list[Event]:
        """Free the outstanding call at once; keep pending setpoints and station state.

        Triggers not yet answered are dropped; an unanswered request to re-report transactions
        is asked again on the next connection.
        """
        self._connected = False
        self._out.clear()  # answers meant for the dead connection
        self._triggers.clear()
        self._resync_queued = False
        self._reports_requested = False
        self._status_requested.clear()
        out, self._outstanding = self._outstanding, None
        if out is None:
            return []
        return [CallFailed(out.action, out.evse_id, "connection lost")]
