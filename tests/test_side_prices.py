"""Side constraints priced into the relaxation (pooled quotas, province bands, dwelling
capacities), and the repair and windows after it, checked against every plan of tiny instances."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from factories import LINE, ONLY_PARTICIPATION, instance

from coupler import SolveParams, build_model, solve
from coupler.engine.flow import solve_relaxation
from coupler.engine.solve import _side_prices
from coupler.model import CouplingModel


def _banded(seed: int) -> CouplingModel:
    """Four places in two provinces; a band on province North pushes persons there (its
    places score low), so the unbanded optimum breaks it."""
    rng = np.random.default_rng(seed)
    n_h = int(rng.integers(4, 7))
    sizes = rng.integers(1, 4, n_h).tolist()
    score_items = [
        (h, m, float(rng.choice([0.1, 0.2]) if m < 2 else rng.choice([0.7, 0.9])))
        for h in range(n_h)
        for m in range(4)
    ]
    inst = instance(
        LINE[:4],
        [6, 6, 6, 6],
        sizes,
        score_items=score_items,
        provinces=["North", "North", "South", "South"],
    )
    policy = ONLY_PARTICIPATION.with_(
        quota={"bands": [{"level": "province", "name": "North", "min_fill": 0.9, "max_fill": 2.0}]}
    )
    return build_model(inst, policy)


def _banded_optimum(model: CouplingModel) -> float:
    """Best objective over every plan that couples everybody and meets capacities, bands and
    dwelling capacities."""
    n_h, n_m = model.n_households, model.n_municipalities
    best = -np.inf
    for plan in itertools.product(range(n_m), repeat=n_h):
        a = np.array(plan)
        v = model.evaluate(a)
        if (v.assigned > model.cap).any():
            continue
        if any(not (b.lo <= v.assigned[b.members].sum() <= b.hi) for b in model.bands):
            continue
        if not _dwellings_ok(model, a):
            continue
        best = max(best, v.objective)
    return best


def test_band_prices_give_a_banded_plan_and_a_true_bound() -> None:
    """On 8 banded tiny batches whose unbanded optimum breaks the band, the priced plan (when
    pricing finds one; otherwise the engine goes on to the MIP) meets the band and the
    capacities, and the Lagrangian bound is at least the enumerated banded optimum. Pricing
    finds a plan for most of them (not a vacuous check)."""
    found = 0
    for seed in range(8):
        model = _banded(seed)
        band = model.bands[0]
        optimum = _banded_optimum(model)
        free = model.evaluate(
            solve(dataclasses.replace(model, bands=()), SolveParams(gap=0.0)).assignment
        )
        assert free.assigned[band.members].sum() < band.lo  # the band binds
        plan, bound, _ = _side_prices(model, solve_relaxation(model), 0.0, lambda _: None)
        if plan is None:
            continue
        found += 1
        v = model.evaluate(plan)
        assert band.lo <= v.assigned[band.members].sum() <= band.hi
        assert (v.assigned <= model.cap).all() and v.uncoupled_persons == 0
        assert v.objective <= optimum + 1e-9
        assert bound >= optimum - 1e-6
    assert found >= 5


@pytest.mark.parametrize("seed", range(4))
def test_engine_with_a_band_meets_it_and_reports_a_true_bound(seed: int) -> None:
    """The whole engine on a banded tiny batch: the plan meets the band, and the reported
    bound is not below the enumerated banded optimum."""
    model = _banded(seed)
    band = model.bands[0]
    optimum = _banded_optimum(model)
    res = solve(model)
    v = model.evaluate(res.assignment)
    assert band.lo <= v.assigned[band.members].sum() <= band.hi
    assert res.bound >= optimum - 1e-6
    assert res.objective <= optimum + 1e-9


def _dwellings_ok(model: CouplingModel, a: np.ndarray) -> bool:
    """Large households and single persons per municipality within its dwelling capacities."""
    n_m = model.n_municipalities
    for caps, mask in ((model.cap_large, model.is_large), (model.cap_single, model.size == 1)):
        if caps is not None and (np.bincount(a[mask], minlength=n_m) > caps).any():
            return False
    return True


def _dwelling_case(seed: int) -> CouplingModel:
    """Four places; the two that score best have room for one single person and no large
    household each, so the optimum without dwelling capacities breaks them."""
    rng = np.random.default_rng(50 + seed)
    n_h = int(rng.integers(4, 7))
    sizes = rng.choice([1, 1, 2, 5], n_h).tolist()
    score_items = [
        (h, m, float(rng.choice([0.7, 0.9]) if m < 2 else rng.choice([0.1, 0.2])))
        for h in range(n_h)
        for m in range(4)
    ]
    inst = instance(
        LINE[:4],
        [8, 8, 12, 12],
        sizes,
        score_items=score_items,
        cap_single=[1, 1, None, None],
        cap_large=[0, 0, None, None],
    )
    return build_model(inst, ONLY_PARTICIPATION)


@pytest.mark.parametrize("seed", range(6))
def test_engine_with_dwelling_capacities_meets_them_and_reports_a_true_bound(seed: int) -> None:
    """Dwelling capacities priced, repaired and windowed: the engine's plan keeps every
    capacity, its bound is not below the enumerated optimum, and its objective not above."""
    model = _dwelling_case(seed)
    optimum = _banded_optimum(model)
    assert np.isfinite(optimum)
    res = solve(model, SolveParams(gap=0.0))
    assert _dwellings_ok(model, res.assignment)
    assert res.uncoupled_persons == 0
    assert res.bound >= optimum - 1e-6
    assert res.objective <= optimum + 1e-9
    assert res.objective == pytest.approx(optimum, abs=1e-6) or res.status.value != "optimal"


def test_side_prices_bound_holds_with_dwelling_capacities() -> None:
    """The Lagrangian bound over dwelling capacities is never below the enumerated optimum,
    and the plan pricing returns (when it returns one) keeps every capacity."""
    binding = 0
    for seed in range(8):
        model = _dwelling_case(seed)
        optimum = _banded_optimum(model)
        flow = solve_relaxation(dataclasses.replace(model, cap_large=None, cap_single=None))
        plan, bound, nearest = _side_prices(model, flow, 0.0, lambda _: None)
        assert bound >= optimum - 1e-6
        if flow.bound > optimum + 1e-6:
            binding += 1
        if plan is not None:
            assert _dwellings_ok(model, plan)
            assert model.evaluate(plan).objective <= optimum + 1e-9
        assert nearest is None or model.evaluate(nearest).uncoupled_persons == 0
    assert binding >= 4  # the capacities cut the relaxation's bound in most cases


def test_pooled_batch_ends_with_the_cheapest_pairs_mip_and_keeps_the_pool() -> None:
    """A 1,000-person batch under the shipped Utrecht pooling agreement (one band on the pool's
    total, members' caps doubled): the engine's last step, a MIP over each household's cheapest
    pairs against the side LP, runs and gains on the window search's plan; the plan keeps the
    pool's band (its members from the instance's own table) and every capacity, and its gap is
    under half a percent (it was 1.5 % after the windows)."""
    from pathlib import Path

    from coupler import Policy, generate_cases, load_instance, load_scenario
    from coupler.agreements import Agreement, build_variant

    municipalities, _ = load_scenario()
    households, criteria = generate_cases(municipalities, persons=1_000, seed=0)
    inst = load_instance(households, criteria)
    root = Path(__file__).resolve().parents[1]
    agreement = Agreement.from_file(root / "scenarios/nl-2024/agreements/utrecht-pool.toml")
    model = build_variant(inst, Policy(), (agreement,))
    res = solve(model)
    assert res.method.endswith("+mip")
    v = model.evaluate(res.assignment)
    assert (v.assigned <= model.cap).all() and v.uncoupled_persons == 0
    utrecht = (inst.municipalities["province"].astype(str) == "Utrecht").to_numpy()
    band = model.bands[0]
    assert np.array_equal(band.members.astype(bool), utrecht)
    assert band.lo <= v.assigned[utrecht].sum() <= band.hi
    assert res.gap < 0.005
