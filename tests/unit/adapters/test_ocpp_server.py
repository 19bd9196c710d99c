import asyncio
import base64
import ssl

import orjson
import pytest
import trustme
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from controller.adapters.ocpp_server import OcppServer, station_id_from_path
from controller.ocpp.events import (
    CallFailed,
    SetpointResult,
    StationBooted,
    StationLost,
    TransactionChanged,
    TriggerResult,
)
from controller.ocpp.schemas import default_validators
from controller.ocpp.session import SessionParams
from controller.settings import OcppConfig, StationConfig, TlsConfig

PASSWORD = "0123456789abcdef"
TS = "2026-11-27T04:00:00Z"
BOOT = [2, "b1", "BootNotification",
        {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}]
WAIT_S = 10.0  # generous upper bound for loopback events; not a speed assertion


def _tx_started(evse_id=1, tx_id="tx1"):
    return [2, "t1", "TransactionEvent", {
        "eventType": "Started", "timestamp": TS, "triggerReason": "CablePluggedIn", "seqNo": 0,
        "transactionInfo": {"transactionId": tx_id}, "evse": {"id": evse_id}}]


def _cfg(**kw):
    stations = tuple(StationConfig(id=sid, password=PASSWORD, discharge="negative_limit")
                     for sid in ("CP1", "CP2"))
    base = {"host": "127.0.0.1", "port": 0, "security_profile": 1, "stations": stations}
    return OcppConfig(**{**base, **kw})


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, station_id, event):
        self.events.append((station_id, event))

    async def wait_for(self, station_id, kind):
        async with asyncio.timeout(WAIT_S):
            while True:
                for sid, ev in self.events:
                    if sid == station_id and isinstance(ev, kind):
                        return ev
                await asyncio.sleep(0.005)


@pytest.fixture
async def server():
    rec = Recorder()
    srv = OcppServer(_cfg(), SessionParams(call_timeout_s=3600.0), rec)
    await srv.start()
    srv.rec = rec
    yield srv
    await srv.close()


