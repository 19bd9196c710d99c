"""The default service products of SPEC §2.1: GB DC/DM/DR (low and high), FCR and SFFR.

A table of `ServiceDefinition`s with the source of every figure, the product names and the
compound names (DC = DC-L + DC-H, ...). The daemon's [[service]] tables override these
(controller/settings_services.py); `services.contracts_from` looks names up here.

Data only: no evaluation (services.py), no validation beyond what `ServiceDefinition` does.
"""

from __future__ import annotations

from controller.control.service_definition import Curve, Direction, ServiceDefinition

# Sources: NESO "Dynamic Containment / Moderation / Regulation" service terms (deadband ±0.015 Hz,
# knee and full-delivery points, timings); EU 2017/1485 (SOGL) Annex V (FCR: full activation at
# ±200 mHz, insensitivity ±10 mHz, full by 30 s); seed Table 10 (timings) and eq. 7 (FCR).
_DB_GB_HZ = 0.015  # NESO dynamic services deadband


def _gb(name: str, direction: Direction, pts: tuple[tuple[float, float], ...], *,
        start_s: float, full_s: float, sustain_s: float) -> ServiceDefinition:
    return ServiceDefinition(name, direction, _DB_GB_HZ, Curve(pts), start_s, full_s, sustain_s)


# DC: 5 % at 0.2 Hz (linear from the deadband), then linear to 100 % at 0.5 Hz; 0.5 s / 1 s / 15 min
_DC_PTS = ((_DB_GB_HZ, 0.0), (0.2, 0.05), (0.5, 1.0))
# DM: 5 % at 0.1 Hz, then linear to 100 % at 0.2 Hz; 0.5 s / 1 s / 30 min
_DM_PTS = ((_DB_GB_HZ, 0.0), (0.1, 0.05), (0.2, 1.0))
# DR: linear to 100 % at 0.2 Hz; 2 s / 10 s / 60 min
_DR_PTS = ((_DB_GB_HZ, 0.0), (0.2, 1.0))

DEFAULT_DEFINITIONS: dict[str, ServiceDefinition] = {
    # FCR, seed eq. 7: P = Pmax·Δf/200 mHz, saturating at ±Pmax, x (1 + 20 %) allowed above 50 Hz
    # (still capped at Pmax). Eq. 7 itself is asymmetric: no response above 50 Hz only at exactly
    # 50 Hz, and below only under 49.99 Hz, stepping to 5 % there. We use the symmetric 10 mHz
    # deadband of SPEC §2.1 / SOGL Annex V with the curve linear from the deadband edge (no step),
    # and no over-delivery by default (over_delivery_high=0.2 reproduces eq. 7's high side).
    "FCR": ServiceDefinition("FCR", "both", 0.010, Curve(((0.010, 0.0), (0.200, 1.0))),
                             None, 30.0, 15 * 60.0),
    "DC-L": _gb("DC-L", "low", _DC_PTS, start_s=0.5, full_s=1.0, sustain_s=15 * 60.0),
    "DC-H": _gb("DC-H", "high", _DC_PTS, start_s=0.5, full_s=1.0, sustain_s=15 * 60.0),
    "DM-L": _gb("DM-L", "low", _DM_PTS, start_s=0.5, full_s=1.0, sustain_s=30 * 60.0),
    "DM-H": _gb("DM-H", "high", _DM_PTS, start_s=0.5, full_s=1.0, sustain_s=30 * 60.0),
    "DR-L": _gb("DR-L", "low", _DR_PTS, start_s=2.0, full_s=10.0, sustain_s=60 * 60.0),
    "DR-H": _gb("DR-H", "high", _DR_PTS, start_s=2.0, full_s=10.0, sustain_s=60 * 60.0),
    # SFFR (NESO Static FFR): trigger 49.7 Hz, full by 30 s, held 30 min after the trigger; the
    # curve is unused (a step to 100 %); re-arm rule and its defaults in the services.py docstring.
    "SFFR": ServiceDefinition("SFFR", "low", 0.0, Curve(((0.0, 1.0),)), None, 30.0, 30 * 60.0,
                              trigger_hz=49.7),
}
SERVICE_NAMES: tuple[str, ...] = tuple(DEFAULT_DEFINITIONS)
# SPEC §3.1: a compound name contracts both directions at the same volume.
COMPOUND_NAMES: dict[str, tuple[str, str]] = {
    "DC": ("DC-L", "DC-H"), "DM": ("DM-L", "DM-H"), "DR": ("DR-L", "DR-H"),
}
