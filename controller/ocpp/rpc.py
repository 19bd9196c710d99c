"""OCPP-J framing (OCPP 2.0.1 Part 4 §4): parse and encode CALL, CALLRESULT and CALLERROR.

No I/O, no clock, no schema checks here (schemas.py does those). parse() raises only FrameError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from controller.ocpp.errors import (
    FORMAT_VIOLATION,
    MESSAGE_TYPE_NOT_SUPPORTED,
    RPC_FRAMEWORK_ERROR,
    FrameError,
)

CALL = 2  # Part 4 §4.1.3 MessageTypeNumber
CALLRESULT = 3
CALLERROR = 4
MAX_UNIQUE_ID_LEN = 36  # Part 4 §4.1.4: MessageId is at most 36 characters
MAX_DESCRIPTION_LEN = 255  # Part 4 §4.2.3: errorDescription, keep it short
UNKNOWN_ID = "-1"  # Part 4 §4.2.3: answer with "-1" when the MessageId cannot be read

Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: Payload


Frame = Call | CallResult | CallError

_LENGTHS = {CALL: 4, CALLRESULT: 3, CALLERROR: 5}


def parse(text: str | bytes) -> Frame:
    """Parse one OCPP-J message.

    Args:
        text: the websocket message (text; bytes are accepted and must be UTF-8 JSON).

    Returns:
        The Call, CallResult or CallError it holds.

    Raises:
        FrameError: the text is not a valid frame; `code`, `unique_id` and `message_type` say
            how to answer.
    """
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError(FORMAT_VIOLATION, "not valid JSON") from None
    if not isinstance(msg, list) or not msg:
        raise FrameError(RPC_FRAMEWORK_ERROR, "not a JSON array with a message type")
    mtype = msg[0]
    if isinstance(mtype, bool) or not isinstance(mtype, int):
        raise FrameError(RPC_FRAMEWORK_ERROR, "message type is not an integer")
    uid = _unique_id(msg)
    if mtype not in _LENGTHS:
        raise FrameError(MESSAGE_TYPE_NOT_SUPPORTED, f"message type {mtype} is not supported",
                         uid, mtype)
    if uid is None:
        raise FrameError(RPC_FRAMEWORK_ERROR, "message id could not be read", None, mtype)
    if len(msg) != _LENGTHS[mtype]:
        raise FrameError(RPC_FRAMEWORK_ERROR, f"message type {mtype} needs "
                         f"{_LENGTHS[mtype]} elements, got {len(msg)}", uid, mtype)
    if mtype == CALL:
        action, payload = msg[2], msg[3]
        if not isinstance(action, str) or not action:
            raise FrameError(RPC_FRAMEWORK_ERROR, "action is not a string", uid, mtype)
        return Call(uid, action, _payload(payload, uid, mtype))
    if mtype == CALLRESULT:
        return CallResult(uid, _payload(msg[2], uid, mtype))
    code, desc, details = msg[2], msg[3], msg[4]
    if not isinstance(code, str) or not isinstance(desc, str):
        raise FrameError(RPC_FRAMEWORK_ERROR, "error code/description are not strings", uid,
                         mtype)
    return CallError(uid, code, desc, _payload(details, uid, mtype))


def _unique_id(msg: list[Any]) -> str | None:
    if len(msg) < 2:
        return None
    uid = msg[1]
    if not isinstance(uid, str) or not uid or len(uid) > MAX_UNIQUE_ID_LEN:
        return None
    return uid


def _payload(obj: Any, uid: str, mtype: int) -> Payload:
    if not isinstance(obj, dict):
        raise FrameError(FORMAT_VIOLATION, "payload is not a JSON object", uid, mtype)
    return obj


def encode_call(unique_id: str, action: str, payload: Payload) -> str:
    """Encode a CALL frame `[2, id, action, payload]`."""
    return orjson.dumps([CALL, unique_id, action, payload]).decode()


def encode_result(unique_id: str, payload: Payload) -> str:
    """Encode a CALLRESULT frame `[3, id, payload]`."""
    return orjson.dumps([CALLRESULT, unique_id, payload]).decode()


def encode_error(unique_id: str | None, code: str, description: str = "",
                 details: Payload | None = None) -> str:
    """Encode a CALLERROR frame `[4, id, code, description, details]`.

    A None id becomes "-1" (Part 4 §4.2.3). Never put exception text in `description`.
    """
    return orjson.dumps([CALLERROR, unique_id or UNKNOWN_ID, code,
                         description[:MAX_DESCRIPTION_LEN], details or {}]).decode()