def _auth(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _connect(port, station_id, password=PASSWORD, *, path_prefix="", subprotocols=("ocpp2.0.1",),
             scheme="ws", ssl_ctx=None):
    return connect(f"{scheme}://127.0.0.1:{port}{path_prefix}/{station_id}",
                   subprotocols=list(subprotocols) if subprotocols else None,
                   additional_headers=_auth(station_id, password), ssl=ssl_ctx,
                   open_timeout=WAIT_S)


async def _call(ws: ClientConnection, msg):
    await ws.send(msg if isinstance(msg, str) else orjson.dumps(msg).decode())
    async with asyncio.timeout(WAIT_S):
        return orjson.loads(await ws.recv())


async def _boot_with_tx(ws):
    assert (await _call(ws, BOOT))[2]["status"] == "Accepted"
    assert await _call(ws, _tx_started()) == [3, "t1", {}]


def test_station_id_is_the_last_path_segment():
    assert station_id_from_path("/CP1") == "CP1"
    assert station_id_from_path("/ocpp/CP1/") == "CP1"
    assert station_id_from_path("/ocpp/CP1?x=1") == "CP1"


async def test_unknown_station_is_refused_with_404_before_the_upgrade(server):
    with pytest.raises(InvalidStatus) as info:
        async with _connect(server.port, "NOPE"):
            pass
    assert info.value.response.status_code == 404


async def test_wrong_password_is_refused_with_401_and_a_basic_challenge(server):
    with pytest.raises(InvalidStatus) as info:
        async with _connect(server.port, "CP1", "wrong-password-123"):
            pass
    assert info.value.response.status_code == 401
    assert info.value.response.headers["WWW-Authenticate"].startswith("Basic")


async def test_missing_subprotocol_is_refused(server):
    with pytest.raises(InvalidStatus) as info:
        async with _connect(server.port, "CP1", subprotocols=()):
            pass
    assert info.value.response.status_code == 400


async def test_booted_station_receives_a_setpoint_and_its_answer_is_reported(server):
    async with _connect(server.port, "CP1", path_prefix="/ocpp") as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        await _boot_with_tx(ws)
        assert server.station_ids_online() == {"CP1"}
        server.offer_setpoint("CP1", 1, -2500.0)
        async with asyncio.timeout(WAIT_S):
            call = orjson.loads(await ws.recv())
        assert call[2] == "SetChargingProfile"
        default_validators().validate("SetChargingProfile", "request", call[3])
        period = call[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        assert period["limit"] == -2500.0
        await ws.send(orjson.dumps([3, call[1], {"status": "Accepted"}]).decode())
        result = await server.rec.wait_for("CP1", SetpointResult)
        assert (result.evse_id, result.limit_w, result.accepted) == (1, -2500.0, True)
    assert isinstance(await server.rec.wait_for("CP1", StationLost), StationLost)
    assert server.station_ids_online() == set()


async def test_garbage_station_gets_callerrors_and_another_station_is_unaffected(server):
    async with _connect(server.port, "CP1") as bad, _connect(server.port, "CP2") as good:
        assert (await _call(bad, "not json at all"))[:3] == [4, "-1", "FormatViolation"]
        assert (await _call(bad, [2, "x", "Heartbeat", {}]))[2] == "SecurityError"
        await bad.send(b"\xff\xfe binary junk")
        async with asyncio.timeout(WAIT_S):
            assert orjson.loads(await bad.recv())[0] == 4
        await _boot_with_tx(good)
        server.offer_setpoint("CP2", 1, 3000.0)
        async with asyncio.timeout(WAIT_S):
            call = orjson.loads(await good.recv())
        assert call[3]["evseId"] == 1
        assert (await _call(bad, [2, "y", "Heartbeat", {}]))[2] == "SecurityError"


async def test_station_dropping_mid_call_frees_its_slot_at_once(server):
    # call_timeout_s is an hour: a CallFailed seen within WAIT_S can only be the prompt path
    async with _connect(server.port, "CP1") as ws:
        await _boot_with_tx(ws)
        server.offer_setpoint("CP1", 1, 1000.0)
        async with asyncio.timeout(WAIT_S):
            assert orjson.loads(await ws.recv())[2] == "SetChargingProfile"
        server.offer_setpoint("CP1", 1, 2000.0)
    failed = await server.rec.wait_for("CP1", CallFailed)
    assert failed == CallFailed("SetChargingProfile", 1, "connection lost")
    assert server.session("CP1").next_deadline_s() is None
    # the pending setpoint survives and goes out on the reconnect (no new boot needed)
    async with _connect(server.port, "CP1") as ws:
        async with asyncio.timeout(WAIT_S):
            call = orjson.loads(await ws.recv())
        assert call[3]["chargingProfile"]["chargingSchedule"][0][
            "chargingSchedulePeriod"][0]["limit"] == 2000.0


async def test_second_connection_replaces_the_first(server):
    async with _connect(server.port, "CP1") as first:
        await _boot_with_tx(first)
        async with _connect(server.port, "CP1") as second:
            assert (await _call(second, [2, "h", "Heartbeat", {}]))[0] == 3
            async with asyncio.timeout(WAIT_S):
                await first.wait_closed()
            assert first.close_code == 1000
            assert server.station_ids_online() == {"CP1"}


async def test_station_booted_event_reaches_the_app_even_if_the_app_raises(server):
    def broken(_sid, _event):
        raise RuntimeError("app bug")

    server._on_event = broken
    async with _connect(server.port, "CP1") as ws:
        assert (await _call(ws, BOOT))[2]["status"] == "Accepted"
        assert (await _call(ws, [2, "h", "Heartbeat", {}]))[0] == 3


async def test_station_accepted_before_a_restart_is_served_and_asked_to_re_report():
    rec = Recorder()
    saved = []
    srv = OcppServer(_cfg(), SessionParams(call_timeout_s=3600.0), rec,
                     accepted=["CP1", "GONE"], on_accepted=saved.append)
    await srv.start()
    try:
        assert srv.accepted_station_ids() == {"CP1"}  # ids no longer configured are dropped
        srv.offer_setpoint("CP1", 1, -3000.0)
        async with _connect(srv.port, "CP1") as ws:  # no BootNotification: it never rebooted
            async with asyncio.timeout(WAIT_S):
                trigger = orjson.loads(await ws.recv())
            assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "TransactionEvent"}]
            await ws.send(orjson.dumps([3, trigger[1], {"status": "Accepted"}]).decode())
            assert await rec.wait_for("CP1", TriggerResult) == TriggerResult(
                "TransactionEvent", None, "Accepted")
            assert (await _call(ws, [2, "h", "Heartbeat", {}]))[0] == 3
            update = [2, "u1", "TransactionEvent", {
                "eventType": "Updated", "timestamp": TS, "triggerReason": "Trigger",
                "seqNo": 3, "evse": {"id": 1, "connectorId": 1},
                "transactionInfo": {"transactionId": "tx7", "chargingState": "Charging"}}]
            assert await _call(ws, update) == [3, "u1", {}]
            assert await rec.wait_for("CP1", TransactionChanged) == TransactionChanged(
                1, "tx7", True)
            async with asyncio.timeout(WAIT_S):
                status = orjson.loads(await ws.recv())
            assert status[3] == {"requestedMessage": "StatusNotification",
                                 "evse": {"id": 1, "connectorId": 1}}
            await ws.send(orjson.dumps([3, status[1], {"status": "Rejected"}]).decode())
            async with asyncio.timeout(WAIT_S):
                profile = orjson.loads(await ws.recv())
            assert profile[2] == "SetChargingProfile"
            assert profile[3]["chargingProfile"]["transactionId"] == "tx7"
        assert saved == []  # nothing new was accepted: no write
    finally:
        await srv.close()


