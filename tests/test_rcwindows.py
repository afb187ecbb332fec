"""Windows along the relaxation's reduced costs (``improve_reduced_windows``).

Checked against brute force on tiny instances, and on national batches against an independent
plan check: never worse, never more broken or uncoupled persons, capacities kept, the same plan
on a busy machine.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from factories import LINE, Crit, brute_force, busy_cores, instance

from coupler import Policy, build_model, generate_cases, load_instance, load_scenario, solve
from coupler.engine import lns
from coupler.engine.backends import get_backend
from coupler.engine.flow import solve_relaxation
from coupler.engine.lns import improve_reduced_windows
from coupler.engine.rounding import round_with_singles
from coupler.model import CouplingModel
from coupler.verify import verify_plan


def _search(
    model: CouplingModel, start: np.ndarray, reduced: np.ndarray, **kw: object
) -> np.ndarray:
    args: dict[str, object] = {
        "bound": math.inf,
        "gap": 0.0,
        "deadline": float("inf"),
        "seed": 0,
        "allow_broken": False,
    }
    args.update(kw)
    return improve_reduced_windows(model, start, get_backend("highs"), reduced, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(6))
def test_reaches_the_brute_force_optimum_when_every_pair_is_near(seed: int) -> None:
    """With every pair near (reduced cost 0) one window holds the whole tiny instance, and the
    search reaches the enumerated optimum from a poor plan, fill balance on."""
    rng = np.random.default_rng(200 + seed)
    sizes = rng.integers(1, 4, 6).tolist()
    quota = rng.integers(4, 9, 4).tolist()
    inst = instance(LINE[:4], quota, sizes, azc=rng.integers(0, 4, 6).tolist())
    model = build_model(inst, Policy())
    best = brute_force(model)
    assert best.uncoupled == 0 and best.broken == 0
    # A poor start: households in file order into the first place with room.
    start = np.full(model.n_households, -1, dtype=np.int64)
    room = model.cap.astype(np.int64).copy()
    for h in range(model.n_households):
        m = int(np.flatnonzero(room >= model.size[h])[0])
        start[h] = m
        room[m] -= model.size[h]
    out = _search(model, start, np.zeros(model.value.shape), near_cost=0.0)
    assert model.evaluate(out).objective == pytest.approx(best.objective, abs=1e-6)
    assert model.evaluate(out).uncoupled_persons == 0


def test_keeps_the_broken_budget_of_a_shortage() -> None:
    """A job-holder who must break stays counted once: the search never adds broken persons."""
    inst = instance(
        LINE[:4],
        [1, 0, 0, 6],
        [1, 1, 2],
        [Crit.job(0, 0), Crit.job(1, 0)],
        score_items=[(0, 0, 0.3), (1, 0, 0.8), (2, 3, 0.5)],
    )
    model = build_model(inst, Policy())
    best = brute_force(model)
    start = np.array([3, 0, 3], dtype=np.int64)  # H001 breaks; H002 at the job
    before = model.evaluate(start)
    assert before.broken_persons == best.broken == 1
    out = _search(model, start, np.zeros(model.value.shape), allow_broken=True, near_cost=0.0)
    after = model.evaluate(out)
    assert after.broken_persons <= before.broken_persons
    assert after.objective >= before.objective - 1e-9


@pytest.fixture(scope="module")
def batch() -> CouplingModel:
    """A national batch of about 1,200 persons, fill balance on (the default policy)."""
    m, _ = load_scenario()
    hh, crit = generate_cases(m, persons=1_200, seed=7)
    return build_model(load_instance(hh, crit), Policy())


def test_national_batch_gains_and_stays_valid(batch: CouplingModel) -> None:
    """From the rounded relaxation, the search raises the objective, never above the
    relaxation's bound, and the plan passes the independent check; the same plan again while
    every core is busy."""
    flow = solve_relaxation(batch)
    start = round_with_singles(batch, flow)
    assert start is not None
    reduced = flow.reduced_value(batch)
    before = batch.evaluate(start)
    out = _search(batch, start, reduced, bound=flow.bound, gap=1e-4)
    after = batch.evaluate(out)
    assert after.objective > before.objective + 1e-6
    assert after.objective <= flow.bound + 1e-6
    assert (after.uncoupled_persons, after.broken_persons) == (0, 0)
    i = batch.instance
    plan = {h: i.codes[m] for h, m in zip(i.household_ids, out.tolist(), strict=True)}
    report = verify_plan(i.municipalities, i.households, i.criteria, plan, batch.policy)
    assert report.ok, report.violations
    assert report.broken_persons == 0 and report.uncoupled_persons == 0
    with busy_cores():
        again = _search(batch, start, reduced, bound=flow.bound, gap=1e-4)
    assert np.array_equal(out, again)


def test_windows_solved_together_are_disjoint(batch: CouplingModel) -> None:
    """The windows of one batch share no municipality and no freed household, the first in line
    is always among them, and a window's pairs stay within its own municipalities."""
    flow = solve_relaxation(batch)
    start = round_with_singles(batch, flow)
    assert start is not None
    reduced = flow.reduced_value(batch)
    near = ~batch.forbidden & ~batch.breaks & (reduced <= 0.05)
    order = np.argsort(-np.bincount(start[start >= 0], minlength=batch.n_municipalities))
    found = lns._disjoint_windows(batch, start, near, reduced, order, 3)
    assert len(found) >= 2
    assert found[0][0] == int(order[0])
    seen_m: set[int] = set()
    seen_h: set[int] = set()
    for _, free, ph, pm in found:
        window = set(lns._grow(start, near, int(_)).tolist())
        assert set(pm.tolist()) <= window
        assert set(ph.tolist()) <= set(free.tolist())
        assert not window & seen_m and not set(free.tolist()) & seen_h
        seen_m |= window
        seen_h |= set(free.tolist())


