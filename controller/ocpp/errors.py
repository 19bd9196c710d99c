"""The OCPP core's exception tree; the only exceptions that escape controller.ocpp.

No I/O here. Anything else raised out of the core is a bug (h11's contract), and the fuzz tests
hold the core to that::

    OcppError                 base of everything the core raises on bad input
     +-- FrameError           not a valid OCPP-J frame (Part 4 §4.1-4.2); carries the OCPP
     |                        error `code` and the `unique_id` if it could be read
     +-- ValidationError      a payload fails its JSON schema; carries the OCPP error `code`
"""

from __future__ import annotations

# OCPP 2.0.1 Part 4 §4.2.3 error codes used by the core.
FORMAT_VIOLATION = "FormatViolation"
GENERIC_ERROR = "GenericError"
INTERNAL_ERROR = "InternalError"
MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
PROTOCOL_ERROR = "ProtocolError"
RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
SECURITY_ERROR = "SecurityError"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


class OcppError(Exception):
    """Base class of every error the OCPP core raises on bad input."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FrameError(OcppError):
    """The text is not a valid OCPP-J frame.

    Attributes:
        code: OCPP error code to answer with (FormatViolation, RpcFrameworkError, ...).
        unique_id: the frame's message id if it could be read, else None (answer with "-1").
        message_type: the frame's message type id if it could be read (2, 3, 4 or other), else
            None. A broken CALLRESULT/CALLERROR (3/4) is never answered with a CALLERROR.
    """

    def __init__(self, code: str, message: str, unique_id: str | None = None,
                 message_type: int | None = None) -> None:
        super().__init__(code, message)
        self.unique_id = unique_id
        self.message_type = message_type


class ValidationError(OcppError):
    """A payload fails its action's JSON schema.

    Attributes:
        code: FormatViolation, PropertyConstraintViolation, OccurrenceConstraintViolation or
            TypeConstraintViolation (OCPP 2.0.1 Part 4 §4.2.3).
    """
