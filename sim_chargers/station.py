"""One simulated OCPP 2.0.1 or 2.1 charging station with one EVSE, over raw websockets + orjson.

An edge: it owns one websocket connection, makes its CALLs through a CallChannel
(call_channel.py) and drives one row of a shared VehiclePlant through a ProfileFollower
(profile_follower.py; the profile maths lives in chargeprofile.py). It does NOT use
ocpp.ChargePoint (1000 stations run in one process for benchmarks, PITFALLS.md). One station's
failure never leaves `run()` except as a logged reconnect, so it cannot affect another station.

Sequence per connection: BootNotification (retry after `interval` while Pending/Rejected) ->
StatusNotification Occupied -> TransactionEvent Started (Updated after a reconnect) ->
NotifyEVChargingNeeds (once) -> MeterValues every `meter_values_period_s` and Heartbeat every
boot `interval`. Incoming: SetChargingProfile, ClearChargingProfile, Reset, TriggerMessage;
anything else gets CALLERROR NotImplemented. A BootNotification is sent on every
(re)connection: a CSMS must accept it at any time and it lets a per-connection CSMS session
learn the station again.

OCPP version (`StationConfig.ocpp_version`): the station offers that one subprotocol
("ocpp2.0.1" or "ocpp2.1"), validates incoming CALLs against its schemas and, under 2.1, follows
CentralSetpoint periods (signed `setpoint`) as it follows negative limits under 2.0.1
(sim_chargers/station_modes.py); a 2.1 station that may discharge reports AC_BPT charging needs.

The frames and payloads, and how a TriggerMessage is answered (F06), are built by the pure
sim_chargers/station_messages.py; this module sends them, in order: a TriggerMessageResponse
goes out before the message it asked for (F06.FR.04).
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

from controller.ocpp import versions
from controller.ocpp.errors import FORMAT_VIOLATION, ValidationError
from controller.ocpp.schemas import Validators, default_validators, validators_for
from sim_chargers.call_channel import CallChannel, CallFailed
from sim_chargers.chargeprofile import ActiveProfile, ProfileRejected, accept_profile, clear_matches
from sim_chargers.plant import VehiclePlant
from sim_chargers.profile_follower import ProfileFollower
from sim_chargers.station_messages import (
    CALL,
    ERROR,
    EVSE_ID,
    RESULT,
    boot_request,
    charging_needs_request,
    error_frame,
    meter_values_request,
    rejected,
    result_frame,
    status_request,
    transaction_event_request,
    trigger_answer,
)
from sim_chargers.station_modes import as_limits

log = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("ocpp2.0.1")  # the default version's subprotocol
OCPP_VERSIONS: tuple[versions.OcppVersion, ...] = (versions.V201, versions.V21)
ProfileHook = Callable[[str, int, float, float], None]  # (station_id, evse_id, limit_w, recv_s)


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
    discharge: bool = True  # follow negative limits / setpoints (SPEC §2.4); else clamp to 0
    ocpp_version: versions.OcppVersion = versions.V201  # "2.0.1" or "2.1": subprotocol offered
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
        self.profiles_accepted = 0
        self.connections = 0
        self._tx_started = False
        self._seq_no = 0
        self._needs_sent = False
        if cfg.ocpp_version not in OCPP_VERSIONS:
            raise ValueError(f"ocpp_version must be one of {OCPP_VERSIONS}, "
                             f"got {cfg.ocpp_version!r}")
        self._subprotocol = Subprotocol(versions.subprotocol(cfg.ocpp_version))
        self._validators: Validators = validators_for(cfg.ocpp_version)
        with contextlib.suppress(ValidationError):  # compile now: the first profile stays fast
            self._validators.validate("SetChargingProfile", "request", {})
        self._calls = CallChannel(cfg.station_id, cfg.call_timeout_s)
        self._boot_ok = False
        self._rng = random.Random(cfg.station_id)  # jitter only, not crypto
        # Messages a TriggerMessage asked for; sent after its response (F06.FR.04).
        self._after_reply: list[tuple[str, Callable[[], dict[str, Any]]]] = []
        self._followups: set[asyncio.Task[None]] = set()
        self.follower = ProfileFollower(plant, row, baseline_w=cfg.baseline_w,
                                        discharge=cfg.discharge, name=cfg.station_id, clock=clock)

    # -- state -------------------------------------------------------------------------------
    @property
    def station_id(self) -> str:
        return self.cfg.station_id

    @property
    def profile(self) -> ActiveProfile | None:
        """The charging profile in force (None: the baseline)."""
        return self.follower.profile

    @property
    def setpoint_w(self) -> float:
        """The last setpoint commanded to the plant."""
        return self.follower.setpoint_w

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
        async with connect(url, subprotocols=[self._subprotocol],
                           additional_headers=self._headers(),
                           ssl=self.cfg.ssl, proxy=None, compression=None,
                           open_timeout=self.cfg.open_timeout_s, user_agent_header=None,
                           ping_interval=self.cfg.ping_interval_s,
                           max_size=self.cfg.max_frame_bytes) as ws:
            if ws.subprotocol != self._subprotocol:
                raise ConnectionError(
                    f"CSMS did not accept {self._subprotocol} ({ws.subprotocol})")
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
        return await self._calls.call(functools.partial(ws.send, text=True), action, payload)

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
        payload = boot_request(reason, model=self.cfg.model, vendor_name=self.cfg.vendor_name)
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
        ev = transaction_event_request(self.transaction_id, self._seq_no, started=started,
                                       triggered=triggered, power_w=self.power_w,
                                       wall_s=self._wall())
        if not started:
            context = "Trigger" if triggered else "Sample.Periodic"
            ev["meterValue"] = self.meter_values_payload(context)["meterValue"]
        self._seq_no += 1
        self._tx_started = True
        return ev

    def _needs(self) -> dict[str, Any]:
        par = self.plant.params
        bidirectional = self.cfg.ocpp_version == versions.V21 and self.cfg.discharge
        return charging_needs_request(
            float(par.max_charge_w[self.row]), float(par.capacity_wh[self.row]), self.soc_frac,
            max_discharge_w=float(par.max_discharge_w[self.row]) if bidirectional else None)

    def meter_values_payload(self, context: str = "Sample.Periodic") -> dict[str, Any]:
        """MeterValues request: import/export power (W, magnitudes) and SoC (%)."""
        return meter_values_request(self.power_w, self.soc_frac, self._wall(), context)

    def _status_payload(self) -> dict[str, Any]:
        return status_request(self._wall())

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
            self._calls.connection_lost()
        raise _ConnectionLostError("closed by the CSMS")

    def handle_frame(self, data: str | bytes) -> bytes | None:
        """One incoming frame -> the reply frame to send (None: nothing). Never raises."""
        recv_s = self._clock()
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("%s: frame is not JSON", self.station_id)
            return error_frame("-1", "RpcFrameworkError", "not JSON")
        if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[1], str):
            log.warning("%s: frame is not an OCPP-J message", self.station_id)
            return error_frame("-1", "RpcFrameworkError", "not an OCPP-J message")
        typ, uid = msg[0], msg[1]
        if typ == CALL and len(msg) == 4 and isinstance(msg[2], str):
            return self._answer(uid, msg[2], msg[3], recv_s)
        if typ in (RESULT, ERROR):
            self._calls.resolve(msg)
            return None
        return error_frame(uid, "MessageTypeNotSupported", "")

    def _answer(self, uid: str, action: str, payload: Any, recv_s: float) -> bytes:
        handler = _HANDLERS.get(action)
        if handler is None:
            return error_frame(uid, "NotImplemented", f"{action} is not implemented")
        try:
            self._validators.validate(action, "request", payload)
            result = handler(self, payload, recv_s)
        except (ValidationError, KeyError, ValueError, TypeError, IndexError):
            log.warning("%s: malformed %s", self.station_id, action, exc_info=True)
            # OCPP 2.0.1 Part 4 §4.2.3 (1.6 called it FormationViolation)
            return error_frame(uid, FORMAT_VIOLATION, f"malformed {action}")
        except Exception:
            log.exception("%s: %s handler failed", self.station_id, action)
            return error_frame(uid, "InternalError", "")
        return result_frame(uid, result)

    def _set_profile(self, payload: dict[str, Any], recv_s: float) -> dict[str, Any]:
        try:
            if self.cfg.ocpp_version == versions.V21:
                payload = as_limits(payload)  # operationMode -> signed limit per period
            prof = accept_profile(payload, evse_id=EVSE_ID, transaction_id=self.transaction_id,
                                  now_s=recv_s, wall_s=self._wall())
        except ProfileRejected as rej:
            return rejected(rej.reason_code)
        self.profiles_accepted += 1
        self.follower.follow(prof, recv_s)
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
        self.follower.follow(None, recv_s)
        return {"status": "Accepted"}

    def _reset(self, payload: dict[str, Any], recv_s: float) -> dict[str, Any]:
        log.info("%s: Reset %s accepted (simulated: no reboot)", self.station_id,
                 payload.get("type"))
        return {"status": "Accepted"}

    def _trigger(self, payload: dict[str, Any], recv_s: float) -> dict[str, Any]:
        """TriggerMessage (F06): say whether the requested message will follow, queue it."""
        reply, requested = trigger_answer(
            payload, booted=self.booted,
            tx_reported=self.transaction_id is not None and self._tx_started)
        if requested is not None:
            self._after_reply.append((requested, self._triggered(requested)))
        return reply

    def _triggered(self, requested: str) -> Callable[[], dict[str, Any]]:
        """The builder of a message a TriggerMessage asked for (built when it is sent)."""
        builders: dict[str, Callable[[], dict[str, Any]]] = {
            "TransactionEvent": functools.partial(self._tx_event, triggered=True),
            "StatusNotification": self._status_payload,
            "MeterValues": functools.partial(self.meter_values_payload, "Trigger"),
            "Heartbeat": dict,
        }
        return builders[requested]

    def close(self) -> None:
        """Cancel the profile timer (call after cancelling run())."""
        self.follower.close()


_Handler = Callable[[SimStation, dict[str, Any], float], dict[str, Any]]
_HANDLERS: dict[str, _Handler] = {
    "SetChargingProfile": SimStation._set_profile,
    "ClearChargingProfile": SimStation._clear_profile,
    "Reset": SimStation._reset,
    "TriggerMessage": SimStation._trigger,
}


with contextlib.suppress(Exception):  # warm the cache at import: first profile stays fast
    default_validators().validate("SetChargingProfile", "request", {})
