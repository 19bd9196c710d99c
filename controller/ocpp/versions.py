"""The OCPP versions this CSMS speaks and how a websocket subprotocol names them.

PURE constants and look-ups, no I/O. OCPP-J (Part 4 §3.1.2 in 2.0.1 and 2.1): the station offers
one or more subprotocols ("ocpp2.1", "ocpp2.0.1") in Sec-WebSocket-Protocol and the CSMS picks
one; the version then holds for the whole connection. When a station offers both, 2.1 wins:
SUBPROTOCOLS lists the preferred one first (the websockets server picks the first entry of the
server's list that the client offered).
"""

from __future__ import annotations

from typing import Final, Literal

OcppVersion = Literal["2.0.1", "2.1"]

V201: Final[OcppVersion] = "2.0.1"
V21: Final[OcppVersion] = "2.1"

# Preference order: the first one the station also offers is chosen.
SUBPROTOCOLS: Final[tuple[str, ...]] = ("ocpp2.1", "ocpp2.0.1")
_BY_SUBPROTOCOL: Final[dict[str, OcppVersion]] = {"ocpp2.1": V21, "ocpp2.0.1": V201}
# The `ocpp` package module holding each version's JSON schemas.
SCHEMA_PACKAGES: Final[dict[OcppVersion, str]] = {V201: "v201", V21: "v21"}


def subprotocol(version: OcppVersion) -> str:
    """The websocket subprotocol of an OCPP version: "2.1" -> "ocpp2.1"."""
    return f"ocpp{version}"


def version_of(subprotocol_name: str | None) -> OcppVersion | None:
    """The OCPP version a negotiated subprotocol names (None: not one we speak)."""
    if subprotocol_name is None:
        return None
    return _BY_SUBPROTOCOL.get(subprotocol_name)


def select(offered: list[str] | tuple[str, ...]) -> OcppVersion | None:
    """The version the CSMS chooses among the subprotocols a station offers (None: none)."""
    for name in SUBPROTOCOLS:
        if name in offered:
            return _BY_SUBPROTOCOL[name]
    return None
