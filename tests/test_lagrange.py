"""The knapsack (Lagrangian) bound: valid against brute force, tighter than the LP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from factories import LINE, Crit, brute_force, engine_settings, instance, job_shortage_instance
from hypothesis import given
from hypothesis import strategies as st

from coupler import Policy, build_model, generate_cases, load_instance, solve
from coupler.engine.flow import solve_relaxation
from coupler.engine.lagrange import (
    _knapsack,
    _knapsack_dp,
    flow_multipliers,
    knapsack_bound,
    knapsacks,
    lagrangian_value,
)
from coupler.model import CouplingModel

SETTINGS = engine_settings(40)


@st.composite
def models(draw: st.DrawFn) -> CouplingModel:
    """A tiny model: 2-4 places on a line (a criterion allows its place and the neighbours),
    1-6 households of 1-4 persons, a few location criteria, fill balance 0.5 or 1."""
    n_m = draw(st.integers(2, 4))
    n_h = draw(st.integers(1, 6))
    quota = draw(st.lists(st.integers(0, 7), min_size=n_m, max_size=n_m))
    sizes = draw(st.lists(st.integers(1, 4), min_size=n_h, max_size=n_h))
    crits = [
        Crit(h, draw(st.sampled_from(["family", "medical"])), draw(st.integers(0, n_m - 1)))
        for h in range(n_h)
        if draw(st.booleans())
    ]
    policy = Policy().with_(
        quota={
            "tolerance": draw(st.sampled_from([0.0, 0.25])),
            "fill_balance": draw(st.sampled_from([0.5, 1.0])),
        }
    )
    return build_model(instance(LINE[:n_m], quota, sizes, crits), policy)


@SETTINGS
@given(models(), st.integers(0, 2**32 - 1))
def test_bound_is_at_least_the_brute_force_optimum(model: CouplingModel, seed: int) -> None:
    """For plans with no broken and no uncoupled persons, the bound from the flow's multipliers
    (with and without subgradient steps) and L(u) for random multipliers are all >= the best
    plan's objective found by enumeration, and the bound never exceeds the LP bound."""
    opt = brute_force(model)
    flow = solve_relaxation(model)
    bound = knapsack_bound(model, flow)
    if flow.lp_broken > 0.5 or flow.lp_uncoupled > 0.5:
        assert bound == np.inf
        return
    assert bound <= flow.bound
    if opt.uncoupled or opt.broken:
        return  # no plan of this kind exists; every bound is vacuously valid
    assert bound >= opt.objective - 1e-6
    assert knapsack_bound(model, flow, steps=8) >= opt.objective - 1e-6
    rng = np.random.default_rng(seed)
    for _ in range(3):
        u = rng.normal(0.0, 2.0, model.n_households)
        assert lagrangian_value(model, u)[0] >= opt.objective - 1e-6


def test_family_split_over_two_targets() -> None:
    """A family of 2 and two places with a fill target of 1 each: the LP splits it and loses no
    fill; the whole family leaves one place 1 person short. The knapsack bound, with a few
    subgradient steps, closes the gap to the true optimum (value - fill), the LP does not."""
    model = build_model(instance(LINE[:2], [2, 2], [2]), Policy())
    assert model.target.tolist() == [1.0, 1.0]
    opt = brute_force(model)
    flow = solve_relaxation(model)
    lam = model.fill_weight
    assert flow.bound >= opt.objective + lam - 1e-6
    bound = knapsack_bound(model, flow, steps=10, lower=opt.objective)
    assert opt.objective - 1e-6 <= bound <= opt.objective + 1e-3


