"""Hypothesis properties of the engine on random tiny instances, checked from outside.

Every instance is small enough (<= 6 households x 4 municipalities) to enumerate, so the engine's
plan is compared with the brute-force optimum (tests/factories.py) as well as with the
independent checker (coupler.verify).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import (
    Case,
    Crit,
    brute_force,
    code,
    engine_settings,
    hid,
    instance,
    milp_optimum,
    tiny_cases,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from coupler import Instance, Policy, SolveParams, build_model, solve
from coupler.verify import verify_plan

SETTINGS = engine_settings(30)
EXACT = SolveParams(gap=0.0, time_limit=30.0, seed=0)


def run(model: Any, params: SolveParams | None = None) -> Any:
    return solve(model, params)


def test_uncoupled_household_with_a_criterion_gets_a_result() -> None:
    """A household with a hard criterion and no quota anywhere is uncoupled, not a crash."""
    inst = instance([(52.0, 4.5), (52.0, 5.0)], [0, 0], [1], [Crit(0, "family", 0)])
    res = solve(build_model(inst, Policy()))
    assert res.uncoupled_persons == 1


def test_pinned_household_that_does_not_fit_is_left_uncoupled() -> None:
    """A household pinned to a place without room (criterion elsewhere) is uncoupled."""
    inst = instance(
        [(52.0, 4.5), (52.0, 5.0)], [6, 2], [3], [Crit(0, "study", 0)], lock_items=[(0, 1, "pin")]
    )
    res = solve(build_model(inst, Policy()))
    assert res.uncoupled_persons == 3


def assignment(inst: Instance, plan: pd.DataFrame) -> np.ndarray:
    idx = {c: i for i, c in enumerate(inst.codes)}
    codes = plan.set_index("household_id")["municipality"].reindex(inst.household_ids)
    return np.array([-1 if pd.isna(c) else idx[c] for c in codes], dtype=np.int64)


def verify(case: Case, plan: pd.DataFrame):  # type: ignore[no-untyped-def]
    i = case.inst
    return verify_plan(i.municipalities, i.households, i.criteria, plan, case.policy, locks=i.locks)


@SETTINGS
@given(tiny_cases())
def test_plan_is_valid_and_checker_agrees(case: Case) -> None:
    """Every plan: no quota exceeded, no banned pair, pins honoured, no avoidable broken hard
    criterion or needless uncoupling (independent checker), and the checker's broken persons and
    persons per municipality equal the result's."""
    model = build_model(case.inst, case.policy)
    res = run(model, EXACT)
    a = assignment(case.inst, res.plan)
    on = a >= 0
    assigned = np.bincount(a[on], weights=model.size[on], minlength=model.n_municipalities)
    assert (assigned <= model.cap).all()
    assert not model.forbidden[np.flatnonzero(on), a[on]].any()
    pinned = model.pinned >= 0
    # A pinned household is coupled to its pin, or uncoupled when the pin has no room.
    assert ((a[pinned] == model.pinned[pinned]) | (a[pinned] == -1)).all()
    rep = verify(case, res.plan)
    assert rep.ok, rep.violations
    assert rep.broken_persons == res.broken_persons
    assert rep.uncoupled_persons == res.uncoupled_persons
    got = res.municipalities.set_index("code")["assigned_persons"]
    assert rep.persons_per_municipality.tolist() == got.reindex(case.inst.codes).tolist()


@SETTINGS
@given(tiny_cases())
def test_engine_reaches_the_brute_force_optimum(case: Case) -> None:
    """The engine's plan is lexicographically optimal: uncoupled and broken persons equal the
    enumerated minimum, and the objective equals the enumerated maximum within 1e-6."""
    model = build_model(case.inst, case.policy)
    res = run(model, EXACT)
    best = brute_force(model)
    assert (res.uncoupled_persons, res.broken_persons) == (best.uncoupled, best.broken)
    assert abs(res.objective - best.objective) <= 1e-6, (res.objective, best.objective)
    assert res.objective == model.evaluate(assignment(case.inst, res.plan)).objective


