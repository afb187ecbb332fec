"""The transportation relaxation: column generation converges, also when costs tie."""

from __future__ import annotations

import numpy as np
import pytest
from factories import LINE, instance

from coupler import Policy, build_model, generate_cases, load_instance, load_scenario
from coupler.engine.flow import solve_relaxation


@pytest.mark.parametrize("fill", [0.0, 0.5])
def test_safety_net_gives_the_same_bound(fill: float) -> None:
    """Stopping column generation after one round falls back to every usable pair; that flow
    is optimal, so its bound equals the converged one."""
    inst = instance(LINE[:4], [3, 2, 4, 3], [1, 2, 3, 1, 2])
    model = build_model(inst, Policy().with_(quota={"fill_balance": fill}))
    full = solve_relaxation(model)
    cut = solve_relaxation(model, max_rounds=1, arcs_per_household=1)
    assert cut.bound == pytest.approx(full.bound, abs=1e-6)


def test_tied_costs_converge_in_few_rounds() -> None:
    """A national batch with ids and sizes only (every soft score 0, fill balance on) needs only
    a few pricing rounds, not one per municipality."""
    m, _ = load_scenario()
    hh, _ = generate_cases(m, persons=600, seed=4)
    inst = load_instance(hh[["household_id", "size"]], None)
    flow = solve_relaxation(build_model(inst, Policy()))
    assert flow.rounds <= 10
    assert np.isfinite(flow.bound)
