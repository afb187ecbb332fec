"""The transportation relaxation (coupler.engine.flow), checked against enumeration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from factories import Case, all_plans, brute_force, engine_settings, tiny_cases
from hypothesis import given

from coupler import build_model
from coupler.engine.flow import SCALE, flow_penalties, solve_relaxation

SETTINGS = engine_settings(40)


@SETTINGS
@given(tiny_cases())
def test_bound_is_at_least_every_integral_plan(case: Case) -> None:
    """The relaxation's bound is >= the penalised value (soft - fill x shortfall - penalties x
    broken and uncoupled persons) of every feasible integral plan, found by enumeration."""
    model = build_model(case.inst, case.policy)
    rel = solve_relaxation(model)
    pen_b, pen_u = flow_penalties(model)
    assert (rel.broken_penalty, rel.uncoupled_penalty) == (pen_b, pen_u)
    p = all_plans(model)
    value = p.objective - pen_b * p.broken - pen_u * p.uncoupled
    assert p.feasible.any()
    assert rel.bound >= value[p.feasible].max() - 1e-9


@SETTINGS
@given(tiny_cases())
def test_flow_conserves_persons_and_respects_capacity(case: Case) -> None:
    """Every person of every household is either sent to an allowed-to-use pair or uncoupled; no
    municipality receives more than its capacity; no forbidden pair carries flow."""
    model = build_model(case.inst, case.policy)
    rel = solve_relaxation(model)
    sent = np.bincount(rel.arc_h, weights=rel.flow, minlength=model.n_households)
    assert (sent + rel.uncoupled == model.size).all()
    load = np.bincount(rel.arc_m, weights=rel.flow, minlength=model.n_municipalities)
    assert (load <= model.cap).all()
    used = rel.flow > 0
    assert not model.forbidden[rel.arc_h[used], rel.arc_m[used]].any()
    assert (rel.reduced_cost >= -0.5).all()


@SETTINGS
@given(tiny_cases(max_size=1))
def test_optimal_on_unsplittable_unit_instances(case: Case) -> None:
    """With every household a single person nothing can be split: the flow is an integral plan
    and that plan is the lexicographic optimum (same uncoupled and broken persons and objective
    as enumeration), its value within the rounding allowance of the bound."""
    model = build_model(case.inst, case.policy)
    rel = solve_relaxation(model)
    assert len(rel.split_households()) == 0
    a = rel.rounded_assignment()
    best = brute_force(model)
    v = model.evaluate(a)
    assert (v.uncoupled_persons, v.broken_persons) == (best.uncoupled, best.broken)
    assert v.objective == pytest.approx(best.objective, abs=1e-6)
    penalised = v.objective - rel.broken_penalty * v.broken_persons
    penalised -= rel.uncoupled_penalty * v.uncoupled_persons
    assert 0 <= rel.bound - penalised <= (model.persons + 1) / SCALE + 1e-6


def test_tiny_fixture_relaxation_splits_the_couple(tiny) -> None:
    """On the tiny fixture (integral optimum 1.6) the relaxation splits the 2-person household.

    Per person: H001 0.5 / 0.1 (place 0 / place 1), H002 0.9 / 0.1, H003 0.5 / 0.4; place 0
    takes two persons. The fractional optimum puts H002 and one person of H001 at place 0, the
    other person of H001 and H003 at place 1: 0.9 + 0.5 + 0.1 + 0.4 = 1.9. Every cost is a whole
    number of scaled units, so nothing is rounded and the bound is exactly 1.9; only H001 is split.
    """
    rel = solve_relaxation(tiny.model)
    assert rel.split_households().tolist() == [0]
    assert rel.rounded_assignment().tolist() == [-2, 0, 1]
    assert rel.bound == pytest.approx(1.9, abs=1e-12)
    assert rel.bound >= tiny.objective


def test_rounded_costs_add_their_allowance_to_the_bound(tiny) -> None:
    """With every score divided by 3 (costs that are no whole number of scaled units) the bound
    is at least the relaxation's true optimum 1.9 / 3 and exceeds it by at most twice half a
    unit per person (rounding on the flow's arcs and on any other flow's)."""
    thirds = dataclasses.replace(tiny.model, value=tiny.model.value / 3)
    rel = solve_relaxation(thirds)
    assert rel.bound >= 1.9 / 3
    assert rel.bound <= 1.9 / 3 + tiny.model.persons / SCALE + 1e-12
    assert rel.bound > 1.9 / 3 + 1e-9  # the allowance is there


def test_given_uncoupled_count_is_kept(tiny_shortage) -> None:
    """With ``uncoupled=1`` exactly one person stays uncoupled in the relaxation."""
    rel = solve_relaxation(tiny_shortage.model, uncoupled=1)
    assert int(rel.uncoupled.sum()) == 1
    assert rel.lp_uncoupled == 1.0


def test_national_bound_is_above_the_engine_plan(national_model, national_result) -> None:
    """On the national monthly batch the relaxation needs no broken or uncoupled person and its
    bound is at least the engine's objective (which has none either)."""
    rel = solve_relaxation(national_model)
    assert rel.lp_broken == 0 and rel.lp_uncoupled == 0
    assert national_result.broken_persons == national_result.uncoupled_persons == 0
    assert rel.bound >= national_result.objective - 1e-6
