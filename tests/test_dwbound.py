"""The Dantzig-Wolfe bound (one knapsack per municipality, priced by a master LP): valid
against brute force, never above the Lagrangian bound it starts from, the master LP's optimum
when it converges, and tighter than the transportation relaxation where whole households must
fill the targets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from factories import brute_force, engine_settings
from hypothesis import given
from test_lagrange import models

from coupler import (
    Policy,
    SolveParams,
    build_model,
    generate_cases,
    load_instance,
    load_scenario,
    solve,
)
from coupler.engine.backends import get_backend
from coupler.engine.base import MipProblem
from coupler.engine.dwbound import dw_bound
from coupler.engine.flow import solve_relaxation
from coupler.engine.lagrange import flow_multipliers, lagrangian_value
from coupler.model import CouplingModel

SETTINGS = engine_settings(30)


def _start(model: CouplingModel) -> np.ndarray:
    return flow_multipliers(model, solve_relaxation(model))


def _pattern_lp(model: CouplingModel) -> float:
    """The master LP over every pattern of every municipality (every subset of households that
    fits), enumerated: the Dantzig-Wolfe bound itself."""
    n_h, n_m = model.n_households, model.n_municipalities
    usable = ~model.forbidden & ~model.breaks
    cols_rows: list[list[int]] = []
    costs: list[float] = []
    for m in range(n_m):
        allowed = np.flatnonzero(usable[:, m])
        for k in range(len(allowed) + 1):
            for subset in itertools.combinations(allowed, k):
                members = np.array(subset, dtype=np.int64)
                persons = float(model.size[members].sum())
                if persons > model.cap[m]:
                    continue
                short = max(float(model.target[m]) - persons, 0.0)
                costs.append(float(model.value[members, m].sum()) - model.fill_weight * short)
                cols_rows.append([*members.tolist(), n_h + m])
    rows = np.concatenate([np.array(r) for r in cols_rows])
    cols = np.repeat(np.arange(len(cols_rows)), [len(r) for r in cols_rows])
    A = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_h + n_m, len(cols_rows)))
    n = len(costs)
    problem = MipProblem(
        c=np.array(costs),
        A=A,
        row_lo=np.ones(n_h + n_m),
        row_hi=np.ones(n_h + n_m),
        col_lo=np.zeros(n),
        col_hi=np.full(n, np.inf),
        integer=np.zeros(n, dtype=bool),
        offset=0.0,
    )
    return float(get_backend("highs").solve(problem, time_limit=60, gap=0.0, seed=0).objective)


@SETTINGS
@given(models())
def test_bound_holds_and_converges_to_the_master_lp(model: CouplingModel) -> None:
    """On tiny batches whose best plan couples everybody and breaks nothing: the bound is at
    least that plan's objective (enumerated), at most the Lagrangian bound at the starting
    multipliers, and, converged, the master LP over every pattern (enumerated)."""
    opt = brute_force(model)
    flow = solve_relaxation(model)
    if opt.uncoupled or opt.broken or flow.lp_broken > 0.5 or flow.lp_uncoupled > 0.5:
        return
    u0 = _start(model)
    found = dw_bound(model, opt.assignment, u0, max_rounds=200)
    assert found.bound >= opt.objective - 1e-6
    assert found.bound <= lagrangian_value(model, u0)[0] + 1e-9
    assert found.converged
    assert found.bound == pytest.approx(_pattern_lp(model), abs=1e-6)


def test_tighter_than_the_relaxation_on_a_fill_balance_batch() -> None:
    """National scenario, 600 persons, fill balance on: the converged bound lies between the
    engine's plan and the transportation relaxation's bound, and strictly below the latter."""
    municipalities, _ = load_scenario()
    households, criteria = generate_cases(municipalities, 600, seed=4)
    model = build_model(load_instance(households, criteria), Policy())
    plan = solve(model)
    flow = solve_relaxation(model)
    found = dw_bound(model, plan.assignment, _start(model), max_rounds=300)
    assert found.converged
    assert plan.objective - 1e-6 <= found.bound < flow.bound - 1e-3


def test_engine_reports_the_bound_when_asked() -> None:
    """``bound_rounds`` on: the engine's reported bound is no higher than without it, still at
    least its plan, and the plan is the same (the bound does not change the search)."""
    municipalities, _ = load_scenario()
    households, criteria = generate_cases(municipalities, 600, seed=4)
    model = build_model(load_instance(households, criteria), Policy())
    plain = solve(model)
    proved = solve(model, SolveParams(bound_rounds=300))
    assert np.array_equal(plain.assignment, proved.assignment)
    assert proved.objective - 1e-6 <= proved.bound <= plain.bound + 1e-9
    assert proved.bound < plain.bound - 1e-3 or plain.gap <= 0.001