async def test_a_new_acceptance_is_handed_over_once_for_persisting():
    saved = []
    srv = OcppServer(_cfg(), SessionParams(call_timeout_s=3600.0), Recorder(),
                     accepted=["CP2"], on_accepted=saved.append)
    await srv.start()
    try:
        async with _connect(srv.port, "CP1") as ws:
            assert (await _call(ws, BOOT))[2]["status"] == "Accepted"
            assert (await _call(ws, BOOT))[2]["status"] == "Accepted"  # a reboot: same set
        async with _connect(srv.port, "CP2") as ws:  # known already (and asked to re-report)
            await ws.send(orjson.dumps(BOOT).decode())
            async with asyncio.timeout(WAIT_S):
                while (reply := orjson.loads(await ws.recv()))[0] != 3:
                    assert reply[2] == "TriggerMessage"
            assert reply[2]["status"] == "Accepted"
        assert saved == [frozenset({"CP1", "CP2"})]
        assert srv.accepted_station_ids() == {"CP1", "CP2"}
    finally:
        await srv.close()


async def test_a_failing_persist_callback_does_not_hurt_the_station():
    def broken(_ids):
        raise OSError("disk full")

    srv = OcppServer(_cfg(), SessionParams(call_timeout_s=3600.0), Recorder(),
                     on_accepted=broken)
    await srv.start()
    try:
        async with _connect(srv.port, "CP1") as ws:
            assert (await _call(ws, BOOT))[2]["status"] == "Accepted"
            assert (await _call(ws, [2, "h", "Heartbeat", {}]))[0] == 3
    finally:
        await srv.close()


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path_factory.mktemp("tls")
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(d / "cert.pem"), append=True)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_ctx)
    return ca, TlsConfig(cert_file=str(d / "cert.pem"), key_file=str(d / "key.pem")), client_ctx, d


async def test_tls_profile_2_boots_over_wss_with_basic_auth(tls_material):
    _, tls, client_ctx, _ = tls_material
    rec = Recorder()
    srv = OcppServer(_cfg(security_profile=2, tls=tls), SessionParams(), rec)
    await srv.start()
    try:
        async with _connect(srv.port, "CP1", scheme="wss", ssl_ctx=client_ctx) as ws:
            assert (await _call(ws, BOOT))[2]["status"] == "Accepted"
        with pytest.raises(InvalidStatus) as info:
            async with _connect(srv.port, "CP1", "bad-password-000", scheme="wss",
                                ssl_ctx=client_ctx):
                pass
        assert info.value.response.status_code == 401
    finally:
        await srv.close()
    assert await rec.wait_for("CP1", StationBooted) == StationBooted("V", "M")


async def test_mtls_profile_3_admits_only_a_certificate_named_after_the_station(tls_material):
    ca, tls, _client_ctx, d = tls_material
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    tls3 = TlsConfig(tls.cert_file, tls.key_file, ca_file=str(d / "ca.pem"))
    srv = OcppServer(_cfg(security_profile=3, tls=tls3), SessionParams(), Recorder())
    await srv.start()
    try:
        for cn, ok in (("CP1", True), ("CP2", False)):
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            ca.configure_trust(ctx)
            ca.issue_cert(cn, common_name=cn).configure_cert(ctx)
            if ok:
                async with _connect(srv.port, "CP1", scheme="wss", ssl_ctx=ctx) as ws:
                    assert (await _call(ws, BOOT))[2]["status"] == "Accepted"
            else:
                with pytest.raises(InvalidStatus) as info:
                    async with _connect(srv.port, "CP1", scheme="wss", ssl_ctx=ctx):
                        pass
                assert info.value.response.status_code == 401
    finally:
        await srv.close()


async def test_mobilityhouse_charge_point_boots_and_accepts_a_setpoint(server):
    class Station(ChargePoint):
        received: asyncio.Queue

        @on("SetChargingProfile")
        async def on_set_charging_profile(self, evse_id, charging_profile, **kwargs):
            await self.received.put((evse_id, charging_profile))
            return call_result.SetChargingProfile(status="Accepted")

    async with _connect(server.port, "CP2") as ws:
        cp = Station("CP2", ws)
        cp.received = asyncio.Queue()
        runner = asyncio.create_task(cp.start())
        try:
            boot = await cp.call(call.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"))
            assert boot.status == "Accepted"
            await cp.call(call.TransactionEvent(
                event_type="Started", timestamp=TS, trigger_reason="EVDetected", seq_no=0,
                transaction_info={"transaction_id": "mh-1"}, evse={"id": 2}))
            server.offer_setpoint("CP2", 2, 7000.0)
            async with asyncio.timeout(WAIT_S):
                evse_id, profile = await cp.received.get()
            assert evse_id == 2
            assert profile["transaction_id"] == "mh-1"
            result = await server.rec.wait_for("CP2", SetpointResult)
            assert (result.evse_id, result.accepted) == (2, True)
        finally:
            runner.cancel()
