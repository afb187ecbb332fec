"""Local search (coupler.engine.local.improve): never worse, always feasible."""

from __future__ import annotations

import numpy as np
import pytest
from factories import Case, all_plans, engine_settings, tiny_cases
from hypothesis import given
from hypothesis import strategies as st

from coupler import build_model
from coupler.engine.local import improve
from coupler.engine.mip import all_pairs

SETTINGS = engine_settings(60)


@SETTINGS
@given(tiny_cases(), st.data())
def test_never_worsens_and_keeps_feasibility(case: Case, data: st.DataObject) -> None:
    """From any feasible plan, improve returns a plan that is still feasible (capacities, no
    forbidden pair), couples the same households, breaks no more persons' criteria and has an
    objective at least as high; the input array is left unchanged."""
    model = build_model(case.inst, case.policy)
    plans = all_plans(model)
    feasible = np.flatnonzero(plans.feasible)
    start = plans.assignment[feasible[data.draw(st.integers(0, len(feasible) - 1))]].copy()
    before = model.evaluate(start)
    keep = start.copy()
    pair_h, pair_m = all_pairs(model)
    out = improve(model, start, pair_h, pair_m)
    assert (start == keep).all()
    after = model.evaluate(out)
    assert (after.assigned <= model.cap).all()
    on = out >= 0
    assert not model.forbidden[np.flatnonzero(on), out[on]].any()
    assert ((out >= 0) == (start >= 0)).all()
    assert after.broken_persons <= before.broken_persons
    assert after.objective >= before.objective - 1e-9


def test_moves_the_tiny_fixture_to_its_optimum(tiny) -> None:
    """On the tiny fixture, starting from H001 at place 0 and the singles at place 1 (1.5), one
    move cannot reach the optimum 1.6 (it needs a swap), so improve stops at a plan no worse than
    the start; from [1, 0, 1] (1.5) moving H003 to place 0 gives the optimum [1, 0, 0]."""
    model = tiny.model
    pair_h, pair_m = all_pairs(model)
    stuck = improve(model, np.array([0, 1, 1]), pair_h, pair_m)
    assert model.evaluate(stuck).objective >= 1.5 - 1e-9
    best = improve(model, np.array([1, 0, 1]), pair_h, pair_m)
    assert best.tolist() == tiny.assignment.tolist()
    assert model.evaluate(best).objective == pytest.approx(tiny.objective, abs=1e-12)
