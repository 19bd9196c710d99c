"""Per-tick cost of the compensated dispatch at fleet scale, against a per-vehicle Python loop.

    .venv/bin/python bench/dispatch_tick.py [--rows 10000] [--ticks 50] [--loop-ticks 3]

Fleet: `rows` EVSEs, 11 kW, the six seed Table 11 models in turn (library priors), online, in a
transaction, measured power = last setpoint (an ideal plant: this measures the dispatch, not a
plant). The dispatch is first run until its readiness offsets are built, then timed on a DC-L
step (response alternating -150 kW-per-60-rows and 0, so every tick plans a real change), with
DC contracted at that volume so the offset is sized to it (control.readiness; re-sized every
10 s of ticks, which the p99 includes).

Baseline, measured in the same run: the per-row part of the same algorithm (three predictions
at the horizon and the command choice) as a plain Python loop over rows on floats, with the
fleet-wide sums in between. It leaves out the bookkeeping (replica sync, offsets, sticky moves)
that the vectorised tick includes, so the ratio understates the gain.
Prints one JSON line: {"rows", "vectorised_ms", "loop_ms", "ratio", "tick_with_resize_ms"
(a tick that also re-sizes the standing offset: at most once per 10 s), ...}.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from controller.control.dispatch_comp import CompensatedDispatch
from controller.control.dynamics import IDLE_W, Dynamics, RowState
from controller.control.fleet import FleetState
from controller.control.services import contracts_from
from controller.control.vehicles import TABLE_11

KW = 1000.0


def build(rows: int) -> FleetState:
    fleet = FleetState(capacity=rows)
    for i in range(rows):
        fleet.row(f"CP{i:05d}", 1, max_power_w=11 * KW, can_discharge=True)
    fleet.online[:] = True
    fleet.tx_active[:] = True
    fleet.set_prior(np.arange(rows), [TABLE_11[i % len(TABLE_11)] for i in range(rows)])
    return fleet


def tick(disp: CompensatedDispatch, fleet: FleetState, response_w: float, now_s: float) -> None:
    el = fleet.online & fleet.tx_active
    split = disp(response_w, fleet, el, now_s)
    moved = np.flatnonzero(np.isnan(fleet.setpoint_w)
                           | (np.abs(split.target_w - fleet.setpoint_w) >= 100.0))
    fleet.mark_sent(moved, split.target_w[moved], now_s)
    fleet.measured_w[:] = np.where(np.isnan(fleet.setpoint_w), 0.0, fleet.setpoint_w)


# -- the per-row loop twin (floats, one row at a time) ----------------------------------------
def _ramp(p: float, tgt: float, tau: float, up: float, down: float) -> float:
    tau = max(tau, 0.0)
    if p * tgt < 0:
        rem = tau - abs(p) / down
        if rem > 0:
            lim = up * rem
            return min(max(tgt, -lim), lim)
        tgt = 0.0
    rate = up if abs(tgt) > abs(p) else down
    lim = rate * tau
    return p + min(max(tgt - p, -lim), lim)


def _predict_row(d: tuple[float, ...], s: tuple[float, ...], now: float, cmd: float,
                 arrive: float, t_end: float) -> float:
    t_a, t_c, t_z, up, down = d
    p, tgt, pend, at = s
    # to arrival
    seg = min(max(at - now, 0.0), arrive - now) if at <= arrive else arrive - now
    p = _ramp(p, tgt, seg, up, down)
    if at <= arrive:
        tgt, at = pend, math.inf
        p = _ramp(p, tgt, arrive - now - seg, up, down)
    # accept
    if not math.isfinite(at):
        flowing = abs(p) >= IDLE_W
        dead = (t_c if flowing else t_a) + (t_z if flowing and abs(cmd) >= IDLE_W
                                            and p * cmd < 0 else 0.0)
        at = arrive + dead
    pend = cmd
    seg = min(max(at - arrive, 0.0), t_end - arrive)
    p = _ramp(p, tgt, seg, up, down)
    if at <= t_end:
        p = _ramp(p, pend, t_end - arrive - seg, up, down)
    return p


def loop_tick(dyn: Dynamics, st: RowState, posture: list[float], lo_lim: list[float],
              hi_lim: list[float], target_sum: float, now: float) -> list[float]:
    """The per-row part of one compensated tick, row by row."""
    n = dyn.n
    arrive, t_end = now + 0.1, now + 0.4
    nat, lo, hi = [0.0] * n, [0.0] * n, [0.0] * n
    for i in range(n):
        d = (dyn.t_a_s[i], dyn.t_c_s[i], dyn.t_zero_s[i], dyn.ramp_up_w_s[i],
             dyn.ramp_down_w_s[i])
        s = (st.p_w[i], st.target_w[i], st.pending_w[i], st.pending_at_s[i])
        nat[i] = _predict_row(d, s, now, posture[i], arrive, t_end)
        lo[i] = min(_predict_row(d, s, now, lo_lim[i], arrive, t_end), nat[i])
        hi[i] = max(_predict_row(d, s, now, hi_lim[i], arrive, t_end), nat[i])
    need = target_sum - sum(nat)
    slack = [(nat[i] - lo[i]) if need < 0 else (hi[i] - nat[i]) for i in range(n)]
    total = sum(slack)
    frac = min(1.0, abs(need) / total) if total > 0 else 0.0
    sign = -1.0 if need < 0 else 1.0
    cmd = [0.0] * n
    for i in range(n):
        delta = sign * frac * slack[i]
        cmd[i] = posture[i] + delta if abs(nat[i] - posture[i]) <= 1.0 else (
            nat[i] + delta if abs(delta) > 1.0 else posture[i])
        cmd[i] = min(max(cmd[i], lo_lim[i]), hi_lim[i])
    return cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--ticks", type=int, default=50)
    ap.add_argument("--loop-ticks", type=int, default=3)
    args = ap.parse_args()
    fleet = build(args.rows)
    disp = CompensatedDispatch()
    # DC at 150 kW per 60 rows (issue 4 item 5's ratio): the standing offset is sized to it
    disp.use_contracts(contracts_from([("DC", 150.0 * args.rows / 60)]))
    now = 0.0
    for _ in range(200):  # readiness: offsets built (wake, then ramp)
        tick(disp, fleet, 0.0, now)
        now += 0.1
    step_w = -150 * KW * args.rows / 60
    times = []
    for k in range(args.ticks):
        t0 = time.perf_counter()
        tick(disp, fleet, step_w if (k // 10) % 2 == 0 else 0.0, now)
        times.append(time.perf_counter() - t0)
        now += 0.1
    vec_ms = 1e3 * float(np.median(times))
    resize = []  # the offset sizing alone, as a tick runs it when rows or sides change
    for _ in range(5):
        disp._sized_key = None  # force the re-size the next tick would skip
        t0 = time.perf_counter()
        tick(disp, fleet, 0.0, now)
        resize.append(time.perf_counter() - t0)
        now += 0.1

    dyn = Dynamics.from_fleet(fleet).pessimistic(0.2)
    st = RowState(fleet.measured_w.copy(), fleet.setpoint_w.copy(), fleet.setpoint_w.copy(),
                  np.full(fleet.n, np.inf), np.full(fleet.n, np.inf))
    side = np.sign(fleet.setpoint_w)
    lo_lim = np.where(side > 0, 1 * KW, -11 * KW).tolist()
    hi_lim = np.where(side > 0, 11 * KW, -1 * KW).tolist()
    posture = (fleet.setpoint_w - 2 * KW).tolist()
    loop_times = []
    for _ in range(args.loop_ticks):
        t0 = time.perf_counter()
        loop_tick(dyn, st, posture, lo_lim, hi_lim, float(fleet.setpoint_w.sum()) + step_w, now)
        loop_times.append(time.perf_counter() - t0)
    loop_ms = 1e3 * float(np.median(loop_times))
    print(json.dumps({"rows": args.rows, "vectorised_ms": round(vec_ms, 3),
                      "vectorised_p99_ms": round(1e3 * float(np.percentile(times, 99)), 3),
                      "tick_with_resize_ms": round(1e3 * float(np.median(resize)), 3),
                      "loop_ms": round(loop_ms, 3), "ratio": round(loop_ms / vec_ms, 1),
                      "ticks": args.ticks, "loop_ticks": args.loop_ticks,
                      "loop_covers": "per-row predictions and command choice only"}))


if __name__ == "__main__":
    main()
