"""Households that look alike, counted instead of told apart: the count MIP against brute force
and against the household MIP, its plans read back, and the engine on a small batch of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from factories import (
    LINE,
    Case,
    all_plans,
    brute_force,
    engine_settings,
    instance,
    tiny_cases,
)
from hypothesis import given
from hypothesis import strategies as st

from coupler import Policy, SolveParams, build_model, solve
from coupler.engine.alike import count_columns, count_mip, kinds
from coupler.engine.backends import available_backends, get_backend
from coupler.engine.mip import build_mip
from coupler.model import CouplingModel

HIGHS = get_backend("highs")


@st.composite
def alike_cases(draw: st.DrawFn) -> Case:
    """Tiny batches given only sizes and an azc (two azcs, sizes 1-3): many households alike."""
    n_m = draw(st.integers(2, 4))
    n_h = draw(st.integers(2, 7))
    quota = draw(st.lists(st.integers(1, 8), min_size=n_m, max_size=n_m))
    sizes = draw(st.lists(st.integers(1, 3), min_size=n_h, max_size=n_h))
    azc = draw(st.lists(st.sampled_from([0, n_m - 1]), min_size=n_h, max_size=n_h))
    fill = draw(st.sampled_from([0.0, 0.5, 2.0]))
    policy = Policy().with_(quota={"fill_balance": fill})
    return Case(instance(LINE[:n_m], quota, sizes, azc=azc), policy)


def _usable(model: CouplingModel) -> np.ndarray:
    return ~model.forbidden & ~model.breaks


def _all_coupled_optimum(model: CouplingModel) -> tuple[float, np.ndarray] | None:
    """The best plan (brute force) that couples everybody without breaking a criterion."""
    p = all_plans(model)
    ok = p.feasible & (p.uncoupled == 0) & (p.broken == 0)
    if not ok.any():
        return None
    k = int(np.flatnonzero(ok)[np.argmax(np.where(ok, p.objective, -np.inf)[ok])])
    return float(p.objective[k]), p.assignment[k]


def _worst_coupled_plan(model: CouplingModel) -> np.ndarray:
    p = all_plans(model)
    ok = p.feasible & (p.uncoupled == 0) & (p.broken == 0)
    k = int(np.flatnonzero(ok)[np.argmin(p.objective[ok])])
    return p.assignment[k]


def test_kinds_group_exactly_the_households_nothing_tells_apart() -> None:
    """Same size and azc: one kind; another size, azc or a ban: another kind."""
    inst = instance(
        LINE[:3],
        [6, 6, 6],
        [2, 2, 2, 1, 2],
        azc=[0, 0, 2, 0, 0],
        lock_items=[(4, 1, "ban")],
    )
    model = build_model(inst, Policy())
    found = kinds(model)
    kind = found.kind
    assert kind[0] == kind[1]
    assert len({int(kind[0]), int(kind[2]), int(kind[3]), int(kind[4])}) == 4
    assert found.count.sum() == model.n_households
    assert (kind[found.first] == np.arange(len(found.first))).all()


@given(alike_cases())
@engine_settings(max_examples=60)
def test_count_mip_finds_the_brute_force_optimum(case: Case) -> None:
    """Over every usable pair, from the worst plan that couples everybody, the count MIP reaches
    the enumerated optimum; the plan read back is valid (capacities, no forbidden or breaking
    pair) and has the MIP's objective; the start's columns are a feasible point of its value."""
    model = build_model(case.inst, case.policy)
    best = _all_coupled_optimum(model)
    if best is None:
        return
    start = _worst_coupled_plan(model)
    counted = count_mip(model, _usable(model), start)
    if counted is None:
        assert len(kinds(model).first) == model.n_households
        return
    assert count_columns(model, _usable(model)) == len(counted.pair_k)
    problem = counted.problem
    assert problem.start is not None
    ax = problem.A @ problem.start
    assert (ax <= problem.row_hi + 1e-9).all() and (ax >= problem.row_lo - 1e-9).all()
    assert float(problem.c @ problem.start) == pytest.approx(model.evaluate(start).objective)
    sol = HIGHS.solve(problem, time_limit=60, gap=0.0, seed=0)
    assert sol.x is not None
    plan = counted.assignment(sol.x)
    v = model.evaluate(plan)
    assert (plan >= 0).all()
    assert (v.assigned <= model.cap).all()
    assert _usable(model)[np.arange(model.n_households), plan].all()
    assert v.objective == pytest.approx(sol.objective, abs=1e-6)
    assert v.objective == pytest.approx(best[0], abs=1e-6)
    assert sol.bound >= best[0] - 1e-6


@given(tiny_cases(max_households=6))
@engine_settings(max_examples=40)
def test_count_mip_equals_the_household_mip_on_random_cases(case: Case) -> None:
    """With criteria, bans, pins, scores and tolerance, over every usable pair: the count MIP
    (when some households are alike) has the household MIP's optimum."""
    model = build_model(case.inst, case.policy)
    if model.has_side_constraints:
        return
    best = brute_force(model)
    if best.uncoupled or best.broken:
        return
    counted = count_mip(model, _usable(model), best.assignment)
    if counted is None:
        return
    ph, pm = np.nonzero(_usable(model))
    plain, _ = build_mip(model, ph, pm, objective="soft", allow_uncoupled=False)
    a = HIGHS.solve(plain, time_limit=60, gap=0.0, seed=0)
    b = HIGHS.solve(counted.problem, time_limit=60, gap=0.0, seed=0, heuristics=False)
    assert b.x is not None
    assert b.objective == pytest.approx(a.objective, abs=1e-6)
    assert b.objective == pytest.approx(best.objective, abs=1e-6)
    assert model.evaluate(counted.assignment(b.x)).objective == pytest.approx(best.objective)


