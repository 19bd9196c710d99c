"""One simulated OCPP 2.0.1 charging station with one EVSE, over raw websockets + orjson.

An edge: it owns one websocket connection and drives one row of a shared VehiclePlant. It does
NOT use ocpp.ChargePoint (1000 stations run in one process for benchmarks, PITFALLS.md); the
profile maths lives in chargeprofile.py. One station's failure never leaves `run()` except as
a logged reconnect, so it cannot affect another station.

Sequence per connection: BootNotification (retry after `interval` while Pending/Rejected) ->
StatusNotification Occupied -> TransactionEvent Started (Updated after a reconnect) ->
NotifyEVChargingNeeds (once) -> MeterValues every `meter_values_period_s` and Heartbeat every
boot `interval`. Incoming: SetChargingProfile, ClearChargingProfile, Reset, TriggerMessage;
anything else gets CALLERROR NotImplemented. A BootNotification is sent on every
(re)connection: a CSMS must accept it at any time and it lets a per-connection CSMS session
learn the station again.

TriggerMessage (F06): the TriggerMessageResponse goes out first (F06.FR.04), then the requested
message. TransactionEvent -> Updated with triggerReason Trigger, evse, chargingState and a
meterValue with context Trigger (F06.FR.07); StatusNotification needs evse.id and
evse.connectorId (F06.FR.12); BootNotification is Rejected once booted (F06.FR.17); MeterValues
and Heartbeat are sent as asked; anything else is NotImplemented.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from controller.ocpp.errors import FORMAT_VIOLATION, ValidationError
from controller.ocpp.schemas import default_validators
from controller.timefmt import rfc3339_utc
from sim_chargers.chargeprofile import ActiveProfile, ProfileRejected, accept_profile, clear_matches
from sim_chargers.plant import VehiclePlant

log = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("ocpp2.0.1")
EVSE_ID = 1
CONNECTOR_ID = 1
ProfileHook = Callable[[str, int, float, float], None]  # (station_id, evse_id, limit_w, recv_s)
_CALL, _RESULT, _ERROR = 2, 3, 4


class CallFailed(Exception):  # noqa: N818 - an outcome of a CALL, like TimeoutError
    """The CSMS answered a CALL with CALLERROR or a malformed CALLRESULT."""


class _ConnectionLostError(Exception):
    """The reader saw the connection end; cancels the session's other task."""


@dataclass(frozen=True, slots=True)
class StationConfig:
    """Per-station settings; every limit has a default with its reason."""

    station_id: str
    csms_url: str  # the station id is appended as the last path segment
    password: str | None = None  # HTTP Basic auth (username = station id) when set
    ssl: ssl.SSLContext | None = None
    vendor_name: str = "v2ghub"  # BootNotification, <= 50 chars
    model: str = "sim-v2g-evse"  # BootNotification, <= 20 chars
    discharge: bool = True  # accept negative limits (legacy 2.0.1 convention, SPEC §2.4)
    baseline_w: float = 0.0  # setpoint with no profile in force (SPEC §2.4 safe fallback)
    meter_values_period_s: float = 5.0
    ev_charging_needs: bool = True
    call_timeout_s: float = 10.0  # OCPP-J leaves it to the implementation; the daemon uses 10
    open_timeout_s: float = 10.0
    reconnect_min_s: float = 0.5  # backoff doubles up to max, full jitter (no thundering herd)
    reconnect_max_s: float = 30.0
    boot_retry_s: float = 10.0  # when a Pending/Rejected boot gives interval 0
    default_heartbeat_s: float = 60.0  # when an Accepted boot gives interval 0
    max_frame_bytes: int = 65_536  # 10x the largest frame we expect (a SetChargingProfile)
    ping_interval_s: float | None = 20.0  # websocket keepalive detects a dead CSMS


