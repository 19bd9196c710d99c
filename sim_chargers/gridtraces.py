"""Grid traces: frequency as the grid produced it, GB normal operation and published events.

PURE numpy: builds `Trace` objects on the grid of sim_chargers/traceshapes.py; no names registry
(sim_chargers/tracelib.py maps trace names to these), no file I/O, no clock reads, no measured
data shipped or downloaded. `gb_normal` is a seeded statistical model of GB normal operation; the
events (9 August 2019 in GB, the Continental Europe split of 8 January 2021) are knots from the
published reports joined by eased segments. Each part names its sources and what is synthetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from sim_chargers.plant import FloatArray
from sim_chargers.traces import NOMINAL_HZ, Trace
from sim_chargers.traceshapes import TraceGenerator, rounded_trace, time_grid

# -- GB normal operation -------------------------------------------------------------------------
# Targets (tests/unit/sim/test_gridtraces.py checks them over seeds, one hour at a time):
#   * >= 99 % of the time inside the operational limits 49.8-50.2 Hz (NESO; the statutory limits
#     are 49.5-50.5 Hz) - the synthetic process would need a 6-sigma noise peak to leave them;
#   * fewer samples within 50.00 +/- 0.01 Hz than per 0.01 Hz at |df| 0.05-0.08 Hz: the 2023
#     NESO 1-s data are not bell-shaped but have "a chunk missing" between about 49.85 and
#     50.15 Hz - the frequency runs slightly above or slightly below 50 Hz most of the time
#     (Aurora Power Consulting, "Frequency distribution of the GB power system", 2024);
#   * standard deviation 0.045-0.085 Hz and a mean near 50 Hz (chosen, consistent with the above);
#   * 1-s rate of change mostly below 0.01 Hz/s (chosen: normal operation, two orders of
#     magnitude under the 1 Hz/s RoCoF loss-of-mains setting of GB embedded generation, G99).
_GB_SWITCH_MEAN_S = 90.0  # mean dwell above/below 50 Hz (minutes-scale wander)
_GB_SWITCH_MIN_S = 20.0  # shortest dwell
_GB_OFFSET_HZ = (0.05, 0.10)  # |setpoint - 50| per dwell, uniform: 49.90-49.95 or 50.05-50.10
_GB_TRANSITION_S = 12.0  # Gaussian smoothing of the setpoint switches (sigma)
_GB_WANDER = (0.015, 30.0)  # (std Hz, correlation sigma s): tens-of-seconds wander
_GB_NOISE = (0.006, 2.0)  # (std Hz, correlation sigma s): seconds-scale noise


def _gaussian_kernel(sigma_s: float) -> FloatArray:
    half = math.ceil(4 * sigma_s)
    x = np.arange(-half, half + 1, dtype=np.float64)
    k: FloatArray = np.exp(-0.5 * (x / sigma_s) ** 2)
    return k


def _correlated_noise(rng: np.random.Generator, n: int, std_hz: float,
                      sigma_s: float) -> FloatArray:
    """n 1-s samples of Gaussian noise with a Gaussian autocorrelation (std `std_hz`)."""
    k = _gaussian_kernel(sigma_s)
    k = k * (std_hz / math.sqrt(float(np.sum(k**2))))
    out: FloatArray = np.convolve(rng.standard_normal(n + len(k) - 1), k, mode="valid")
    return out


def _setpoint_offsets(rng_dwell: np.random.Generator, rng_level: np.random.Generator,
                      n: int) -> FloatArray:
    """n 1-s samples of the wandering setpoint: +/- offset dwells, smoothed switches."""
    k = _gaussian_kernel(_GB_TRANSITION_S)
    total = n + len(k) - 1
    count = math.ceil(total / _GB_SWITCH_MIN_S) + 1
    dwell_s = _GB_SWITCH_MIN_S + rng_dwell.exponential(_GB_SWITCH_MEAN_S - _GB_SWITCH_MIN_S, count)
    first_sign = 1.0 if rng_level.random() < 0.5 else -1.0
    level = rng_level.uniform(*_GB_OFFSET_HZ, count) * first_sign
    level[1::2] *= -1.0  # alternate above / below 50 Hz
    which = np.searchsorted(np.cumsum(dwell_s), np.arange(total), side="right")
    out: FloatArray = np.convolve(level[which], k / np.sum(k), mode="valid")
    return out


def gb_normal(seconds: float, seed: int, rate_hz: float) -> Trace:
    """GB normal operation: bimodal about 50 Hz, minutes-scale wander, seconds-scale noise.

    Synthetic throughout (no measured data is shipped or downloaded); the statistics it targets
    and their public sources are listed above `_GB_SWITCH_MEAN_S`. Model, on a 1-s grid like the
    NESO 1-s frequency data, then linearly interpolated to `rate_hz`:
    f = 50 + setpoint + wander + noise, where the setpoint dwells above or below 50 Hz (offset
    0.05-0.10 Hz, dwell 20 s + exponential, mean 90 s, switches smoothed over ~30 s). The
    mechanism is a plausible one (the frequency floats inside the deadbands of the responses
    until it drifts out and is pushed back), not a fitted model. Each component has its own
    seeded stream: a longer trace extends a shorter one with the same seed, and the rate does
    not change the curve.
    """
    n = math.ceil(seconds) + 1
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    f_1s = (NOMINAL_HZ + _setpoint_offsets(rngs[0], rngs[1], n)
            + _correlated_noise(rngs[2], n, *_GB_WANDER)
            + _correlated_noise(rngs[3], n, *_GB_NOISE))
    t = time_grid(seconds, rate_hz)
    return rounded_trace("gb-normal", t, np.interp(t, np.arange(n, dtype=np.float64), f_1s))


# -- published events ----------------------------------------------------------------------------
# A shape is knots (t_s, f_hz, segment) joined by eased segments; `segment` shapes the segment
# that ends at the knot: "lin" linear, "cos" flat at both ends, "out" fast start and flat end
# (a fall arrested at its nadir), "in" flat start and fast end (a fall cut off by load
# shedding). Extremes sit exactly on knots.
Knot = tuple[float, float, str]
_EASE: dict[str, Callable[[FloatArray], FloatArray]] = {
    "lin": lambda u: u,
    "cos": lambda u: 0.5 - 0.5 * np.cos(np.pi * u),
    "out": lambda u: 1.0 - (1.0 - u) ** 2,
    "in": lambda u: u**2,
}


def _shape(knots: Sequence[Knot], t_s: FloatArray) -> FloatArray:
    tk = np.array([k[0] for k in knots])
    fk = np.array([k[1] for k in knots])
    seg = np.clip(np.searchsorted(tk, t_s, side="right"), 1, len(knots) - 1)
    u = np.clip((t_s - tk[seg - 1]) / (tk[seg] - tk[seg - 1]), 0.0, 1.0)
    eased = np.zeros_like(u)
    for i, (_, _, kind) in enumerate(knots[1:], start=1):
        eased = np.where(seg == i, _EASE[kind](u), eased)
    out: FloatArray = fk[seg - 1] + (fk[seg] - fk[seg - 1]) * eased
    return out


# 9 August 2019, t = 0 at the lightning strike (16:52:33 BST). Landmarks from National Grid ESO,
# "Technical report on the events of 9 August 2019" (6 Sept 2019) and Ofgem's final report
# (Jan 2020): near-simultaneous loss of Hornsea 1, Little Barford steam turbine and embedded
# generation; frequency fell to about 49.1 Hz, recovered to about 49.2 Hz; the Little Barford gas
# turbine trips (about 1 min in) took it to 48.8 Hz, where Low Frequency Demand Disconnection
# shed about 1 GW of demand (16:53:49, ~76 s); frequency was back at 50 Hz about 5 minutes
# after the strike. Synthetic: the curve between landmarks, the exact times of the first nadir
# (18 s) and of 50 Hz again (285 s), the flat hold at 49.2 Hz, and the absence of noise.
GB_2019_08_09: tuple[Knot, ...] = (
    (0.0, 50.00, "lin"), (18.0, 49.10, "out"), (30.0, 49.20, "cos"), (58.0, 49.20, "lin"),
    (76.0, 48.80, "in"), (92.0, 49.25, "out"), (285.0, 50.00, "cos"),
)
# 8 January 2021, t = 0 at the system split (about 14:05 CET). Landmarks from ENTSO-E, "Continental
# Europe Synchronous Area Separation on 08 January 2021 - Final Report" (July 2021): the
# north-west area fell to 49.74 Hz within about 15 s, then settled near 49.84 Hz (FCR plus about
# 1.7 GW of interruptible load in France and Italy); the south-east area rose to 50.6 Hz, then
# settled between 50.2 and 50.3 Hz; the areas were resynchronised about an hour later.
# Synthetic: the curves between landmarks, the time of the south-east peak (taken as 15 s like
# the north-west nadir), the slow south-east drift from 50.28 to 50.22 Hz, holding both areas at
# their settled values to the end (no restoration, no resynchronisation), no noise.
CE_2021_01_08_NW: tuple[Knot, ...] = (
    (0.0, 50.00, "lin"), (15.0, 49.74, "out"), (35.0, 49.84, "cos"),
)
CE_2021_01_08_SE: tuple[Knot, ...] = (
    (0.0, 50.00, "lin"), (15.0, 50.60, "out"), (40.0, 50.28, "cos"), (300.0, 50.22, "lin"),
)


def event_generator(name: str, knots: tuple[Knot, ...]) -> TraceGenerator:
    """The generator of trace `name`: the published event shape `knots`."""

    def event(seconds: float, seed: int, rate_hz: float) -> Trace:
        """A published event shape (sources above its knots); seed unused."""
        del seed
        t = time_grid(seconds, rate_hz)
        return rounded_trace(name, t, _shape(knots, t))

    return event

