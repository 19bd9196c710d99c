"""Tests for controller/tools/eligibility_sim.py: simulated mode (bisection, step traces, warm-up)
and the CLI in that mode, with stand-in evaluators and once with the real one."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.control.services import DEFAULT_DEFINITIONS, ContractedService
from controller.control.vehicles import TABLE_11
from controller.tools import eligibility as el
from controller.tools import eligibility_sim as el_sim
from sim_chargers.fleetfile import FleetSpec
from sim_chargers.traces import Trace

TIMINGS = {t.name: t for t in el.service_timings()}
ARIYA, TESLA, LEAF = TABLE_11[1], TABLE_11[4], TABLE_11[2]


@given(threshold=st.integers(1, 3000), first=st.integers(1, 3000), max_n=st.integers(1, 3000))
def test_bisection_finds_the_smallest_passing_count(threshold: int, first: int,
                                                    max_n: int) -> None:
    calls: list[int] = []

    def passes(n: int) -> bool:
        calls.append(n)
        return n >= threshold

    got = el_sim.min_evs_by_bisection(passes, first, max_n)
    assert got == (threshold if threshold <= max_n else None)
    assert len(calls) <= 2 * math.ceil(math.log2(3000)) + 2


@dataclass
class _Result:
    compliance_pct: float


class StandInEvaluator:
    """Small evaluator injected in place of controller.tools.evaluate.evaluate.

    Compliance = 100 % x the share of the contract that n vehicles reach by T_full under the
    strict from-idle rule; it records every call.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, float, str, int]] = []
        self.warmups: set[float] = set()

    def __call__(self, spec: FleetSpec, trace: Trace, contracts: list[ContractedService], *,
                 dispatch: str, seed: int, warmup_s: float) -> _Result:
        (c,) = contracts
        m = spec.models[0]
        self.calls.append((spec.n, c.definition.name, float(trace.f_hz[-1]), dispatch, seed))
        self.warmups.add(warmup_s)
        per_ev_w = min(float(spec.charger_w[0]),
                       m.ramp_up_w_s * max(0.0, c.definition.full_s - m.t_a_s))
        return _Result(100.0 * min(1.0, spec.n * per_ev_w / c.contract_w))


def test_simulated_mode_bisects_to_the_fewest_evs_reaching_the_target() -> None:
    fake = StandInEvaluator()
    sim = el_sim.SimSettings(target_pct=95.0, dispatch="naive", seed=7)
    groups = [el.FleetGroup(ARIYA.name, ARIYA), el.FleetGroup(TESLA.name, TESLA)]
    verdicts, skipped = el_sim.assess_simulated(groups, [TIMINGS["DC"], TIMINGS["DR"]], fake,
                                                sim=sim)
    got = {(v.vehicle, v.service): (v.eligible, v.evs_needed, v.reasons) for v in verdicts}
    assert skipped == []
    assert got == {
        (ARIYA.name, "DC"): (True, math.ceil(950 / (6.59 * 0.5)), ()),  # 289
        # 95 EVs reach 95 % of the tube, but 95 x 10 kW cannot carry a 1 MW contract
        (ARIYA.name, "DR"): (True, 100, ()),
        (TESLA.name, "DC"): (False, None, ("MTFL",)),  # never reaches 95 %
        (TESLA.name, "DR"): (True, math.ceil(950 / (0.73 * 8)), ()),
    }
    assert {(c[1], c[2]) for c in fake.calls} == {("DC-L", 49.5), ("DR-L", 49.8)}
    assert {(c[3], c[4]) for c in fake.calls} == {("naive", 7)}
    assert fake.warmups == {0.0}  # naive: nothing to build, every second is scored
    assert max(c[0] for c in fake.calls) <= sim.max_evs


@dataclass
class _ResultWithStart(_Result):
    start_delay_s_max: float | None = None


class StandInWithStart(StandInEvaluator):
    """The same, also reporting the fleet's start delay (t_a; None: never started)."""

    def __call__(self, spec: FleetSpec, trace: Trace, contracts: list[ContractedService], *,
                 dispatch: str, seed: int, warmup_s: float) -> _ResultWithStart:
        res = super().__call__(spec, trace, contracts, dispatch=dispatch, seed=seed,
                               warmup_s=warmup_s)
        start = spec.models[0].t_a_s if res.compliance_pct > 0 else None
        return _ResultWithStart(res.compliance_pct, start)