class SimStation:
    """A simulated station driving row `row` of `plant`."""

    def __init__(self, cfg: StationConfig, plant: VehiclePlant, row: int, *,
                 on_profile: ProfileHook | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.plant = plant
        self.row = row
        self.on_profile = on_profile
        self._clock, self._wall = clock, wall
        self.connected = False
        self.booted = False
        self.transaction_id: str | None = str(uuid.uuid4())  # EV plugged in at start
        self.profile: ActiveProfile | None = None
        self.setpoint_w = cfg.baseline_w
        self.profiles_accepted = 0
        self.connections = 0
        self._tx_started = False
        self._seq_no = 0
        self._needs_sent = False
        self._msg_id = 0
        self._pending: tuple[str, asyncio.Future[dict[str, Any]]] | None = None
        self._call_lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._boot_ok = False
        self._rng = random.Random(cfg.station_id)  # jitter only, not crypto
        # Messages a TriggerMessage asked for; sent after its response (F06.FR.04).
        self._after_reply: list[tuple[str, Callable[[], dict[str, Any]]]] = []
        self._followups: set[asyncio.Task[None]] = set()
        if self.setpoint_w != 0.0:
            plant.command([row], [self.setpoint_w], clock())

    # -- state -------------------------------------------------------------------------------
    @property
    def station_id(self) -> str:
        return self.cfg.station_id

    @property
    def power_w(self) -> float:
        return float(self.plant.power_w[self.row])

    @property
    def soc_frac(self) -> float:
        return float(self.plant.soc_frac[self.row])

    # -- connection loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, serve and reconnect with backoff until cancelled. Never raises otherwise."""
        delay = self.cfg.reconnect_min_s
        while True:
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # isolate this station, keep going
                log.info("%s: connection ended: %r", self.station_id, exc,
                         exc_info=log.isEnabledFor(logging.DEBUG))
            finally:
                self.connected = self.booted = False
            if self._boot_ok:  # a session that got as far as boot resets the backoff
                delay = self.cfg.reconnect_min_s
                self._boot_ok = False
            await asyncio.sleep(self._rng.uniform(delay / 2, delay))
            delay = min(delay * 2, self.cfg.reconnect_max_s)

    def _headers(self) -> dict[str, str]:
        if self.cfg.password is None:
            return {}
        token = base64.b64encode(f"{self.station_id}:{self.cfg.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def _connect_once(self) -> None:
        url = f"{self.cfg.csms_url.rstrip('/')}/{self.station_id}"
        async with connect(url, subprotocols=[SUBPROTOCOL], additional_headers=self._headers(),
                           ssl=self.cfg.ssl, proxy=None, compression=None,
                           open_timeout=self.cfg.open_timeout_s, user_agent_header=None,
                           ping_interval=self.cfg.ping_interval_s,
                           max_size=self.cfg.max_frame_bytes) as ws:
            if ws.subprotocol != SUBPROTOCOL:
                raise ConnectionError(f"CSMS did not accept {SUBPROTOCOL} ({ws.subprotocol})")
            self.connected = True
            self.connections += 1
            self._after_reply.clear()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._read(ws))
                    tg.create_task(self._drive(ws))
            finally:
                for task in self._followups:
                    task.cancel()

    # -- outgoing ----------------------------------------------------------------------------
    async def _call(self, ws: ClientConnection, action: str,
                    payload: dict[str, Any]) -> dict[str, Any]:
        """Send one CALL and wait for its answer (one outstanding CALL, OCPP-J §4.1.1)."""
        async with self._call_lock:
            self._msg_id += 1
            uid = str(self._msg_id)
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending = (uid, fut)
            try:
                await ws.send(orjson.dumps([_CALL, uid, action, payload]), text=True)
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                async with asyncio.timeout(self.cfg.call_timeout_s):
                    return await fut
            finally:
                self._pending = None

    async def _try_call(self, ws: ClientConnection, action: str, payload: dict[str, Any]) -> None:
        try:
            await self._call(ws, action, payload)
        except (CallFailed, TimeoutError) as exc:
            log.warning("%s: %s failed: %s", self.station_id, action, exc)

    async def _send_followup(self, ws: ClientConnection, action: str,
                             build: Callable[[], dict[str, Any]]) -> None:
        try:
            await self._call(ws, action, build())
        except (CallFailed, TimeoutError, ConnectionError) as exc:
            log.warning("%s: triggered %s failed: %s", self.station_id, action, exc)

    async def _drive(self, ws: ClientConnection) -> None:
        interval_s = await self._boot(ws)
        await self._try_call(ws, "StatusNotification", self._status_payload())
        await self._try_call(ws, "TransactionEvent", self._tx_event())
        if self.cfg.ev_charging_needs and not self._needs_sent:
            await self._try_call(ws, "NotifyEVChargingNeeds", self._needs())
            self._needs_sent = True
        period = self.cfg.meter_values_period_s
        next_mv = self._clock()
        next_hb = self._clock() + interval_s
        while True:
            now = self._clock()
            if now >= next_mv:
                await self._try_call(ws, "MeterValues", self.meter_values_payload())
                next_mv = max(next_mv + period, self._clock())
            if now >= next_hb:
                await self._try_call(ws, "Heartbeat", {})
                next_hb = self._clock() + interval_s
            await asyncio.sleep(max(0.0, min(next_mv, next_hb) - self._clock()))

    async def _boot(self, ws: ClientConnection) -> float:
        """BootNotification until Accepted; returns the heartbeat interval (s)."""
        reason = "PowerUp" if self.connections <= 1 else "Unknown"  # a reconnect is no reboot
        payload = {"reason": reason, "chargingStation": {
            "model": self.cfg.model[:20], "vendorName": self.cfg.vendor_name[:50]}}
        while True:
            try:
                resp = await self._call(ws, "BootNotification", payload)
            except (CallFailed, TimeoutError) as exc:
                log.warning("%s: BootNotification failed: %s", self.station_id, exc)
                await asyncio.sleep(self.cfg.boot_retry_s)
                continue
            interval = resp.get("interval")
            ok = isinstance(interval, int) and not isinstance(interval, bool) and interval > 0
            if resp.get("status") == "Accepted":
                self.booted = self._boot_ok = True
                return float(interval) if ok else self.cfg.default_heartbeat_s  # type: ignore[arg-type]
            log.info("%s: boot %s, retrying", self.station_id, resp.get("status"))
            await asyncio.sleep(float(interval) if ok else self.cfg.boot_retry_s)  # type: ignore[arg-type]

    def _tx_event(self, *, triggered: bool = False) -> dict[str, Any]:
        started = not self._tx_started
        reason = "CablePluggedIn" if started else "Trigger" if triggered else "MeterValuePeriodic"
        ev: dict[str, Any] = {
            "eventType": "Started" if started else "Updated",
            "timestamp": rfc3339_utc(self._wall()),
            "triggerReason": reason,
            "seqNo": self._seq_no,
            "transactionInfo": {"transactionId": self.transaction_id, "chargingState":
                                "EVConnected" if started or abs(self.power_w) < 1 else "Charging"},
            "evse": {"id": EVSE_ID, "connectorId": CONNECTOR_ID},
        }
        if not started:
            context = "Trigger" if triggered else "Sample.Periodic"
            ev["meterValue"] = self.meter_values_payload(context)["meterValue"]
        self._seq_no += 1
        self._tx_started = True
        return ev

    def _needs(self) -> dict[str, Any]:
        par = self.plant.params
        r = self.row
        amps = max(1, round(float(par.max_charge_w[r]) / (230.0 * 3)))
        energy = float(par.capacity_wh[r]) * (1.0 - self.soc_frac)
        return {"evseId": EVSE_ID, "chargingNeeds": {
            "requestedEnergyTransfer": "AC_three_phase",
            "acChargingParameters": {"energyAmount": round(energy), "evMinCurrent": 6,
                                     "evMaxCurrent": amps, "evMaxVoltage": 400}}}

    def meter_values_payload(self, context: str = "Sample.Periodic") -> dict[str, Any]:
        """MeterValues request: import/export power (W, magnitudes) and SoC (%)."""
        p = self.power_w

        def sv(value: float, measurand: str, unit: str) -> dict[str, Any]:
            return {"value": round(value, 1), "measurand": measurand,
                    "context": context, "unitOfMeasure": {"unit": unit}}

        return {"evseId": EVSE_ID, "meterValue": [{
            "timestamp": rfc3339_utc(self._wall()), "sampledValue": [
                sv(max(p, 0.0), "Power.Active.Import", "W"),
                sv(max(-p, 0.0), "Power.Active.Export", "W"),
                sv(self.soc_frac * 100.0, "SoC", "Percent")]}]}

    # -- incoming ----------------------------------------------------------------------------
    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                reply = self.handle_frame(data)
                if reply is not None:
                    await ws.send(reply, text=True)
                for action, build in self._after_reply:  # F06.FR.04: after the response
                    task = asyncio.create_task(self._send_followup(ws, action, build))
                    self._followups.add(task)
                    task.add_done_callback(self._followups.discard)
                self._after_reply.clear()
        finally:
            if self._pending is not None and not self._pending[1].done():
                self._pending[1].set_exception(ConnectionError("connection lost"))
        raise _ConnectionLostError("closed by the CSMS")

    def handle_frame(self, data: str | bytes) -> bytes | None:
        """One incoming frame -> the reply frame to send (None: nothing). Never raises."""
        recv_s = self._clock()
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("%s: frame is not JSON", self.station_id)
            return _error("-1", "RpcFrameworkError", "not JSON")
        if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[1], str):
            log.warning("%s: frame is not an OCPP-J message", self.station_id)
            return _error("-1", "RpcFrameworkError", "not an OCPP-J message")
        typ, uid = msg[0], msg[1]
        if typ == _CALL and len(msg) == 4 and isinstance(msg[2], str):
            return self._answer(uid, msg[2], msg[3], recv_s)
        if typ in (_RESULT, _ERROR):
            self._resolve(msg)
            return None
        return _error(uid, "MessageTypeNotSupported", "")

    def _resolve(self, msg: list[Any]) -> None:
        if self._pending is None or self._pending[0] != msg[1] or self._pending[1].done():
            log.warning("%s: answer to unknown message id %r", self.station_id, msg[1])
            return
        fut = self._pending[1]
        if msg[0] == _RESULT and isinstance(msg[2], dict):
            fut.set_result(msg[2])
        else:
            fut.set_exception(CallFailed(f"CALLERROR {msg[2]!r}" if msg[0] == _ERROR
                                         else "malformed CALLRESULT"))

    def _answer(self, uid: str, action: str, payload: Any, recv_s: float) -> bytes:
        handler = _HANDLERS.get(action)
        if handler is None:
            return _error(uid, "NotImplemented", f"{action} is not implemented")
        try:
            default_validators().validate(action, "request", payload)
            result = handler(self, payload, recv_s)
        except (ValidationError, KeyError, ValueError, TypeError, IndexError):
            log.warning("%s: malformed %s", self.station_id, action, exc_info=True)
            # OCPP 2.0.1 Part 4 §4.2.3 (1.6 called it FormationViolation)
            return _error(uid, FORMAT_VIOLATION, f"malformed {action}")
        except Exception:
            log.exception("%s: %s handler failed", self.station_id, action)
            return _error(uid, "InternalError", "")
        return orjson.dumps([_RESULT, uid, result])

    def _set_profile(self, payload: dict[str, Any], recv_s: float) -> dict[str, Any]:
        try:
            prof = accept_profile(payload, evse_id=EVSE_ID, transaction_id=self.transaction_id,
                                  now_s=recv_s, wall_s=self._wall())
        except ProfileRejected as rej:
            return {"status": "Rejected", "statusInfo": {"reasonCode": rej.reason_code}}
        self.profile = prof
        self.profiles_accepted += 1
        self._apply(recv_s)
        if self.on_profile is not None:
            limit = prof.limit_at(recv_s)
            try:
                self.on_profile(self.station_id, EVSE_ID,
                                prof.limits_w[0] if limit is None else limit, recv_s)
            except Exception:
                log.exception("%s: on_profile hook failed", self.station_id)
        return {"status": "Accepted"}

    def _clear_profile(self, payload: dict[str, Any], recv_s: float) -> dict[str, Any]:
        if self.profile is None or not clear_matches(payload, self.profile, EVSE_ID):
            return {"status": "Unknown"}
        self.profile = None
        self._apply(recv_s)
        return {"status": "Accepted"}

    def _reset(self, payload: dict[str, Any], recv_s: float) -> dict[str, Any]:
        log.info("%s: Reset %s accepted (simulated: no reboot)", self.station_id,
                 payload.get("type"))
        return {"status": "Accepted"}

    def _trigger(self, payload: dict[str, Any], recv_s: float) -> dict[str, Any]:
        """TriggerMessage (F06): say whether the requested message will follow, queue it."""
        requested = payload["requestedMessage"]
        evse = payload.get("evse")
        ours = evse is None or evse["id"] == EVSE_ID
        build: Callable[[], dict[str, Any]]
        if requested == "TransactionEvent":
            # F06.FR.07: Updated, triggerReason Trigger; only for an ongoing transaction that
            # has been reported Started (otherwise the drive loop still has to send that).
            if not ours or self.transaction_id is None or not self._tx_started:
                return _rejected("TxNotFound")
            build = functools.partial(self._tx_event, triggered=True)
        elif requested == "StatusNotification":
            # F06.FR.12: the connector must be named
            if evse is None or not ours or evse.get("connectorId") != CONNECTOR_ID:
                return _rejected("UnknownConnectorId")
            build = self._status_payload
        elif requested == "MeterValues":
            if not ours:
                return _rejected("UnknownEvse")
            build = functools.partial(self.meter_values_payload, "Trigger")
        elif requested == "Heartbeat":
            build = dict
        elif requested == "BootNotification" and self.booted:
            return _rejected("NotEnabled")  # F06.FR.17: the last boot was Accepted
        else:
            return {"status": "NotImplemented"}
        self._after_reply.append((requested, build))
        return {"status": "Accepted"}

    def _status_payload(self) -> dict[str, Any]:
        return {"timestamp": rfc3339_utc(self._wall()), "connectorStatus": "Occupied",
                "evseId": EVSE_ID, "connectorId": CONNECTOR_ID}

    # -- profile -> plant --------------------------------------------------------------------
    def _apply(self, now_s: float) -> None:
        """Command the plant with the limit in force (baseline if none); re-arm the timer."""
        prof = self.profile
        limit = prof.limit_at(now_s) if prof is not None else None
        if prof is not None and now_s >= prof.expires_s:
            self.profile = prof = None  # lapsed: SPEC §2.4 fallback to baseline
        target = self.cfg.baseline_w if limit is None else limit
        if not self.cfg.discharge:
            target = max(target, 0.0)
        if target != self.setpoint_w:
            self.plant.command([self.row], [target], now_s)
            self.setpoint_w = target
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        nxt = prof.next_change_s(now_s) if prof is not None else None
        if nxt is not None:
            delay = max(0.0, nxt - self._clock()) + 1e-3  # never fire before the change
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self._apply(self._clock())
        except Exception:
            log.exception("%s: applying the profile failed", self.station_id)

    def close(self) -> None:
        """Cancel the profile timer (call after cancelling run())."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _error(uid: str, code: str, description: str) -> bytes:
    return orjson.dumps([_ERROR, uid, code, description, {}])


def _rejected(reason_code: str) -> dict[str, Any]:
    return {"status": "Rejected", "statusInfo": {"reasonCode": reason_code}}


_Handler = Callable[[SimStation, dict[str, Any], float], dict[str, Any]]
_HANDLERS: dict[str, _Handler] = {
    "SetChargingProfile": SimStation._set_profile,
    "ClearChargingProfile": SimStation._clear_profile,
    "Reset": SimStation._reset,
    "TriggerMessage": SimStation._trigger,
}


with contextlib.suppress(Exception):  # warm the cache at import: first profile stays fast
    default_validators().validate("SetChargingProfile", "request", {})