def _province_totals(model: CouplingModel, plan: np.ndarray) -> dict[str, int]:
    """Persons per province, from the instance's own tables (not the model's band rows)."""
    inst = model.instance
    province = inst.municipalities["province"].astype(str).to_numpy()
    sizes = inst.households["size"].to_numpy()
    out: dict[str, int] = {}
    for h, m in enumerate(plan.tolist()):
        if m >= 0:
            out[province[m]] = out.get(province[m], 0) + int(sizes[h])
    return out


def test_banded_batch_keeps_every_band_with_windows_in_parallel() -> None:
    """Province bands (97-103 % of each province's share): from a plan that meets them, the
    search (two windows at a time) keeps every band, counted from the instance's own tables,
    and every capacity, never lowers the objective, and gives the same plan on a busy
    machine."""
    m, _ = load_scenario()
    hh, crit = generate_cases(m, persons=1_200, seed=11)
    provinces = sorted(m["province"].astype(str).unique())
    bands = [
        {"level": "province", "name": p, "min_fill": 0.97, "max_fill": 1.03} for p in provinces
    ]
    policy = Policy().with_(quota={"bands": bands}, solver={"polish_time": 0.0})
    model = build_model(load_instance(hh, crit), policy)
    start = solve(model).assignment
    assert model.meets_side_rows(start)
    flow = solve_relaxation(model)
    reduced = flow.reduced_value(model)
    out = _search(model, start, reduced, bound=flow.bound, gap=1e-5)
    assert model.evaluate(out).objective >= model.evaluate(start).objective - 1e-9
    totals = _province_totals(model, out)
    limits = {band.label.split(":", 1)[1]: (band.lo, band.hi) for band in model.bands}
    assert len(limits) == len(provinces)
    for name, (lo, hi) in limits.items():
        assert lo <= totals.get(name, 0) <= hi, name
    assert (model.evaluate(out).assigned <= model.cap).all()
    with busy_cores():
        again = _search(model, start, reduced, bound=flow.bound, gap=1e-5)
    assert np.array_equal(out, again)


def test_whole_plan_check_refuses_an_exceeded_capacity_and_a_banned_place(
    batch: CouplingModel,
) -> None:
    """The check a window applied after another of its batch must pass (with the side rows)
    accepts the plan it starts from, and refuses one where a municipality takes more persons
    than its capacity or a household sits at a banned place."""
    flow = solve_relaxation(batch)
    plan = round_with_singles(batch, flow)
    assert plan is not None
    assert batch.keeps_capacities(plan)
    smallest = int(np.argmin(np.where(batch.cap > 0, batch.cap, np.inf)))
    over = plan.copy()
    movers = np.flatnonzero(plan != smallest)
    enough = movers[: int(np.searchsorted(np.cumsum(batch.size[movers]), batch.cap[smallest])) + 1]
    over[enough] = smallest
    assert batch.evaluate(over).assigned[smallest] > batch.cap[smallest]
    assert not batch.keeps_capacities(over)
    h = int(np.flatnonzero(plan >= 0)[0])
    forbidden = batch.forbidden.copy()
    forbidden[h, plan[h]] = True
    assert not dataclasses.replace(batch, forbidden=forbidden).keeps_capacities(plan)
