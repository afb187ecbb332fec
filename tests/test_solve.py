"""The engine entry point on degenerate batches, and the window search against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from factories import LINE, brute_force, instance

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
from coupler.engine.lns import improve_windows


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
