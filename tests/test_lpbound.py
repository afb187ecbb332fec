"""The LP with every side row by column generation (coupler.engine.lpbound): a true bound on
tiny banded and dwelling-capacity batches, the full LP's optimum when the pricing converges,
and still a true bound when it is stopped after one round."""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest
import scipy.sparse as sp
from test_side_prices import _banded, _banded_optimum, _dwelling_case, _dwellings_ok

import coupler.engine.lpbound as lpbound
from coupler import solve
from coupler.engine.backends import get_backend
from coupler.engine.base import MipProblem
from coupler.engine.flow import solve_relaxation
from coupler.engine.highs import WarmLP
from coupler.engine.mip import build_mip
from coupler.engine.solve import _side_prices
from coupler.model import CouplingModel

HIGHS = get_backend("highs")


def _lp_bound(model: CouplingModel) -> lpbound.LPBound:
    """lp_bound from the relaxation's arcs and every household's pairs in index order."""
    flow = solve_relaxation(model)
    order = np.tile(np.arange(model.n_municipalities), (model.n_households, 1))
    return lpbound.lp_bound(
        model, HIGHS, flow.arc_h, flow.arc_m, order, deadline=time.perf_counter() + 60
    )


def _bound(model: CouplingModel) -> float:
    return _lp_bound(model).bound


def _full_lp(model: CouplingModel) -> float:
    """The same LP over every usable pair at once."""
    usable = ~model.forbidden & ~model.breaks
    ph, pm = np.nonzero(usable)
    problem, _ = build_mip(model, ph, pm, objective="soft", allow_uncoupled=False)
    lp = dataclasses.replace(problem, integer=np.zeros(problem.n_cols, dtype=bool))
    return float(HIGHS.solve(lp, time_limit=60.0, gap=0.0, seed=0).objective)


