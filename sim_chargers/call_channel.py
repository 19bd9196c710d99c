"""The simulated station's outgoing OCPP-J calls: one outstanding CALL, its answer matched by id.

OCPP-J §4.1.1: a client sends a CALL only once the previous one was answered or timed out. The
channel numbers the CALLs, waits for the CALLRESULT or CALLERROR carrying the same id (handed in
by the station's reader through `resolve`), bounds the wait with a timeout and fails the
outstanding call as soon as the connection is lost. It owns no socket (the station passes its
`send`) and knows nothing of the actions or their payloads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sim_chargers.station_messages import ERROR, RESULT, call_frame

log = logging.getLogger(__name__)

Send = Callable[[bytes], Awaitable[None]]


class CallFailed(Exception):  # noqa: N818 - an outcome of a CALL, like TimeoutError
    """The CSMS answered a CALL with CALLERROR or a malformed CALLRESULT."""


class CallChannel:
    """Outgoing CALLs of one station, one at a time (the others wait for the lock)."""

    def __init__(self, name: str, timeout_s: float) -> None:
        """Set up an idle channel.

        Args:
            name: the station id, for log lines.
            timeout_s: how long the answer to a CALL may take.
        """
        self._name = name
        self._timeout_s = timeout_s
        self._msg_id = 0
        self._pending: tuple[str, asyncio.Future[dict[str, Any]]] | None = None
        self._lock = asyncio.Lock()

    async def call(self, send: Send, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one CALL and wait for its answer (one outstanding CALL, OCPP-J §4.1.1).

        Raises:
            CallFailed: CALLERROR or a malformed CALLRESULT.
            TimeoutError: no answer within the timeout.
            ConnectionError: the connection was lost while waiting.
        """
        async with self._lock:
            self._msg_id += 1
            uid = str(self._msg_id)
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending = (uid, fut)
            try:
                await send(call_frame(uid, action, payload))
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                async with asyncio.timeout(self._timeout_s):
                    return await fut
            finally:
                self._pending = None

    def resolve(self, msg: list[Any]) -> None:
        """Hand a CALLRESULT / CALLERROR frame to the call waiting for it; log a stray one."""
        if self._pending is None or self._pending[0] != msg[1] or self._pending[1].done():
            log.warning("%s: answer to unknown message id %r", self._name, msg[1])
            return
        fut = self._pending[1]
        if msg[0] == RESULT and isinstance(msg[2], dict):
            fut.set_result(msg[2])
        else:
            fut.set_exception(CallFailed(f"CALLERROR {msg[2]!r}" if msg[0] == ERROR
                                         else "malformed CALLRESULT"))

    def connection_lost(self) -> None:
        """Fail the outstanding call, if any, with ConnectionError at once."""
        if self._pending is not None and not self._pending[1].done():
            self._pending[1].set_exception(ConnectionError("connection lost"))