def test_simulated_mode_fails_a_late_start_even_when_the_tube_is_met() -> None:
    groups = [el.FleetGroup(LEAF.name, LEAF), el.FleetGroup(ARIYA.name, ARIYA),
              el.FleetGroup(TESLA.name, TESLA)]
    verdicts, _ = el_sim.assess_simulated(groups, [TIMINGS["DR"], TIMINGS["DC"]],
                                          StandInWithStart())
    got = {(v.vehicle, v.service): (v.eligible, v.evs_needed, v.reasons) for v in verdicts}
    assert got[(LEAF.name, "DR")] == (False, None, ("LTR",))  # 3.6 s > 2 s, tube met
    assert got[(ARIYA.name, "DR")] == (True, 100, ())  # the volume floor, not the tube
    assert got[(TESLA.name, "DC")] == (False, None, ("LTR", "MTFL"))  # never started


def test_simulated_mode_skips_services_without_a_definition() -> None:
    defs = {k: v for k, v in DEFAULT_DEFINITIONS.items() if k != "SFFR"}
    verdicts, skipped = el_sim.assess_simulated([el.FleetGroup(ARIYA.name, ARIYA)],
                                                el.service_timings(), StandInEvaluator(),
                                                definitions=defs)
    assert skipped == ["SFFR"]
    assert [v.service for v in verdicts] == ["DC", "DM", "DR"]


def test_too_few_vehicles_allowed_to_carry_the_volume_is_a_volume_verdict_not_a_crash() -> None:
    # --max-evs 50 x 10 kW < 1 MW: no count is ever simulated
    fake = StandInEvaluator()
    verdicts, _ = el_sim.assess_simulated([el.FleetGroup(ARIYA.name, ARIYA)], [TIMINGS["DC"]],
                                          fake, sim=el_sim.SimSettings(max_evs=50))
    assert [(v.eligible, v.reasons) for v in verdicts[:1]] == [(False, ("volume",))]
    assert fake.calls == []


def test_step_trace_steps_from_nominal_to_the_saturation_point() -> None:
    naive = el_sim.SimSettings(dispatch="naive")  # compensated adds an unscored warm-up (below)
    tr = el_sim.step_trace(DEFAULT_DEFINITIONS["DM-L"], TIMINGS["DM"], 5.0, naive)
    assert tr.f_hz[tr.t_s < 5.0].tolist() == [50.0] * 250  # 50 Hz: 0.5 s start in 25 samples
    assert tr.f_hz[-1] == pytest.approx(49.8)
    assert tr.duration_s == pytest.approx(10.0)
    dr = el_sim.step_trace(DEFAULT_DEFINITIONS["DR-L"], TIMINGS["DR"], 5.0, naive)
    assert dr.duration_s == pytest.approx(100.0)  # 10 x T_full
    assert dr.t_s[1] == pytest.approx(1 / 12.5)


def test_the_step_comes_after_the_slowest_start_up_of_the_fleet() -> None:
    # A 0 W command at t = 0 arms an idle vehicle's start-up timer; the step must come later.
    naive = el_sim.SimSettings(dispatch="naive")
    assert el_sim.pre_step_s(el.default_groups(), naive) == pytest.approx(1.2 * 3.8 + 1.0)
    slow = replace(ARIYA, t_a_s=20.0, t_zero_cross_s=20.0)
    assert el_sim.pre_step_s([el.FleetGroup("slow", slow)], naive) == pytest.approx(25.0)
    assert el_sim.pre_step_s([el.FleetGroup("fast", ARIYA)], naive) == 5.0