@given(alike_cases())
@engine_settings(max_examples=40)
def test_engine_reaches_the_brute_force_optimum_on_look_alike_batches(case: Case) -> None:
    """With the gap target at 0, the engine's plan on tiny look-alike batches is the enumerated
    lexicographic optimum, and its reported bound is not below that optimum."""
    model = build_model(case.inst, case.policy)
    best = brute_force(model)
    res = solve(model, SolveParams(gap=0.0, time_limit=30.0, seed=0))
    assert (res.uncoupled_persons, res.broken_persons) == (best.uncoupled, best.broken)
    assert res.objective == pytest.approx(best.objective, abs=1e-6)
    assert res.bound >= best.objective - 1e-6


def test_read_back_keeps_households_where_the_counts_allow() -> None:
    """Three look-alike households; the counts keep one place of the start's two: the household
    already there stays, and the one moved is the other one."""
    inst = instance(LINE[:3], [6, 6, 6], [1, 1, 1], azc=[0, 0, 0])
    model = build_model(inst, Policy())
    start = np.array([2, 1, 2])
    counted = count_mip(model, _usable(model), start)
    assert counted is not None
    x = np.zeros(counted.problem.n_cols)
    col = {int(m): j for j, m in enumerate(counted.pair_m)}
    x[col[1]] = 1.0
    x[col[2]] = 1.0
    x[col[0]] = 1.0
    plan = counted.assignment(x)
    assert plan[1] == 1
    assert sorted(plan.tolist()) == [0, 1, 2]
    assert plan[0] == 2 and plan[2] == 0  # the first of the two at 2 stays there


def test_no_count_mip_when_nobody_is_alike_or_somebody_is_out() -> None:
    inst = instance(LINE[:3], [6, 6, 6], [1, 2, 3], azc=[0, 0, 0])
    model = build_model(inst, Policy())
    assert count_mip(model, _usable(model), np.array([0, 1, 2])) is None
    inst = instance(LINE[:3], [6, 6, 6], [1, 1, 3], azc=[0, 0, 0])
    model = build_model(inst, Policy())
    assert count_mip(model, _usable(model), np.array([0, -1, 2])) is None
    keep = _usable(model)
    keep[:, 1] = False
    assert count_mip(model, keep, np.array([0, 1, 2])) is None  # the start uses a pair left out


def test_small_batch_of_look_alike_households_is_optimal_within_the_gap(tmp_path: Path) -> None:
    """The benchmark's small tier (ids, sizes and an azc; seed 0; 305 households of 130 kinds):
    the plan is within 0.1 % of the optimum proven once (``benchmarks/optima.json``), the bound
    is at least that optimum, and the gap reported is within the policy's 0.1 %."""
    from benchmarks.workloads import WORKLOADS

    inst, policy = WORKLOADS["small"].prepare(0, tmp_path / "s").load()
    res = solve(build_model(inst, policy))
    optima = json.loads((Path(__file__).parents[1] / "benchmarks" / "optima.json").read_text())
    optimum = optima["small/0"]["objective"]
    assert res.objective >= optimum * (1 - 0.001)
    assert res.bound >= optimum - 1e-6
    assert (res.bound - res.objective) / res.objective <= 0.001
    assert res.uncoupled_persons == 0 and res.broken_persons == 0


@pytest.mark.parametrize("backend", available_backends())
def test_every_backend_solves_the_count_mip(backend: str) -> None:
    """The count MIP has general integer columns (up to the households of a kind); every backend
    finds the same optimum as brute force, with ``heuristics=False`` too."""
    inst = instance(LINE[:3], [3, 2, 4], [1, 1, 1, 2, 2], azc=[0, 0, 2, 0, 0])
    model = build_model(inst, Policy().with_(quota={"fill_balance": 2.0}))
    best = _all_coupled_optimum(model)
    assert best is not None
    counted = count_mip(model, _usable(model), _worst_coupled_plan(model))
    assert counted is not None and counted.problem.col_hi.max() > 1
    for heuristics in (True, False):
        sol = get_backend(backend).solve(
            counted.problem, time_limit=60, gap=0.0, seed=0, heuristics=heuristics
        )
        assert sol.x is not None
        assert model.evaluate(counted.assignment(sol.x)).objective == pytest.approx(best[0])
