"""Daemon wiring of online identification: site meter samples reach the Identifier
(controller/app.py `_on_meter` -> control.identify `observe_site`), no sockets."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from controller.app import Daemon
from controller.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def _daemon(clock: Clock) -> Daemon:
    doc = tomllib.loads((ROOT / "config" / "v2ghub.minimal.toml").read_text())
    return Daemon(parse_settings(doc), clock=clock, wall=lambda: 1e9)


def _datagram(t_s: float, f_hz: float, p_w: float | None) -> bytes:
    obj: dict[str, float] = {"t": 1e9 + t_s, "f_hz": f_hz}
    if p_w is not None:
        obj["p_w"] = p_w
    return json.dumps(obj).encode()


def test_site_power_of_each_accepted_sample_reaches_the_identifier() -> None:
    clock = Clock()
    d = _daemon(clock)
    d._on_meter(_datagram(0.0, 50.0, 31000.0), 0.0)
    assert (d.identifier.site.last_s, d.identifier.site.last_w) == (0.0, 31000.0)
    clock.now_s = 1.0
    d._on_meter(_datagram(1.0, 50.0, None), 1.0)  # p_w is optional: nothing to attribute
    clock.now_s = 2.0
    d._on_meter(_datagram(2.0, 60.0, 32000.0), 2.0)  # rejected (implausible): never used
    assert (d.identifier.site.last_s, d.identifier.site.last_w) == (0.0, 31000.0)


def test_meter_stale_age_is_the_site_reference_age() -> None:
    d = _daemon(Clock())
    assert d.identifier.site.max_age_s == d.settings.meter.stale_after_s


def test_site_samples_around_a_lone_offer_give_that_row_a_dead_time_estimate() -> None:
    clock = Clock()
    d = _daemon(clock)
    row = d.fleet.row("CP001", 1, max_power_w=10000.0, can_discharge=True)
    d.identifier.observe(row, 0.0, 0.0)  # a MeterValues reading (FleetSync): idle, settled
    for t_s, site_w in ((0.5, 20000.0), (1.0, 23000.0), (1.5, 26000.0)):
        clock.now_s = t_s
        d._on_meter(_datagram(t_s, 50.0, site_w), t_s)
        if t_s == 0.5:  # the tick's offer right after the sample: that sample is the reference
            d._offer(np.array([row]), np.array([6000.0]), t_s)
            assert d.identifier.site.row == row
    # +3 kW at 1.0 s (moving), +6 kW at 1.5 s (arrived): the episode closed on site samples
    assert int(d.fleet.dyn_changes[row]) == 1
    assert d.identifier.site.row == -1