def test_knapsack_solvers_agree_with_enumeration() -> None:
    """Both knapsack solvers (to-target with grouped sizes, and the plain DP over capacity) return
    the enumerated optimum of ``sum q + fill * min(persons, target)`` under the capacity, and a
    set that attains it."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(0, 8))
        w = rng.integers(1, 5, n)
        q = rng.normal(-0.8, 1.2, n)
        target, cap, lam = float(rng.integers(0, 10)), int(rng.integers(0, 25)), 0.5 + rng.random()
        best = max(
            q[list(s)].sum() + lam * min(w[list(s)].sum(), target)
            for k in range(n + 1)
            for s in itertools.combinations(range(n), k)
            if w[list(s)].sum() <= cap
        )
        for solver in (_knapsack, _knapsack_dp):
            value, pick = solver(q, w, cap, target, lam)
            assert value == pytest.approx(best, abs=1e-9)
            assert w[pick].sum() <= cap
            got = q[pick].sum() + lam * min(w[pick].sum(), target)
            assert got == pytest.approx(value, abs=1e-9)


def test_bound_holds_on_a_small_national_batch(nl_municipalities) -> None:
    """National scenario, 300 persons: the knapsack bound lies between the engine's plan
    objective and the LP bound."""
    households, criteria = generate_cases(nl_municipalities, 300, seed=3)
    model = build_model(load_instance(households, criteria), Policy())
    flow = solve_relaxation(model)
    plan = solve(model)
    bound = knapsack_bound(model, flow, steps=3, lower=plan.objective)
    assert plan.objective - 1e-6 <= bound <= flow.bound


@SETTINGS
@given(models(), st.integers(0, 12))
def test_knapsack_pairs_leave_the_bound_alone_and_hold_each_knapsack(
    model: CouplingModel, steps: int
) -> None:
    """Collecting the pairs the knapsacks take changes nothing about the bound; every pair
    collected is usable (neither forbidden nor breaking), and the knapsacks at the flow's own
    multipliers (the first step) are among them."""
    flow = solve_relaxation(model)
    if flow.lp_broken > 0.5 or flow.lp_uncoupled > 0.5 or not np.isfinite(flow.potential_h).all():
        return
    pairs = np.zeros((model.n_households, model.n_municipalities), dtype=bool)
    with_pairs = knapsack_bound(model, flow, steps=steps, pairs=pairs)
    assert with_pairs == knapsack_bound(model, flow, steps=steps)
    assert not (pairs & (model.forbidden | model.breaks)).any()
    _, _, first = knapsacks(model, flow_multipliers(model, flow), patterns=True)
    assert first is not None
    for m, members in enumerate(first):
        assert pairs[members, m].all()


@SETTINGS
@given(models(), st.integers(0, 12))
def test_bound_with_uncoupled_persons_holds_against_brute_force(
    model: CouplingModel, steps: int
) -> None:
    """With stage 1's minimum of uncoupled persons as a budget (one more knapsack holds them),
    the bound is at least the best plan's objective found by enumeration."""
    opt = brute_force(model)
    if opt.broken:
        return
    flow = solve_relaxation(model)
    if flow.lp_broken > 0.5:
        return
    if opt.uncoupled > flow.lp_uncoupled + 0.5:
        flow = solve_relaxation(model, uncoupled=opt.uncoupled)
    bound = knapsack_bound(model, flow, steps=steps, uncoupled=opt.uncoupled)
    assert bound >= opt.objective - 1e-6


def test_uncoupled_budget_is_needed_for_a_finite_bound() -> None:
    """More persons than places: without the budget the bound is not about such plans (inf);
    with it, finite and at least the enumerated optimum."""
    model = build_model(instance(LINE[:3], [2, 1, 2], [2, 2, 1, 1, 3]), Policy())
    opt = brute_force(model)
    assert opt.uncoupled > 0 and opt.broken == 0
    flow = solve_relaxation(model, uncoupled=opt.uncoupled)
    assert knapsack_bound(model, flow, steps=5) == np.inf
    bound = knapsack_bound(model, flow, steps=5, uncoupled=opt.uncoupled)
    assert opt.objective - 1e-6 <= bound < np.inf


@SETTINGS
@given(models(), st.integers(0, 12))
def test_bound_with_broken_persons_holds_against_brute_force(
    model: CouplingModel, steps: int
) -> None:
    """With stage 1's broken (and uncoupled) minimum as budgets (a second multiplier on the
    broken budget), the bound is at least the best plan's objective found by enumeration."""
    opt = brute_force(model)
    flow = solve_relaxation(model)
    if opt.uncoupled > flow.lp_uncoupled + 0.5:
        flow = solve_relaxation(model, uncoupled=opt.uncoupled)
    budget = model.evaluate(opt.assignment).broken_measure
    bound = knapsack_bound(model, flow, steps=steps, uncoupled=opt.uncoupled, broken=budget)
    assert bound >= opt.objective - 1e-6


def test_broken_budget_bound_on_a_shortage() -> None:
    """A job municipality too small for its job-holders: without the budget the bound is not
    about such plans (inf); with it, finite, at least the enumerated optimum, and no higher after
    a few steps than at the flow's own multipliers."""
    model = build_model(job_shortage_instance(), Policy())
    opt = brute_force(model)
    assert opt.broken > 0 and opt.uncoupled == 0
    budget = model.evaluate(opt.assignment).broken_measure
    flow = solve_relaxation(model)
    assert knapsack_bound(model, flow, steps=5) == np.inf
    start = knapsack_bound(model, flow, steps=0, broken=budget)
    bound = knapsack_bound(model, flow, steps=20, broken=budget)
    assert opt.objective - 1e-6 <= bound <= start < np.inf
