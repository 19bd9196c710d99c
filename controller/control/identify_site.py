"""Site-meter attribution of one EVSE's setpoint change (issue 4 item 3, SPEC §3.3 `p_w`).

MeterValues arrive every 5-60 s in the field: too sparse to see dead times of 0.02-3.8 s or a
ramp of one or two seconds. The site meter sends up to 50 Hz, and while exactly one EVSE is
changing its power, the change of the site's power since that EVSE's command is that EVSE's
change. This module holds the few scalars for that one tracked episode and the vectorised
"is this row still changing" test; `identify.Identifier` decides when an episode may be tracked
(`Identifier._site_commanded`) and turns each site sample into a power sample of the row
(`Identifier.observe_site`).

When (applied by identify.Identifier): an episode is tracked on the site meter only if, at its
command, it is the only row opening an episode and the only row whose command moves its power,
no other row has an open episode or a command in transit (`in_transit`: younger than max(10 s,
its dead-time bound) plus twice its ramp time, unless a sample shows it arrived), and a site
sample at most `max_age_s` old is the reference. Each later site sample is then a sample of
that row, p0 + (p_w - reference p_w), fed to the episode like a MeterValues sample. Tracking
stops for good (the episode goes on on MeterValues) once another row gets a command that moves
it or a MeterValues sample shows another row moved by more than the identifier's `tol_w`.

Pure: no I/O, no clock reads (`now_s` is an argument), never raises on odd input (non-finite or
out-of-order site samples are ignored). It decides nothing about estimates (identify.py does) and
writes no fleet column.

Limits (why an estimate from the site can be biased): anything else that changes the site's
power during the episode (base load, generation, a vehicle changing by itself without a command
and without a MeterValues sample showing it) is attributed to the tracked row. Commands to other
rows and MeterValues that show another row moving stop the tracking; base load steps do not.
Only identify's median/MAD rule over several episodes guards against that.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# SPEC §3.3: `p_w` is + = import; a row's power is + = charging, which the site imports.
SITE_SIGN = 1.0
# Another row's command counts as in transit for at least this long whatever its figures say:
# its dead time may be up to the plausible bound (identify.DEAD_TIME_BOUNDS_S, 10 s; seed
# Table 11 up to 3.8 s, DTU 4-7 s) while its prior says 0.02 s.
TRANSIT_MIN_S = 10.0
# ... plus its step at this many times its slower ramp figure (a prior may be 2x too fast).
TRANSIT_RAMP_MARGIN = 2.0


class SiteAttribution:
    """The one episode (row, opened at t0_s) the site meter is attributed to, if any."""

    def __init__(self, max_age_s: float) -> None:
        """Args:
            max_age_s: the site sample taken as the episode's reference must be at most this
                old at the command (SPEC §3.3 stale-sample age, 0.5 s by default).
        """
        self.max_age_s = max_age_s
        self.row = -1  # -1: no episode tracked
        self.t0_s = math.nan
        self.ref_w = math.nan  # site power at the last sample before the command
        self.last_w = math.nan
        self.last_s = math.nan

    def fresh(self, now_s: float) -> bool:
        """A site sample recent enough to be an episode's reference at `now_s`."""
        return now_s - self.last_s <= self.max_age_s  # NaN (never a sample): False

    def sample(self, now_s: float, site_w: float) -> float:
        """Remember one site sample; its change since the tracked episode opened (W, + import).

        Returns NaN when no episode is tracked or the sample is unusable (non-finite, or older
        than the last one).
        """
        if not (math.isfinite(now_s) and math.isfinite(site_w)) or now_s < self.last_s:
            return math.nan
        self.last_w, self.last_s = site_w, now_s
        if self.row < 0:
            return math.nan
        return SITE_SIGN * (site_w - self.ref_w)

    def start(self, row: int, now_s: float) -> None:
        """Track the episode of `row` opened at `now_s` (the caller checked it is alone)."""
        if not self.fresh(now_s):
            self.stop()
            return
        self.row, self.t0_s, self.ref_w = row, now_s, self.last_w

    def stop(self) -> None:
        """No site samples for the tracked episode from now on (it may go on on MeterValues)."""
        self.row = -1
        self.t0_s = math.nan


def in_transit(now_s: float, *, cmd_s: FloatArray, cmd_w: FloatArray, cmd_p: FloatArray,
               last_p: FloatArray, last_t: FloatArray, dead_s: FloatArray,
               ramp_w_s: FloatArray, tol_w: float, settle_s: float) -> BoolArray:
    """Rows whose last command may still be moving their power (conservative).

    Args:
        now_s: the time asked about.
        cmd_s, cmd_w, cmd_p: per row, time of the last command (NaN: never), its setpoint and
            the power last seen when it was given (NaN: unknown, counts as a move).
        last_p, last_t: per row, the latest power sample and its time.
        dead_s: per row, how long its command may take to show (the caller's margin on the
            longer dead time in force plus the transport delay).
        ramp_w_s: per row, the slower ramp figure in force (W/s, > 0).
        tol_w: a step within this moves nothing measurable.
        settle_s: no command is in transit longer than this.

    Returns:
        True where the command is younger than max(TRANSIT_MIN_S, dead_s) plus
        TRANSIT_RAMP_MARGIN x its ramp time (capped at `settle_s`), unless its step is within
        `tol_w` or a sample taken after it shows the row at the setpoint.
    """
    step_w = np.abs(cmd_w - cmd_p)
    with np.errstate(divide="ignore", invalid="ignore"):
        ramp_s = TRANSIT_RAMP_MARGIN * step_w / ramp_w_s
    expect_s = np.maximum(TRANSIT_MIN_S, dead_s) + ramp_s
    window_s = np.where(np.isfinite(expect_s), np.minimum(expect_s, settle_s), settle_s)
    young = now_s - cmd_s < window_s  # NaN (never commanded): False
    arrived = (last_t > cmd_s) & (np.abs(last_p - cmd_w) <= tol_w)
    out: BoolArray = young & ~(step_w <= tol_w) & ~arrived
    return out
