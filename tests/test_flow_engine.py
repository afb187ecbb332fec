"""The transportation relaxation: column generation converges, also when costs tie, and
working through blocks of rows changes no number."""

from __future__ import annotations

import numpy as np
import pytest
from factories import LINE, instance

from coupler import (
    Policy,
    blocks,
    build_model,
    generate_cases,
    load_instance,
    load_scenario,
    solve,
)
from coupler.engine.flow import SCALE, _spread, solve_relaxation


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


@pytest.mark.parametrize("persons", [600, 40_000])
def test_ids_and_sizes_only_end_with_an_exact_bound(persons: int) -> None:
    """Without soft data every pair's cost is a whole number of scaled units, so the relaxation's
    bound carries no rounding allowance: the engine ends optimal at gap 0 from its rounded plan,
    with more persons than places (40,000: 12,000 left out, the proven minimum) or fewer. The
    allowance of one unit per person had made an objective of 0 look 4.9 % open (48,796 persons),
    and the engine then spent half a minute on a class LP to close it."""
    m, _ = load_scenario()
    hh, _ = generate_cases(m, persons=persons, seed=9)
    inst = load_instance(hh[["household_id", "size"]], None)
    model = build_model(inst, Policy())
    res = solve(model)
    assert res.status.value == "optimal"
    assert res.gap == 0.0
    assert res.bound == pytest.approx(res.objective, abs=1e-3)
    assert "classes" not in res.method and "windows" not in res.method
    assert res.uncoupled_persons == res.uncoupled_lower_bound
    assert res.uncoupled_persons == max(0, model.persons - int(model.cap.sum()))


def _dense_reduced_value(model, flow):  # type: ignore[no-untyped-def]
    """The reduced value as one whole-matrix expression (the form before it was built in place)."""
    size = model.size.astype(np.float64)
    per_person = (
        model.value / size[:, None]
        - flow.broken_penalty * model.breaks * (model.broken_weight / size)[:, None]
    )
    cost = -np.rint(per_person * SCALE)
    with np.errstate(invalid="ignore"):
        rc = (cost + flow.potential_h[:, None] - flow.potential_m[None, :]) / SCALE * size[:, None]
    rc = np.where(np.isfinite(rc), np.maximum(rc, 0.0), 0.0)
    rc[model.forbidden] = np.inf
    return rc


@pytest.mark.parametrize("soft", [True, False])
def test_blocks_change_no_number(soft: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Column generation worked through blocks of one row (or one column) at a time gives the
    same arcs, flows, potentials and bound as with the default blocks, bit for bit, also with
    tied costs (ids and sizes only) where ranking ties decide the arcs; the in-place reduced
    value equals the whole-matrix formula exactly."""
    m, _ = load_scenario()
    hh, cr = generate_cases(m, persons=600, seed=4)
    inst = load_instance(hh, cr) if soft else load_instance(hh[["household_id", "size"]], None)
    model = build_model(inst, Policy())
    default = solve_relaxation(model)
    monkeypatch.setattr(blocks, "BLOCK_PAIRS", 1)
    small = solve_relaxation(model)
    for name in ("arc_h", "arc_m", "flow", "uncoupled", "potential_h", "potential_m"):
        np.testing.assert_array_equal(getattr(small, name), getattr(default, name))
    assert (small.bound, small.rounds) == (default.bound, default.rounds)
    np.testing.assert_array_equal(
        default.reduced_value(model), _dense_reduced_value(model, default)
    )


def test_spread_is_the_formula() -> None:
    """The tie-breaking spread, summed from residues, is ``((h * 7919 + m * 104729) mod 997) /
    1994`` exactly, for households up to 250,000 and any subset of rows and columns."""
    h, m = np.arange(250_000), np.arange(342)
    whole = ((h[:, None] * 7919 + m[None, :] * 104729) % 997) / 1994.0
    np.testing.assert_array_equal(_spread(h, m), whole)
    rows, cols = np.array([5, 99_999, 3]), np.array([341, 0])
    np.testing.assert_array_equal(_spread(rows, cols), whole[np.ix_(rows, cols)])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fill", [0.0, 0.5])
def test_early_stop_keeps_a_proven_bound(seed: int, fill: float) -> None:
    """Column generation that stops while pairs could still pay off (a loose tolerance forces
    it) reports a bound no lower than the converged one, within the tolerance of it, and
    potentials under which no usable pair has a negative reduced cost: the pruning by reduced
    values stays valid."""
    m, _ = load_scenario()
    hh, cr = generate_cases(m, persons=1_500, seed=seed)
    model = build_model(load_instance(hh, cr), Policy().with_(quota={"fill_balance": fill}))
    exact = solve_relaxation(model, tolerance=0.0)
    loose = solve_relaxation(model, tolerance=0.5, arcs_per_household=2, add_per_round=1)
    converged = solve_relaxation(model, tolerance=0.0, arcs_per_household=2, add_per_round=1)
    assert loose.rounds < converged.rounds  # it did stop early
    assert loose.bound >= exact.bound - 1e-9 * abs(exact.bound)
    assert converged.bound == pytest.approx(exact.bound, rel=1e-9)
    soft = float((model.value.max(axis=1)).sum())
    assert loose.bound <= exact.bound + 0.5 * soft + 1e-6
    # Every usable pair prices out under the (raised) household potentials.
    from coupler.engine.flow import scaled_cost

    rc = scaled_cost(model, loose.broken_penalty)
    rc += loose.potential_h[:, None]
    rc -= loose.potential_m[None, :]
    assert rc[~model.forbidden].min() >= -1e-6