def test_compensated_runs_get_an_unscored_warmup_and_the_same_scored_window() -> None:
    # The standing offsets take up to 0.75 x 10 kW / 400 W/s to build: the step comes that much
    # (plus settling) later, and that time is not scored, so both dispatches are judged on
    # equally long windows around the step.
    naive, comp = el_sim.SimSettings(dispatch="naive"), el_sim.SimSettings(dispatch="compensated")
    groups = el.default_groups()
    warm = el_sim.warmup_s(groups, comp)
    assert el_sim.warmup_s(groups, naive) == 0.0
    assert warm == pytest.approx(7500.0 / 400.0 + comp.ready_settle_s)
    assert el_sim.pre_step_s(groups, comp) == pytest.approx(el_sim.pre_step_s(groups, naive) + warm)
    for name in ("DC", "DR", "SFFR"):
        defn = DEFAULT_DEFINITIONS[TIMINGS[name].product]
        traces = {s.dispatch: el_sim.step_trace(defn, TIMINGS[name], el_sim.pre_step_s(groups, s),
                                                s, el_sim.warmup_s(groups, s))
                  for s in (naive, comp)}
        sample_s = float(traces["naive"].t_s[1])  # the grids may differ by < one sample
        assert traces["compensated"].duration_s - warm == pytest.approx(
            traces["naive"].duration_s, abs=sample_s)
    fake = StandInEvaluator()
    ariya = [el.FleetGroup(ARIYA.name, ARIYA)]
    el_sim.assess_simulated(ariya, [TIMINGS["DR"]], fake, sim=comp)
    assert fake.warmups == {el_sim.warmup_s(ariya, comp)}


def test_soc_option_sets_the_uniform_fleets_and_is_checked(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert {g.soc_frac for g in el.default_groups()} == {1.0}  # the seed's fully charged fleets
    assert {g.soc_frac for g in el.default_groups(0.5)} == {0.5}
    fake = StandInEvaluator()
    socs: list[float] = []
    monkeypatch.setattr(el_sim, "load_evaluate", lambda: fake)
    orig = el_sim.fleet_spec_for

    def spy(group: el.FleetGroup, n: int) -> FleetSpec:
        socs.append(group.soc_frac)
        return orig(group, n)

    monkeypatch.setattr(el_sim, "fleet_spec_for", spy)
    assert el.main(["--mode", "simulated", "--soc", "0.5", "--max-evs", "300"]) == 0
    out = capsys.readouterr().out
    assert "SoC 0.5" in out
    assert set(socs) == {0.5}
    for bad in ("0", "1.2", "nan"):
        assert el.main(["--soc", bad]) == 2
        assert "--soc must be within (0, 1]" in capsys.readouterr().err


def test_cli_simulated_uses_the_injected_evaluator(capsys: pytest.CaptureFixture[str]) -> None:
    fake = StandInEvaluator()
    assert el.main(["--mode", "simulated", "--json", "--seed", "3"], evaluate_fn=fake) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["service"] for r in rows} <= {"SFFR", "DC", "DM", "DR"}
    assert {(c[3], c[4]) for c in fake.calls} == {("compensated", 3)}
    ariya_dm = next(r for r in rows if r["vehicle"].startswith("Nissan Ariya")
                    and r["service"] == "DM")
    assert ariya_dm["evs_needed"] == 289


def test_cli_simulated_without_an_evaluator_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def missing() -> el_sim.EvaluateFn:
        raise ImportError("No module named 'controller.tools.evaluate'")

    monkeypatch.setattr(el_sim, "load_evaluate", missing)
    assert el.main(["--mode", "simulated"]) == 1
    assert "controller.tools.evaluate" in capsys.readouterr().err


@pytest.mark.parametrize(("dispatch", "leaf_eligible"), [
    ("naive", False),  # from idle the LEAF starts after 3.6 s > 2 s: LTR although the tube holds
    ("compensated", True),  # kept flowing at a standing baseline: the 0.03 s change delay applies
])
def test_simulated_mode_with_the_real_evaluator_on_dr(dispatch: str,
                                                      leaf_eligible: bool) -> None:
    from controller.tools.evaluate import evaluate  # noqa: PLC0415

    # SoC 0.5: a fully charged fleet is above the compensated dispatch's SoC window (20-80 %),
    # may not charge, and so cannot hold the charging half of its standing baseline
    groups = [el.FleetGroup(ARIYA.name, ARIYA, soc_frac=0.5),
              el.FleetGroup(LEAF.name, LEAF, soc_frac=0.5)]
    verdicts, _ = el_sim.assess_simulated(groups, [TIMINGS["DR"]], el_sim.load_evaluate(),
                                          sim=el_sim.SimSettings(max_evs=400, dispatch=dispatch))
    ariya, leaf = verdicts
    assert ariya.eligible
    assert ariya.evs_needed == 100  # 10 kW each: the 1 MW volume is the floor
    assert leaf.eligible is leaf_eligible
    if not leaf_eligible:
        assert leaf.reasons == ("LTR",)
    assert el_sim.load_evaluate() is evaluate
