"""The engine entry point on degenerate batches, and the window search against brute force."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from factories import (
    LINE,
    Crit,
    brute_force,
    busy_cores,
    instance,
    job_shortage_instance,
    milp_optimum,
)

from coupler import (
    Instance,
    Policy,
    SolveParams,
    build_model,
    generate_cases,
    load_instance,
    load_scenario,
    solve,
)
from coupler.engine.backends import get_backend
from coupler.engine.flow import flow_penalties, solve_relaxation
from coupler.engine.lns import improve_windows
from coupler.errors import PolicyError
from coupler.model import CouplingModel
from coupler.result import Status


@pytest.mark.parametrize(("households", "seed"), [(100, 0), (100, 1), (300, 2)])
def test_ids_and_sizes_only_always_give_a_plan(households: int, seed: int) -> None:
    """A national batch with only household_id and size (all soft scores equal, degenerate
    costs) gives a plan with a status and a true, finite gap of at most 100 %."""
    m, _ = load_scenario()
    hh, _ = generate_cases(m, persons=3 * households, seed=seed)
    hh = hh[["household_id", "size"]].iloc[:households]
    model = build_model(load_instance(hh, None), Policy())
    res = solve(model, SolveParams(time_limit=20.0, polish_time=2.0))
    assert res.has_plan
    assert res.uncoupled_persons == 0 and res.broken_persons == 0
    assert math.isfinite(res.gap) and 0.0 <= res.gap <= 1.0
    assert res.bound >= res.objective - 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_degenerate_tiny_batches_reach_the_brute_force_optimum(seed: int) -> None:
    """Without soft data (fill balance on) the engine's plan is the enumerated optimum."""
    rng = np.random.default_rng(seed)
    quota = rng.integers(1, 5, 4).tolist()
    sizes = rng.integers(1, 4, 6).tolist()
    inst = instance(LINE[:4], quota, sizes)
    model = build_model(inst, Policy())
    best = brute_force(model)
    res = solve(model, SolveParams(gap=0.0, time_limit=20.0))
    assert (res.uncoupled_persons, res.broken_persons) == (best.uncoupled, best.broken)
    assert res.objective == pytest.approx(best.objective, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_window_search_reaches_the_optimum_from_a_poor_plan(seed: int) -> None:
    """From a poor plan that every household fits, the window search (one window covers the
    tiny instance) reaches the brute-force optimum and never adds uncoupled persons."""
    rng = np.random.default_rng(100 + seed)
    sizes = rng.integers(1, 4, 5).tolist()
    inst = instance(LINE[:4], [9, 9, 9, 9], sizes, azc=rng.integers(0, 4, 5).tolist())
    model = build_model(inst, Policy())
    best = brute_force(model)
    start = np.zeros(model.n_households, dtype=np.int64)  # place 0 until full, then place 1
    start[model.size.cumsum() > 9] = 1
    assert model.evaluate(start).uncoupled_persons == 0
    out = improve_windows(
        model,
        start,
        get_backend("highs"),
        bound=math.inf,
        gap=0.0,
        deadline=float("inf"),
        seed=seed,
        allow_broken=False,
    )
    assert model.evaluate(out).objective == pytest.approx(best.objective, abs=1e-6)
    assert model.evaluate(out).uncoupled_persons == 0


def _jobs_case() -> Instance:
    """Place 0 has room for 5; places 3 and 4 (over 100 km away) have room for 10 each. A family
    of five with one job at place 0 and four single job-holders at place 0 cannot all stay."""
    return instance(
        LINE[:5],
        [5, 0, 0, 10, 10],
        [5, 1, 1, 1, 1],
        [Crit.job(h, 0) for h in range(5)],
    )


@pytest.mark.parametrize(
    ("order", "persons", "work", "households"),
    [
        (["broken_persons"], 4, 4, 4),  # keep the family: 4 persons, 4 jobs broken
        (["broken_work"], 5, 1, 1),  # keep the four jobs: the family's one job breaks
        (["broken_households"], 5, 1, 1),
        (["broken_work", "broken_households"], 5, 1, 1),
    ],
)
def test_shortage_order_decides_who_keeps_the_criterion(
    order: list[str], persons: int, work: int, households: int
) -> None:
    """The policy's shortage order is minimised first; the summary counts broken persons, work
    criteria and households whatever the order."""
    policy = Policy().with_(hard={"shortage_order": order})
    res = solve(build_model(_jobs_case(), policy), SolveParams(gap=0.0))
    assert res.uncoupled_persons == 0
    assert (res.broken_persons, res.broken_work, res.broken_households) == (
        persons,
        work,
        households,
    )
    data = res.to_json()
    assert data["broken_work_criteria"] == work and data["broken_households"] == households


@pytest.mark.parametrize(
    "order", [[], ["broken_jobs"], ["broken_work", "broken_work"], ["a", "b", "c"]]
)
def test_shortage_order_rejects_unknown_or_repeated_measures(order: list[str]) -> None:
    """An empty, unknown, repeated or too long shortage order is a policy error naming the key."""
    with pytest.raises(PolicyError, match="shortage_order"):
        Policy.from_dict({"hard": {"shortage_order": order}})


@pytest.mark.parametrize("seed", range(5))
def test_greedy_fallback_plan_is_always_valid(seed: int) -> None:
    """The fallback's greedy plan never exceeds a capacity, never uses a forbidden pair, and
    couples a household whenever some usable place still has room for it."""
    from coupler.engine.flow import solve_relaxation
    from coupler.engine.solve import _greedy

    rng = np.random.default_rng(200 + seed)
    sizes = rng.integers(1, 6, 8).tolist()
    quota = rng.integers(0, 8, 4).tolist()
    inst = instance(LINE[:4], quota, sizes, lock_items=[(0, 1, "ban")])
    model = build_model(inst, Policy())
    a = _greedy(model, solve_relaxation(model))
    on = a >= 0
    used = np.bincount(a[on], weights=model.size[on], minlength=model.n_municipalities)
    assert (used <= model.cap).all()
    assert not model.forbidden[np.flatnonzero(on), a[on]].any()
    room = model.cap - used
    for h in np.flatnonzero(~on):
        assert not ((room >= model.size[h]) & ~model.forbidden[h]).any()


@pytest.fixture(scope="module")
def batch_400() -> CouplingModel:
    """A national batch of 400 persons (seed 0): the fast plan misses the gap, so the LP with
    whole-household fill rows and the polishing MIP run (a few seconds on an idle machine)."""
    municipalities, _ = load_scenario()
    households, criteria = generate_cases(municipalities, persons=400, seed=0)
    return build_model(load_instance(households, criteria), Policy())


def test_same_plan_while_every_core_is_busy(batch_400: CouplingModel) -> None:
    """Determinism under load: the batch solved again while a busy loop occupies every core
    gives the same assignment as before; work limits, not the clock, stopped every step (no
    ``time_limit_hit``) and the improving steps did run (the polishing MIP, and the window
    search unless the MIP proved the plan optimal)."""
    quiet = solve(batch_400)
    with busy_cores():
        busy = solve(batch_400)
    assert "mip" in quiet.method
    assert quiet.status is Status.OPTIMAL or "windows" in quiet.method
    assert "time_limit_hit" not in quiet.info and "time_limit_hit" not in busy.info
    assert busy.method == quiet.method
    assert np.array_equal(busy.assignment, quiet.assignment)
    assert busy.bound == quiet.bound


def test_polish_time_does_not_decide_the_plan(batch_400: CouplingModel) -> None:
    """``polish_time`` only switches the improving MIPs on: a limit far below what the MIP needs
    (which used to cut it short, as a slow machine would) gives the same plan as the default."""
    default = solve(batch_400)
    short = solve(batch_400, SolveParams(polish_time=0.01))
    assert "mip" in short.method
    assert np.array_equal(short.assignment, default.assignment)


def test_hitting_the_time_limit_is_reported(batch_400: CouplingModel) -> None:
    """When the overall time limit, not a work limit, stops steps, the result still holds a valid
    plan, is not called optimal, and ``info["time_limit_hit"]`` names the steps (also in the
    JSON summary), so that a plan that depends on the machine's speed is visible."""
    res = solve(batch_400, SolveParams(time_limit=0.01))
    assert res.has_plan
    assert res.status is Status.FEASIBLE
    hit = res.info["time_limit_hit"].split(", ")
    assert "polish" in hit and "windows" in hit
    assert res.to_json()["time_limit_hit"] == res.info["time_limit_hit"]
    assert res.uncoupled_persons == 0 and res.broken_persons == 0


def test_exactly_stage1_uncoupled_needs_more_than_the_candidate_arcs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A small shortage batch (benchmark tier shortage-small, 300 persons, seed 5) where stage 1
    proves that some persons must stay uncoupled: the relaxation re-solved with exactly that
    many uncoupled could not be carried by its first candidate arcs and raised "min-cost flow
    failed"; now it falls back to every usable pair, and the plan leaves exactly the proven
    minimum uncoupled and broken."""
    from benchmarks.workloads import WORKLOADS

    inst, policy = WORKLOADS["shortage-small"].scaled(300).prepare(5, tmp_path / "s").load()
    res = solve(build_model(inst, policy))
    assert res.has_plan and res.lower_bounds_proven
    assert res.uncoupled_persons == res.uncoupled_lower_bound > 0
    assert res.broken_persons == res.broken_lower_bound
    assert res.bound >= res.objective


def _crowded(seed: int) -> CouplingModel:
    """Four places with room for 1-2 persons each (plus tolerance), seven households of 1-3."""
    rng = np.random.default_rng(300 + seed)
    sizes = rng.integers(1, 4, 7).tolist()
    quota = rng.integers(1, 3, 4).tolist()
    inst = instance(LINE[:4], quota, sizes, azc=rng.integers(0, 4, 7).tolist())
    return build_model(inst, Policy())


def test_stage1_mip_is_skipped_when_rounding_meets_the_relaxation() -> None:
    """Seed 1 of the crowded cases: the rounded plan leaves out exactly the relaxation's
    uncoupled persons, so no stage-1 MIP runs (the others need it: rounding leaves more out)."""
    res = solve(_crowded(1), SolveParams(gap=0.0))
    assert "stage1" not in res.seconds
    assert res.lower_bounds_proven and res.uncoupled_persons == res.uncoupled_lower_bound > 0
    assert "stage1" in solve(_crowded(0), SolveParams(gap=0.0)).seconds


@pytest.mark.parametrize("seed", range(6))
def test_too_many_persons_settle_stage1_at_the_brute_force_minimum(seed: int) -> None:
    """More persons than places and no hard criteria: the rounded plan that leaves exactly the
    relaxation's uncoupled persons out settles stage 1 without its MIP. The uncoupled persons
    equal the enumerated minimum, the lower bound is proven, and the soft score is no better
    than the enumerated optimum."""
    model = _crowded(seed)
    assert int(model.cap.sum()) < model.persons  # some must stay uncoupled
    best = brute_force(model)
    res = solve(model, SolveParams(gap=0.0))
    assert res.uncoupled_persons == best.uncoupled
    assert res.uncoupled_lower_bound == best.uncoupled and res.lower_bounds_proven
    assert res.broken_persons == 0
    assert res.objective <= best.objective + 1e-9
    assert res.bound >= best.objective - 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_budget_bound_is_the_lagrangian_minimum(seed: int) -> None:
    """Shortage: the soft bound within stage 1's broken-persons budget holds against brute force,
    and no penalty on a grid gives a lower one (it stops where the relaxation breaks exactly the
    budget, which minimises the convex bound)."""
    rng = np.random.default_rng(900 + seed)
    sizes = rng.integers(1, 4, 6).tolist()
    jobs = [Crit.job(h, 0) for h in range(6) if rng.random() < 0.6]
    quota = [int(rng.integers(1, 4)), 0, int(rng.integers(3, 8)), int(rng.integers(6, 12))]
    scores = [(h, int(rng.integers(0, 4)), float(rng.random())) for h in range(6)]
    model = build_model(instance(LINE[:4], quota, sizes, jobs, score_items=scores), Policy())
    best = brute_force(model)
    if best.broken == 0 or best.uncoupled > 0:
        pytest.skip("no shortage of the job municipality in this draw")
    solve_mod = importlib.import_module("coupler.engine.solve")
    budget = model.evaluate(best.assignment).broken_measure
    stage1 = solve_mod.Stage1(
        uncoupled=0, broken=budget, proven=True, status=Status.OPTIMAL, seconds=0.0
    )
    bound = solve_mod._budget_bound(model, stage1, -math.inf, 0.0, solve_mod._Clock(60.0))
    assert bound >= best.objective - 1e-6
    grid = []
    for mu in np.geomspace(1e-3, flow_penalties(model)[0], 40):
        f = solve_relaxation(model, broken_penalty=float(mu))
        if f.lp_uncoupled <= 0.5:
            grid.append(f.bound + mu * budget)
    # Up to the flow's integer cost scaling, which moves each relaxation's bound by ~1e-5.
    assert bound <= min(grid) + 1e-4 * max(1.0, abs(bound))


def test_stage1_plan_when_rounding_and_repair_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """When neither rounding nor the repair MIP gives a plan within stage 1's budgets, the engine
    improves stage 1's own plan (which meets them) instead of the penalised fallback MIP: nobody
    is left out or broken beyond the proven minima (a demo batch once ended with 16 persons
    uncoupled against a minimum of 0), and the plan reaches the brute-force optimum."""
    solve_mod = importlib.import_module("coupler.engine.solve")
    monkeypatch.setattr(solve_mod, "round_with_singles", lambda model, flow: None)
    monkeypatch.setattr(solve_mod, "_repair", lambda *a, **k: (None, Status.UNKNOWN))
    model = build_model(job_shortage_instance(), Policy())
    best = brute_force(model)
    assert best.broken > 0  # a shortage: the job municipality cannot take every job-holder
    r = solve(model)
    assert "stage1" in r.method
    assert r.lower_bounds_proven
    assert r.uncoupled_persons == r.uncoupled_lower_bound == best.uncoupled
    assert r.broken_persons == r.broken_lower_bound == best.broken
    assert r.objective == pytest.approx(best.objective, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_alike_places_skip_the_repair_and_start_from_stage1(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too many persons for the places, which are all alike (no scores, no criteria): when
    rounding gives no plan within stage 1's budgets, the class model starts from stage 1's plan
    without the repair MIP (a tight batch spent 2.9-9 s on repairs that could not succeed), and
    the plan meets the enumerated optimum."""
    solve_mod = importlib.import_module("coupler.engine.solve")
    monkeypatch.setattr(solve_mod, "round_with_singles", lambda model, flow: None)

    def no_repair(*a: object, **k: object) -> None:
        raise AssertionError("the repair MIP ran")

    monkeypatch.setattr(solve_mod, "_repair", no_repair)
    rng = np.random.default_rng(1_700 + seed)
    sizes = rng.integers(1, 4, 7).tolist()
    quota = rng.integers(1, 3, 4).tolist()
    model = build_model(instance(LINE[:4], quota, sizes), Policy())
    assert int(model.cap.sum()) < model.persons
    best = brute_force(model)
    r = solve(model, SolveParams(gap=0.0))
    assert r.method.startswith("flow+stage1")
    assert r.uncoupled_persons == r.uncoupled_lower_bound == best.uncoupled
    assert r.broken_persons == 0 and r.lower_bounds_proven
    assert r.objective == pytest.approx(best.objective, abs=1e-6)
    assert r.bound >= best.objective - 1e-6


def test_the_skipped_repair_runs_when_the_class_model_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stage 1's plan in hand and the fill balance off skip the repair for the class model; should the
    class model give nothing (too large for it), the repair runs after all, and the plan keeps
    stage 1's proven minimum of uncoupled persons."""
    solve_mod = importlib.import_module("coupler.engine.solve")
    monkeypatch.setattr(solve_mod, "round_with_singles", lambda model, flow: None)
    monkeypatch.setattr(solve_mod, "improve_by_classes", lambda *a, **k: None)
    calls: list[int] = []
    real_repair = solve_mod._repair

    def counted(*a: object, **k: object) -> object:
        calls.append(1)
        return real_repair(*a, **k)

    monkeypatch.setattr(solve_mod, "_repair", counted)
    rng = np.random.default_rng(1_701)
    scores = [(h, m, float(rng.choice([0.1, 0.4, 0.9]))) for h in range(7) for m in range(4)]
    model = build_model(
        instance(
            LINE[:4],
            rng.integers(1, 3, 4).tolist(),
            rng.integers(1, 4, 7).tolist(),
            score_items=scores,
        ),
        Policy().with_(quota={"fill_balance": 0.0}),
    )
    assert int(model.cap.sum()) < model.persons
    r = solve(model, SolveParams(gap=0.0))
    assert calls == [1], r.method
    assert r.uncoupled_persons == r.uncoupled_lower_bound and r.lower_bounds_proven
    assert r.broken_persons == 0


@pytest.mark.parametrize("seed", range(4))
def test_persons_left_out_under_the_fill_balance_reach_the_independent_optimum(seed: int) -> None:
    """Places too small for most households (many persons must stay out) and the fill balance
    on: the plan is the lexicographic optimum of an independent MIP (scipy), and the bound is no
    lower. The soft MIPs once charged each person left out the dominating penalty under stage
    1's budget: constant over the plans within it, yet it set HiGHS's relative gap to thousands
    of points, and plans up to 44 % below the optimum were reported as optimal."""
    rng = np.random.default_rng(seed)
    n_m, n_h = 12, 40
    points = [(52.0 + 0.01 * i, 5.0) for i in range(n_m)]
    quota = [int(q) for q in rng.integers(1, 5, n_m)]
    sizes = [int(s) for s in rng.choice([1, 1, 2, 2, 3, 4, 5, 6], n_h)]
    score_items = [(h, m, float(rng.uniform(0, 1))) for h in range(n_h) for m in range(n_m)]
    model = build_model(instance(points, quota, sizes, score_items=score_items), Policy())
    best = milp_optimum(model)
    assert best.uncoupled > 0
    r = solve(model)
    assert r.uncoupled_persons == best.uncoupled
    assert r.broken_persons == best.broken
    assert r.objective == pytest.approx(best.objective, abs=1e-6)
    assert r.bound >= best.objective - 1e-6