@pytest.mark.parametrize("case", [_banded, _dwelling_case])
@pytest.mark.parametrize("seed", range(6))
def test_bound_holds_and_is_the_full_lp(case, seed: int) -> None:  # type: ignore[no-untyped-def]
    """At least the enumerated optimum over plans that meet every side row, at most the priced
    (Lagrangian) bound, and equal to the LP solved over every pair at once."""
    model = case(seed)
    optimum = _banded_optimum(model)
    assert np.isfinite(optimum)
    bound = _bound(model)
    assert bound >= optimum - 1e-6
    assert bound == pytest.approx(_full_lp(model), abs=1e-6)
    _, priced, _ = _side_prices(model, solve_relaxation(model), 0.0, lambda _: None)
    assert bound <= priced + 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_bound_after_one_round_still_holds(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """One restricted LP over one pair per household (plus the relaxation's arcs): the bound
    from its duals is weak duality over every pair, so it is at least the enumerated optimum
    and at least the converged bound."""
    model = _banded(seed)
    converged = _bound(model)
    monkeypatch.setattr(lpbound, "MAX_ROUNDS", 1)
    monkeypatch.setattr(lpbound, "FIRST_PAIRS", 1)
    flow = solve_relaxation(dataclasses.replace(model, value=np.zeros_like(model.value)))
    order = np.zeros((model.n_households, 1), dtype=np.int64)
    early = lpbound.lp_bound(
        model, HIGHS, flow.arc_h[:1], flow.arc_m[:1], order, deadline=time.perf_counter() + 60
    ).bound
    assert early >= _banded_optimum(model) - 1e-6
    assert early >= converged - 1e-6


def test_dual_value_is_weak_duality_and_refuses_unbounded_paying_columns() -> None:
    """max x0 + 2 x1 s.t. x0 + x1 <= 1, 0 <= x0 <= 1, 0 <= x1 <= 3: at y = 1.5 the value is
    1.5 (the row) + 0.5 * 3 (x1 pays) = 3, at least the optimum 2; with x1 unbounded above the
    same duals give no bound (inf), and a dual on a row's infinite side none either."""
    problem = MipProblem(
        c=np.array([1.0, 2.0]),
        A=sp.csr_matrix(np.array([[1.0, 1.0]])),
        row_lo=np.array([-np.inf]),
        row_hi=np.array([1.0]),
        col_lo=np.zeros(2),
        col_hi=np.array([1.0, 3.0]),
        integer=np.zeros(2, dtype=bool),
    )
    y = np.array([1.5])
    rc = problem.c - problem.A.T @ y
    assert lpbound._dual_value(problem, y, rc) == pytest.approx(3.0)
    assert lpbound._dual_value(problem, np.array([2.0]), problem.c - 2.0) == pytest.approx(2.0)
    open_top = dataclasses.replace(problem, col_hi=np.array([1.0, np.inf]))
    assert lpbound._dual_value(open_top, y, rc) == np.inf
    assert lpbound._dual_value(problem, np.array([-1.0]), problem.c + 1.0) == np.inf


@pytest.mark.parametrize("case", [_banded, _dwelling_case])
@pytest.mark.parametrize("seed", range(3))
def test_every_plan_is_worth_at_most_the_bound_less_its_reduced_costs(case, seed: int) -> None:  # type: ignore[no-untyped-def]
    """The reduced costs returned with the bound (what the windows follow): every enumerated
    plan that meets the side rows is worth at most the bound minus the reduced costs of its
    pairs, so a pair whose reduced cost exceeds a plan's gap is in no better plan."""
    model = case(seed)
    found = _lp_bound(model)
    assert found.reduced is not None
    assert (found.reduced >= 0).all()
    checked = 0
    for plan in itertools.product(range(model.n_municipalities), repeat=model.n_households):
        a = np.array(plan)
        v = model.evaluate(a)
        if (v.assigned > model.cap).any() or not _dwellings_ok(model, a):
            continue
        if any(not (b.lo <= v.assigned[b.members].sum() <= b.hi) for b in model.bands):
            continue
        used = found.reduced[np.arange(model.n_households), a].sum()
        assert v.objective <= found.bound - used + 1e-6
        checked += 1
    assert checked > 0


def test_above_the_pair_limit_no_lp_is_built_and_the_engine_still_meets_the_band(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past MAX_PAIRS no LP is built (inf, no reduced costs); the engine then works from the
    priced bound and the relaxation's reduced costs: its plan still meets the band and its
    bound is still at least the enumerated optimum."""
    model = _banded(1)
    monkeypatch.setattr(lpbound, "MAX_PAIRS", 0)
    flow = solve_relaxation(model)
    order = np.tile(np.arange(model.n_municipalities), (model.n_households, 1))
    none = lpbound.lp_bound(model, HIGHS, flow.arc_h, flow.arc_m, order, deadline=np.inf)
    assert none.bound == np.inf and none.reduced is None
    res = solve(model)
    band = model.bands[0]
    v = model.evaluate(res.assignment)
    assert band.lo <= v.assigned[band.members].sum() <= band.hi
    assert res.bound >= _banded_optimum(model) - 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_side_price_is_the_band_dual_per_person_inside_the_band_and_zero_outside(
    seed: int,
) -> None:
    """With one band and no dwelling capacities, the side rows' share of every pair's reduced
    cost is one price per person at the band's municipalities and nothing elsewhere."""
    model = _banded(seed)
    found = _lp_bound(model)
    assert found.side_price is not None
    band = model.bands[0].members.astype(bool)
    usable = ~model.forbidden & ~model.breaks
    per_person = found.side_price / model.size[:, None]
    inside = per_person[:, band][usable[:, band]]
    assert np.allclose(inside, inside[0])
    assert np.allclose(found.side_price[:, ~band], 0.0)
    # The band binds in these cases (its unbanded optimum breaks it): the price pulls persons
    # into the band, so it is positive.
    assert inside[0] > 1e-9


@pytest.mark.parametrize("case", [_banded, _dwelling_case])
def test_side_lp_duals_price_a_plan_that_the_repair_makes_meet_every_row(case) -> None:  # type: ignore[no-untyped-def]
    """The engine's first try with side rows: the relaxation priced at the side LP's duals,
    rounded, then repaired along the LP's reduced costs. On 8 tiny batches the result (when
    there is one) meets every band and dwelling capacity, couples everybody and is worth no
    more than the enumerated optimum; it is found for most of them."""
    from coupler.engine.solve import _Clock, _dual_priced_plan, _lp_bound, _side_repair

    found = 0
    for seed in range(8):
        model = case(seed)
        optimum = _banded_optimum(model)
        flow = solve_relaxation(model)
        clock = _Clock(60.0)
        start = np.argmin(flow.reduced_value(model), axis=1)
        side_lp = _lp_bound(model, flow, start, clock, lambda _: None)
        assert side_lp.bound >= optimum - 1e-6
        plan = _dual_priced_plan(model, side_lp, 0.0, lambda _: None)
        if plan is not None and not model.meets_side_rows(plan):
            plan = _side_repair(model, flow, plan, HIGHS, clock, 0, lambda _: None, side_lp.reduced)
        if plan is None:
            continue
        found += 1
        v = model.evaluate(plan)
        assert model.meets_side_rows(plan) and _dwellings_ok(model, plan)
        assert (v.assigned <= model.cap).all() and v.uncoupled_persons == 0
        assert v.objective <= optimum + 1e-9
    assert found >= 5


class _ColdHighs:
    """HiGHS under another name: lp_bound then solves every restricted LP from scratch."""

    name = "highs-cold"

    def solve(self, problem: MipProblem, **kwargs: object) -> object:
        return HIGHS.solve(problem, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", [_banded, _dwelling_case])
@pytest.mark.parametrize("seed", range(3))
def test_warm_and_cold_restricted_lps_give_the_same_bound(case, seed: int) -> None:  # type: ignore[no-untyped-def]
    """HiGHS keeps the restricted LP between rounds; another backend re-solves it each round.
    Both converge to the LP over every pair (their duals may differ where it is degenerate)."""
    model = case(seed)
    flow = solve_relaxation(model)
    order = np.tile(np.arange(model.n_municipalities), (model.n_households, 1))
    bounds = [
        lpbound.lp_bound(
            model, lp, flow.arc_h[:1], flow.arc_m[:1], order, deadline=time.perf_counter() + 60
        ).bound
        for lp in (HIGHS, _ColdHighs())
    ]
    assert bounds[0] == pytest.approx(bounds[1], abs=1e-6)
    assert bounds[0] == pytest.approx(_full_lp(model), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_warm_lp_after_added_columns_is_the_cold_lp(seed: int) -> None:
    """Columns added in two batches: each warm solve has the optimum of a cold solve over the
    same columns, and its row duals prove it (weak duality equals the optimum)."""
    rng = np.random.default_rng(seed)
    rows, cols = 6, 30
    A = sp.random(rows, cols, density=0.5, random_state=seed, format="csc") + sp.eye(
        rows, cols, format="csc"
    )
    problem = MipProblem(
        c=rng.uniform(-1.0, 3.0, cols),
        A=A.tocsr(),
        row_lo=np.full(rows, -np.inf),
        row_hi=rng.uniform(1.0, 4.0, rows),
        col_lo=np.zeros(cols),
        col_hi=np.ones(cols),
        integer=np.zeros(cols, dtype=bool),
    )
    keep = np.zeros(cols, dtype=bool)
    keep[:10] = True
    warm = WarmLP(lpbound._columns(problem, A, keep))
    for batch in (np.arange(10, 18), np.arange(18, cols)):
        before = warm.solve(60.0)
        cold = HIGHS.solve(lpbound._columns(problem, A, keep), time_limit=60.0, gap=0.0, seed=0)
        assert before.objective == pytest.approx(cold.objective, abs=1e-7)
        y = before.row_dual
        assert y is not None
        sub = lpbound._columns(problem, A, keep)
        assert lpbound._dual_value(sub, y, sub.c - sub.A.T @ y) == pytest.approx(
            before.objective, abs=1e-6
        )
        warm.add_columns(
            problem.c[batch], problem.col_lo[batch], problem.col_hi[batch], A[:, batch]
        )
        keep[batch] = True
    last = warm.solve(60.0)
    full = HIGHS.solve(problem, time_limit=60.0, gap=0.0, seed=0)
    assert last.objective == pytest.approx(full.objective, abs=1e-7)
    assert warm.problem.n_cols == cols
