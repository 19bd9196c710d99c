"""Daemon configuration tables: one frozen dataclass per TOML table, with its defaults.

Says what a valid configuration holds and why each default is what it is (the comment next to
each field). No parsing and no I/O here: controller/settings_sections.py and
controller/settings_services.py check the TOML values and build these; controller/settings.py
assembles them into `Settings` and re-exports them as the public API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from controller import tomlcheck as tc
from controller.control.services import ServiceDefinition


class ConfigError(tc.CheckError):
    """The configuration is invalid; the message is one line naming the key."""


Discharge = Literal["negative_limit", "none"]


@dataclass(frozen=True, slots=True)
class StationConfig:
    id: str
    password: str | None = None
    discharge: Discharge = "none"
    vehicle: str | None = None
    max_power_kw: float = 11.0  # a typical three-phase 16 A AC EVSE (seed §IV: 11 kW)
    soc_min: float | None = None  # SoC window of this station's vehicles; None: [energy]'s
    soc_max: float | None = None


@dataclass(frozen=True, slots=True)
class VehicleConfig:
    """`[[vehicle]]`: a known vehicle, recognised by the idToken its transactions carry."""

    id_token: str  # as the station reports it (RFID uid, or the EV's MAC with Autocharge)
    model: str  # model library name: dynamics prior and battery size
    capacity_kwh: float | None = None  # None: the model's battery
    soc_min: float | None = None  # SoC window while it is plugged in; None: the station's
    soc_max: float | None = None
    # SoC it must have when it leaves (needs a departure time: `departure`, or what ISO 15118
    # vehicles report in NotifyEVChargingNeeds); None: only what the EV asks for (energyAmount)
    departure_soc: float | None = None
    # daily departure "HH:MM" on the site's clock ([site] timezone); the EV's own departureTime
    # wins when it reports one
    departure: str | None = None

    @property
    def key(self) -> str:
        """idToken match key: OCPP 2.0.1 idTokens are case insensitive."""
        return self.id_token.casefold()


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert_file: str
    key_file: str
    ca_file: str | None = None  # client CA, required for security profile 3


@dataclass(frozen=True, slots=True)
class OcppConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    security_profile: int = 1
    stations: tuple[StationConfig, ...] = ()
    tls: TlsConfig | None = None
    # OCPP-J has no frame limit; 64 KiB is 10x the largest 2.0.1 message we accept (a full
    # TransactionEvent with meter values) and caps memory per connection after inflate.
    max_frame_bytes: int = 65_536
    # permessage-deflate costs ~31 KB RAM per connection and 10-25 % throughput (PITFALLS.md).
    compression: bool = False
    call_timeout_s: float = 10.0  # OCPP-J leaves it to the implementation; 10 s << 30 s default
    # Every frequency-response profile lapses by itself (SPEC §2.4): short enough that a charger
    # falls back to its baseline soon after the daemon goes silent, long enough to ride out
    # a couple of missed refreshes. At most settings_sections.MAX_PROFILE_VALIDITY_S.
    profile_validity_s: float = 30.0
    heartbeat_interval_s: int = 60
    ping_interval_s: float = 20.0  # websocket keepalive; a dead TCP peer is detected in ~2x this
    # JSON file remembering which stations this CSMS accepted, so they stay in service across a
    # daemon restart (stations boot only after their own reboot). None: not remembered.
    state_file: str | None = None


@dataclass(frozen=True, slots=True)
class MeterConfig:
    protocol: Literal["udp", "tcp"] = "udp"
    host: str = "127.0.0.1"
    port: int = 9100
    # DC must start within 0.5 s (SPEC §2.1): a sample older than that cannot drive a response.
    stale_after_s: float = 0.5
    f_min_hz: float = 45.0  # SPEC §3.3 plausibility window
    f_max_hz: float = 55.0
    # Source IP addresses the meter listener accepts (SPEC §3.3 input is otherwise
    # unauthenticated); empty = any sender.
    allowed_sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MqttConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str | None = None  # default v2ghub/<site id> (SPEC §3.4)
    username: str | None = None
    password: str | None = None
    fleet_period_s: float = 1.0
    evse_period_s: float = 10.0
    buffer_size: int = 10_000  # messages held while the broker is away; oldest dropped first


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    name: str
    contract_kw: float
    # The definitions with this table's overrides applied, one per product (DC -> DC-L, DC-H);
    # empty when the table overrides nothing (the SPEC §2.1 defaults apply).
    definitions: tuple[ServiceDefinition, ...] = ()


@dataclass(frozen=True, slots=True)
class ControlConfig:
    tick_period_s: float = 0.1  # issue 2: a tick every 100 ms by default
    min_step_w: float = 100.0  # only setpoints that moved more than this are sent
    # Refresh a profile before it lapses: a third of its validity leaves two retries.
    refresh_s: float = 10.0
    fallback_ramp_s: float = 2.0  # response decays to baseline over this on bad meter input
    # "naive": capacity-proportional split, vehicles idle at 0 W between events (no standing
    # energy cost). "compensated": dynamics-aware, keeps vehicles flowing at a standing
    # baseline that cancels at the site so change delays (0.02-0.78 s) apply instead of start
    # delays (0.5-3.8 s, seed Table 11); costs conversion losses and drifts SoC until energy
    # management lands (issue 4), hence not the default yet.
    dispatch: str = "naive"


@dataclass(frozen=True, slots=True)
class AgeingConfig:
    """`[ageing]`: battery ageing telemetry (seed eqs. 5-6, controller/ageing_tracker.py)."""

    # Prices the lost capacity; per kWh of nominal capacity, in the currency the cost is wanted
    # in. Default: BloombergNEF's Dec 2024 survey, BEV packs $97/kWh, rounded.
    battery_price_per_kwh: float = 100.0
    # Chemistry of an EVSE whose station names no `vehicle` (a configured vehicle brings its own
    # from the model library). NMC: 76 % of EV models (seed §II-D).
    chemistry: str = "NMC"


@dataclass(frozen=True, slots=True)
class EnergyConfig:
    """`[energy]`: SoC window the compensated dispatch keeps vehicles in (control/energy.py)."""

    soc_min: float = 0.2  # retailer default window 20-80 % (issue 4 item 4)
    soc_max: float = 0.8
    # energy_reserve_low alarm when a contract can be held for less than this x its sustain
    alarm_ratio: float = 1.2
    # a departure SoC is planned to be reached this long before the departure (control.departure)
    departure_margin_s: float = 900.0

