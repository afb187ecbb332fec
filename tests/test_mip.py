"""The MIP builder (coupler.engine.mip.build_mip): its objective and rows are the model's."""

from __future__ import annotations

import numpy as np
import pytest
from factories import Case, brute_force, engine_settings, tiny_cases
from hypothesis import given

from coupler import CouplingModel, build_model
from coupler.engine.backends import get_backend
from coupler.engine.base import MipProblem
from coupler.engine.mip import all_pairs, build_mip, penalties

SETTINGS = engine_settings(40)


def _feasible(problem: MipProblem, x: np.ndarray) -> bool:
    ax = problem.A @ x
    return bool(
        (ax >= problem.row_lo - 1e-9).all()
        and (ax <= problem.row_hi + 1e-9).all()
        and (x >= problem.col_lo - 1e-9).all()
        and (x <= problem.col_hi + 1e-9).all()
    )


def _penalised(model: CouplingModel, a: np.ndarray) -> float:
    v = model.evaluate(a)
    pb, pu = penalties(model)
    return v.objective - pb * v.broken_persons - pu * v.uncoupled_persons


@SETTINGS
@given(tiny_cases())
def test_objective_at_the_brute_force_optimum_equals_evaluate(case: Case) -> None:
    """Written as a MIP over every usable pair, the brute-force optimum (as the warm start) is a
    feasible point whose MIP objective equals model.evaluate: the soft objective minus the
    dominating penalties on broken and uncoupled persons ('penalised'), and the soft objective
    minus the uncoupled penalty ('soft')."""
    model = build_model(case.inst, case.policy)
    best = brute_force(model)
    pair_h, pair_m = all_pairs(model)
    v = model.evaluate(best.assignment)
    _, pu = penalties(model)
    for objective, expected in (
        ("penalised", _penalised(model, best.assignment)),
        ("soft", v.objective - pu * v.uncoupled_persons),
    ):
        problem, layout = build_mip(
            model, pair_h, pair_m, objective=objective, start=best.assignment
        )
        assert problem.start is not None
        assert _feasible(problem, problem.start)
        assert problem.c @ problem.start + problem.offset == pytest.approx(expected, abs=1e-6)
        back = layout.assignment(problem.start, model.n_households)
        assert back.tolist() == best.assignment.tolist()


@SETTINGS
@given(tiny_cases())
def test_priority_objective_counts_uncoupled_then_broken(case: Case) -> None:
    """The 'priority' objective at the brute-force optimum is -((persons + 1) x uncoupled +
    broken), the stage-1 key."""
    model = build_model(case.inst, case.policy)
    best = brute_force(model)
    pair_h, pair_m = all_pairs(model)
    problem, _ = build_mip(model, pair_h, pair_m, objective="priority", start=best.assignment)
    assert problem.start is not None and _feasible(problem, problem.start)
    expected = -((model.persons + 1) * best.uncoupled + best.broken)
    assert problem.c @ problem.start == pytest.approx(expected, abs=1e-9)


@SETTINGS
@given(tiny_cases(max_households=5))
def test_solved_penalised_mip_reaches_the_brute_force_optimum(case: Case) -> None:
    """HiGHS on the 'penalised' MIP finds a plan with the enumerated uncoupled and broken persons
    and objective."""
    model = build_model(case.inst, case.policy)
    best = brute_force(model)
    pair_h, pair_m = all_pairs(model)
    problem, layout = build_mip(model, pair_h, pair_m, objective="penalised")
    sol = get_backend("highs").solve(problem, time_limit=30.0, gap=0.0, seed=0)
    assert sol.x is not None
    v = model.evaluate(layout.assignment(sol.x, model.n_households))
    assert (v.uncoupled_persons, v.broken_persons) == (best.uncoupled, best.broken)
    assert v.objective == pytest.approx(best.objective, abs=1e-6)


def test_budgets_cut_off_plans_over_budget(tiny_shortage) -> None:
    """With max_broken=0 the tiny shortage's optimum (one broken person) is no longer feasible,
    and with max_broken=1 it is."""
    model = tiny_shortage.model
    pair_h, pair_m = all_pairs(model)
    a = tiny_shortage.assignment
    tight, _ = build_mip(model, pair_h, pair_m, max_broken=0, start=a)
    loose, _ = build_mip(model, pair_h, pair_m, max_broken=1, start=a)
    assert tight.start is not None and loose.start is not None
    assert not _feasible(tight, tight.start)
    assert _feasible(loose, loose.start)


def test_fixed_households_take_their_persons_off_capacity(tiny) -> None:
    """With H001 (2 persons) fixed at place 0 and the others free, place 0 has no room left: the
    capacity row of place 0 has upper bound cap - 2 = 0."""
    model = tiny.model
    pair_h, pair_m = all_pairs(model, np.array([1, 2]))
    fixed = np.array([0, -1, -1])
    problem, layout = build_mip(model, pair_h, pair_m, fixed=fixed)
    assert layout.households.tolist() == [1, 2]
    n_free = 2
    cap_rows = problem.row_hi[n_free : n_free + model.n_municipalities]
    assert cap_rows.tolist() == [model.cap[0] - 2, model.cap[1]]