def _key(res: Any) -> tuple[int, int, float]:
    return (-res.uncoupled_persons, -res.broken_persons, res.objective)


@SETTINGS
@given(tiny_cases(), st.data())
def test_relaxing_a_quota_never_hurts(case: Case, data: st.DataObject) -> None:
    """Raising one municipality's remaining quota never makes the optimum worse: never more
    uncoupled or broken persons, and (without fill balance, whose targets move with the quota)
    never a lower objective."""
    inst = case.inst
    j = data.draw(st.integers(0, inst.n_municipalities - 1))
    extra = data.draw(st.integers(1, 5))
    rem = inst.remaining.copy()
    rem[j] += extra
    policy = case.policy.with_(quota={"fill_balance": 0.0})
    for p in (case.policy, policy):
        before = run(build_model(inst, p), EXACT)
        after = run(build_model(inst.with_remaining(rem), p), EXACT)
        assert (after.uncoupled_persons, after.broken_persons) <= (
            before.uncoupled_persons,
            before.broken_persons,
        )
    assert _key(after)[:2] > _key(before)[:2] or after.objective >= before.objective - 1e-6


@settings(derandomize=True, deadline=None, max_examples=10)
@given(tiny_cases())
def test_same_inputs_and_seed_give_the_same_plan(case: Case) -> None:
    """Solving twice with the same inputs and seed gives the identical plan and objective."""
    a = run(build_model(case.inst, case.policy), SolveParams(seed=3))
    b = solve(build_model(case.inst, case.policy), SolveParams(seed=3))
    pd.testing.assert_frame_equal(a.plan, b.plan)
    assert a.objective == b.objective


@SETTINGS
@given(tiny_cases(max_households=6, scores=False), st.data())
def test_objective_is_checkable_from_participation_scores(case: Case, data: st.DataObject) -> None:
    """With every weight 0 but participation and no fill balance, the objective equals the sum
    of the supplied scores of the chosen pairs (looked up in the scores table, not the model)."""
    inst = case.inst
    table = {
        (hid(h), code(m)): data.draw(st.sampled_from([0.0, 0.2, 0.35, 0.7, 1.0]))
        for h in range(inst.n_households)
        for m in range(inst.n_municipalities)
    }
    scores = pd.DataFrame(
        {
            "household_id": pd.array([k[0] for k in table], dtype="string"),
            "municipality": pd.array([k[1] for k in table], dtype="string"),
            "labour_market_region": pd.array([None] * len(table), dtype="string"),
            "score": np.array(list(table.values()), dtype="float64"),
        }
    )
    zero = {k: 0.0 for k in ("labour", "network", "ambition", "azc", "work_soft")}
    policy = case.policy.with_(weights={**zero, "participation": 1.0}, quota={"fill_balance": 0.0})
    res = run(build_model(inst.replace(scores=scores), policy), EXACT)
    chosen = res.plan.dropna(subset=["municipality"])
    expected = sum(
        table[(h, m)] for h, m in zip(chosen["household_id"], chosen["municipality"], strict=True)
    )
    assert abs(res.objective - expected) <= 1e-9


@SETTINGS
@given(tiny_cases())
def test_the_independent_milp_optimum_is_the_brute_force_optimum(case: Case) -> None:
    """The scipy MIP that larger tests check the engine against (``milp_optimum``) agrees with
    enumeration on tiny cases: its uncoupled and broken minima, and its soft optimum."""
    model = build_model(case.inst, case.policy)
    if model.cap_large is not None or model.cap_single is not None:
        return
    want, got = brute_force(model), milp_optimum(model)
    assert (got.uncoupled, got.broken) == (want.uncoupled, want.broken)
    assert got.objective == pytest.approx(want.objective, abs=1e-6)
    assert model.evaluate(got.assignment).objective == pytest.approx(want.objective, abs=1e-6)
