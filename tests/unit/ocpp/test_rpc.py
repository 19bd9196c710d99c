import orjson
import pytest

from controller.ocpp import rpc
from controller.ocpp.errors import FrameError


def test_call_is_parsed_into_id_action_and_payload():
    frame = rpc.parse('[2,"abc","Heartbeat",{}]')
    assert frame == rpc.Call("abc", "Heartbeat", {})


def test_callresult_and_callerror_are_parsed():
    result = rpc.parse(b'[3,"7",{"status":"Accepted"}]')
    assert result == rpc.CallResult("7", {"status": "Accepted"})
    error = rpc.parse('[4,"7","NotSupported","no",{}]')
    assert error == rpc.CallError("7", "NotSupported", "no", {})


@pytest.mark.parametrize(
    ("text", "code", "unique_id", "message_type"),
    [
        ("not json", "FormatViolation", None, None),
        ("{}", "RpcFrameworkError", None, None),
        ("[]", "RpcFrameworkError", None, None),
        ('["2","x","Heartbeat",{}]', "RpcFrameworkError", None, None),
        ('[true,"x","Heartbeat",{}]', "RpcFrameworkError", None, None),
        ('[5,"x","Heartbeat",{}]', "MessageTypeNotSupported", "x", 5),
        ('[2,12,"Heartbeat",{}]', "RpcFrameworkError", None, 2),
        ('[2,"' + "x" * 37 + '","Heartbeat",{}]', "RpcFrameworkError", None, 2),
        ('[2,"x","Heartbeat"]', "RpcFrameworkError", "x", 2),
        ('[2,"x",7,{}]', "RpcFrameworkError", "x", 2),
        ('[2,"x","Heartbeat",[]]', "FormatViolation", "x", 2),
        ('[3,"x",null]', "FormatViolation", "x", 3),
        ('[4,"x",1,"d",{}]', "RpcFrameworkError", "x", 4),
    ],
)
def test_bad_frames_raise_frame_error_with_code_and_readable_id(text, code, unique_id,
                                                                message_type):
    with pytest.raises(FrameError) as info:
        rpc.parse(text)
    assert (info.value.code, info.value.unique_id, info.value.message_type) == (
        code, unique_id, message_type)


def test_unique_id_of_36_characters_is_accepted():
    assert rpc.parse('[2,"' + "x" * 36 + '","Heartbeat",{}]').unique_id == "x" * 36


def test_encoders_produce_ocpp_j_arrays():
    assert orjson.loads(rpc.encode_call("1", "Reset", {"type": "Immediate"})) == [
        2, "1", "Reset", {"type": "Immediate"}]
    assert orjson.loads(rpc.encode_result("1", {})) == [3, "1", {}]
    assert orjson.loads(rpc.encode_error("1", "GenericError", "d")) == [
        4, "1", "GenericError", "d", {}]


def test_error_without_readable_id_is_sent_with_minus_one():
    assert orjson.loads(rpc.encode_error(None, "RpcFrameworkError"))[1] == "-1"


def test_error_description_is_truncated_to_255_characters():
    assert len(orjson.loads(rpc.encode_error("1", "GenericError", "x" * 1000))[3]) == 255
