"""OCPP 2.0.1 / 2.1 websocket server: drives one StationSession per configured station.

The edge only moves bytes: authenticate the handshake, feed received text to the session, write
what it queues, and run poll() at its deadlines. Every protocol decision lives in
controller.ocpp.session. Security profiles (OCPP 2.0.1 Part 2 §A00): 0 none (loopback only),
1 HTTP Basic, 2 TLS + Basic, 3 mutual TLS (client certificate CN = station id).

Subprotocols: "ocpp2.1" and "ocpp2.0.1", 2.1 preferred when a station offers both
(controller.ocpp.versions); the negotiated version goes to the session, which validates and
shapes every message for it.

A second connection for a station id replaces the first: the old one is closed with 1000
("replaced by a new connection"), its outstanding call fails at once, and the session (boot and
transaction state, pending setpoints) carries over to the new connection.

Acceptances survive a CSMS restart through the caller: `accepted` names the stations accepted
before (their sessions start booted and ask to re-report, see session.py), and `on_accepted`
receives the whole set each time a new station is accepted, for the caller to persist (off the
connection task: this adapter does no file I/O).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import ssl
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from controller.ocpp import versions
from controller.ocpp.events import Event, StationBooted, StationConnected, StationLost
from controller.ocpp.schemas import default_validators
from controller.ocpp.session import SessionParams, StationSession
from controller.settings import OcppConfig, StationConfig

log = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("ocpp2.0.1")  # the 2.0.1 subprotocol (kept for callers and tests)
# Preference order: websockets picks the first of ours the station offered (2.1 first).
SUBPROTOCOLS = [Subprotocol(name) for name in versions.SUBPROTOCOLS]
REPLACED_CLOSE_CODE = 1000  # normal closure: the station itself opened a newer connection
_REALM = 'Basic realm="v2ghub", charset="UTF-8"'

EventSink = Callable[[str, Event], None]
AcceptedSink = Callable[[frozenset[str]], None]


@dataclass(eq=False)
class _Conn:
    station_id: str
    ws: ServerConnection
    session: StationSession
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    replaced: bool = False
    backlog: list[str] = field(default_factory=list)  # frames the fast path could not write
    timer: asyncio.TimerHandle | None = None  # wakes the writer at the outstanding call's timeout


class OcppServer:
    """Websocket CSMS endpoint; see module docstring."""

    def __init__(self, cfg: OcppConfig, params: SessionParams, on_event: EventSink,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, *,
                 accepted: Collection[str] = (),
                 on_accepted: AcceptedSink | None = None) -> None:
        self._cfg = cfg
        self._on_event = on_event
        self._on_accepted = on_accepted
        self._clock = clock
        self._wall = wall
        self._stations: dict[str, StationConfig] = {st.id: st for st in cfg.stations}
        # Only configured stations count: an id removed from the config is forgotten.
        self._accepted: set[str] = {sid for sid in accepted if sid in self._stations}
        validators = default_validators()
        self._sessions = {
            st.id: StationSession(st.id, discharge_allowed=st.discharge == "negative_limit",
                                  params=params, validators=validators,
                                  previously_accepted=st.id in self._accepted)
            for st in cfg.stations
        }
        for session in self._sessions.values():
            session.connection_lost(clock())  # not connected until a websocket opens
        self._conns: dict[str, _Conn] = {}
        self._closing: set[asyncio.Task[None]] = set()  # replaced connections being closed
        self._server: Server | None = None

    # -- public -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start accepting stations."""
        cfg = self._cfg
        self._server = await serve(
            self._handle, cfg.host, cfg.port,
            subprotocols=SUBPROTOCOLS,  # no common subprotocol -> websockets answers 400
            process_request=self._process_request,
            ssl=self._ssl_context(),
            max_size=cfg.max_frame_bytes,
            compression="deflate" if cfg.compression else None,
            ping_interval=cfg.ping_interval_s,
        )

    @property
    def port(self) -> int:
        """The real bound port (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("OcppServer.start() has not run")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    def offer_setpoint(self, station_id: str, evse_id: int, limit_w: float) -> None:
        """Offer a setpoint (W); latest value wins per EVSE. Unknown stations are ignored."""
        session = self._sessions.get(station_id)
        if session is None:
            return
        session.offer_setpoint(evse_id, limit_w)
        conn = self._conns.get(station_id)
        if conn is not None:
            self._flush_now(conn)

    def _flush_now(self, conn: _Conn) -> None:
        """Fast path: start the next CALL and write it in this call, without a task switch.

        Waking 1000 writer tasks costs more than the frames themselves (bench/dispatch.py), so
        the frame goes straight into the transport. A CALL's timeout is a loop timer that wakes
        the writer task only if the station has not answered by then.
        """
        session = conn.session
        self._emit(conn.station_id, session.poll(self._clock(), self._wall()))
        frames = session.data_to_send()
        if not frames:
            return
        if not _write_now(conn.ws, frames):
            conn.backlog.extend(frames)  # connection closing: let the writer task deal with it
            conn.wake.set()
            return
        deadline = session.next_deadline_s()
        if deadline is not None:
            if conn.timer is not None:
                conn.timer.cancel()
            loop = asyncio.get_running_loop()
            conn.timer = loop.call_later(max(0.0, deadline - self._clock()), conn.wake.set)

    def station_ids_online(self) -> set[str]:
        return set(self._conns)

    def accepted_station_ids(self) -> frozenset[str]:
        """Stations whose boot this CSMS has accepted (now or before a restart)."""
        return frozenset(self._accepted)

    def session(self, station_id: str) -> StationSession | None:
        """The station's session (for inspection and tests)."""
        return self._sessions.get(station_id)

    async def close(self) -> None:
        """Stop accepting, close every connection and wait for their tasks to end."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- handshake ----------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        cfg = self._cfg
        if cfg.security_profile < 2 or cfg.tls is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # A00.FR.309: TLS 1.2 or above
        ctx.load_cert_chain(cfg.tls.cert_file, cfg.tls.key_file)
        if cfg.security_profile == 3:
            if cfg.tls.ca_file is None:
                raise ValueError("security profile 3 needs tls.ca_file")
            ctx.verify_mode = ssl.CERT_REQUIRED  # A00.FR.402-style client authentication
            ctx.load_verify_locations(cfg.tls.ca_file)
        return ctx

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        station_id = station_id_from_path(request.path)
        station = self._stations.get(station_id)
        if station is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "Unknown charging station\n")
        profile = self._cfg.security_profile
        if profile in (1, 2) and not _basic_auth_ok(request, station):
            resp = conn.respond(HTTPStatus.UNAUTHORIZED, "Authentication required\n")
            resp.headers["WWW-Authenticate"] = _REALM
            return resp
        if profile == 3 and _peer_common_name(conn) != station_id:
            return conn.respond(HTTPStatus.UNAUTHORIZED, "Certificate does not match station\n")
        return None

    # -- per connection -----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        station_id = station_id_from_path(ws.request.path if ws.request else "")
        session = self._sessions[station_id]  # process_request admitted only known ids
        old = self._conns.get(station_id)
        if old is not None:
            self._retire(old, "replaced by a new connection")
            closing = asyncio.create_task(old.ws.close(REPLACED_CLOSE_CODE, "replaced"))
            self._closing.add(closing)  # keep a reference until it is done
            closing.add_done_callback(self._closing.discard)
        conn = _Conn(station_id, ws, session)
        self._conns[station_id] = conn
        version = versions.version_of(ws.subprotocol) or versions.V201
        session.connection_made(version)
        self._emit(station_id, [StationConnected(booted=session.booted, ocpp_version=version)])
        conn.wake.set()  # pending setpoints held while offline go out now
        writer = asyncio.create_task(self._write_loop(conn), name=f"ocpp-writer-{station_id}")
        reason = "closed"
        try:
            async for text in ws:
                if conn.replaced:
                    break
                self._emit(station_id, session.receive_text(text, self._clock(), self._wall()))
                self._flush_now(conn)  # replies and the next CALL go out without a task switch
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        finally:
            writer.cancel()
            if conn.timer is not None:
                conn.timer.cancel()
            if ws.close_code is not None:
                reason = f"closed with code {ws.close_code}"
            if not conn.replaced:
                self._retire(conn, reason)
            await asyncio.gather(writer, return_exceptions=True)

    def _retire(self, conn: _Conn, reason: str) -> None:
        """Connection gone: fail its outstanding call now and report the station lost."""
        conn.replaced = True
        conn.wake.set()
        if self._conns.get(conn.station_id) is conn:
            del self._conns[conn.station_id]
        self._emit(conn.station_id, conn.session.connection_lost(self._clock()))
        self._emit(conn.station_id, [StationLost(reason)])

    async def _write_loop(self, conn: _Conn) -> None:
        session, ws, wake = conn.session, conn.ws, conn.wake
        try:
            while not conn.replaced:
                deadline = session.next_deadline_s()
                if deadline is None:
                    await wake.wait()
                else:
                    try:
                        async with asyncio.timeout(max(0.0, deadline - self._clock())):
                            await wake.wait()
                    except TimeoutError:
                        pass
                wake.clear()
                if conn.replaced:
                    return
                self._emit(conn.station_id, session.poll(self._clock(), self._wall()))
                frames, conn.backlog = [*conn.backlog, *session.data_to_send()], []
                for frame in frames:
                    await ws.send(frame)
        except ConnectionClosed:
            return

    def _emit(self, station_id: str, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, StationBooted) and station_id not in self._accepted:
                self._accepted.add(station_id)
                self._notify_accepted()
            try:
                self._on_event(station_id, event)
            except Exception:  # an app bug must never kill a station's connection
                log.exception("on_event failed for station %s, event %r", station_id, event)

    def _notify_accepted(self) -> None:
        if self._on_accepted is None:
            return
        try:
            self._on_accepted(frozenset(self._accepted))
        except Exception:  # persisting is best effort; the station stays accepted in memory
            log.exception("on_accepted failed")


def _write_now(ws: ServerConnection, frames: list[str]) -> bool:
    """Write text frames synchronously if the connection is open; False if it is not.

    This is what `ServerConnection.send` does for a str before it awaits drain(): encode with
    the sans-I/O protocol, hand the bytes to the transport. Skipping drain() is safe here
    because one outstanding CALL per connection bounds what we queue to one small frame.
    """
    if ws.protocol.state is not State.OPEN:
        return False
    for frame in frames:
        ws.protocol.send_text(frame.encode())
    for data in ws.protocol.data_to_send():
        if data:
            ws.transport.write(data)
    return True


def station_id_from_path(path: str) -> str:
    """The station identity is the last path segment: "/CP001" or "/ocpp/CP001"."""
    return path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def _basic_auth_ok(request: Request, station: StationConfig) -> bool:
    """HTTP Basic: username = station id, password from config (A00.FR.203/205)."""
    header = request.headers.get("Authorization")
    if header is None or station.password is None:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return False
    user_ok = hmac.compare_digest(user, station.id.encode())
    password_ok = hmac.compare_digest(password, station.password.encode())
    return bool(sep) and user_ok and password_ok


def _peer_common_name(conn: ServerConnection) -> str | None:
    ssl_object: Any = conn.transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
