"""The model arrays of :func:`coupler.build_model`, checked against the instance and policy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from factories import LINE, Case, Crit, brute_force, engine_settings, instance, tiny_cases
from hypothesis import given

from coupler import CouplingModel, Instance, Policy, build_model
from coupler.criteria import SOFT_PARTS, qualifies_as_hard, soft_parts

SETTINGS = engine_settings(40)


def _hard_points(inst: Instance, policy: Policy) -> list[tuple[int, int]]:
    """(household, municipality) of every criterion that qualifies as hard, by label."""
    c = inst.criteria
    hard = qualifies_as_hard(c, policy) if len(c) else np.zeros(0, dtype=bool)
    rows = c[hard]
    return [
        (inst.household_index[str(h)], inst.code_index[str(m)])
        for h, m in zip(rows["household_id"], rows["municipality"], strict=True)
    ]


@SETTINGS
@given(tiny_cases())
def test_allowed_pairs_respect_the_radius(case: Case) -> None:
    """A pair (h, m) is allowed exactly when m lies within the radius of every hard criterion of
    h (households whose criteria conflict excepted, where a criterion yields); a household
    without hard criteria is allowed everywhere."""
    model = build_model(case.inst, case.policy)
    radius = case.policy.hard.radius_km
    d = case.inst.distance_km
    points = _hard_points(case.inst, case.policy)
    conflicted = set(model.hard.conflicts["household"].tolist())
    for h in range(model.n_households):
        mine = [m for hh, m in points if hh == h]
        if not mine:
            assert not model.has_hard[h]
            assert model.allowed[h].all()
            continue
        if h in conflicted:
            continue
        expected = np.ones(model.n_municipalities, dtype=bool)
        for m in mine:
            expected &= d[m] <= radius + 1e-9
        assert model.has_hard[h]
        assert (model.allowed[h] == expected).all()


@SETTINGS
@given(tiny_cases())
def test_values_are_the_weighted_soft_parts(case: Case) -> None:
    """value[h, m] equals the sum over the soft parts of policy weight x part, every part
    computed by coupler.criteria.soft_parts and lying in [0, 1] (labour may exceed 1 only under
    the 'sum' aggregation)."""
    model = build_model(case.inst, case.policy)
    parts = soft_parts(case.inst, case.policy)
    assert set(parts) == set(SOFT_PARTS)
    expected = sum(getattr(case.policy.weights, name) * parts[name] for name in SOFT_PARTS)
    np.testing.assert_allclose(model.value, expected, rtol=0, atol=1e-12)
    for name in SOFT_PARTS:
        assert parts[name].shape == (model.n_households, model.n_municipalities)
        assert (parts[name] >= 0).all()
        if name != "labour" or case.policy.soft.aggregation != "sum":
            assert (parts[name] <= 1 + 1e-12).all(), name


def test_participation_score_is_the_only_part_under_only_participation(tiny) -> None:
    """With every weight 0 but participation, value is the participation table itself: the
    hand-written scores of the tiny fixture, and 0 where no score was given."""
    np.testing.assert_allclose(tiny.model.value, [[1.0, 0.2], [0.9, 0.1], [0.5, 0.4]])


@SETTINGS
@given(tiny_cases())
def test_capacity_target_and_sizes(case: Case) -> None:
    """cap = floor(remaining x (1 + tolerance)); target = floor(national fill ratio x
    remaining), never above cap; size is the household sizes in household order."""
    model = build_model(case.inst, case.policy)
    rem = case.inst.municipalities["remaining"].to_numpy()
    tol = case.policy.quota.tolerance
    assert model.cap.tolist() == [math.floor(r * (1 + tol) + 1e-9) for r in rem]
    persons = int(case.inst.households["size"].sum())
    ratio = min(1.0, persons / rem.sum()) if rem.sum() > 0 else 0.0
    expected = np.minimum(np.floor(ratio * rem + 1e-9), model.cap)
    assert model.target.tolist() == expected.tolist()
    assert model.size.tolist() == case.inst.households["size"].tolist()
    assert model.persons == persons


def test_locks_make_forbidden_and_pinned() -> None:
    """A ban forbids exactly its pair; a pin forbids every other municipality of that household
    and records the pinned index; unlocked households have nothing forbidden."""
    inst = instance(LINE[:3], [3, 3, 3], [1, 1, 1], lock_items=[(0, 2, "ban"), (1, 1, "pin")])
    model = build_model(inst, Policy())
    assert model.forbidden.tolist() == [
        [False, False, True],
        [True, False, True],
        [False, False, False],
    ]
    assert model.pinned.tolist() == [-1, 1, -1]


def test_breaks_is_hard_and_not_allowed() -> None:
    """breaks[h, m] holds exactly where h has a hard criterion and m is not allowed: a job at
    place 0 allows places 0 and 1 (34 km) and breaks at place 2 (69 km); a job without evidence
    is not hard and breaks nowhere."""
    inst = instance(
        LINE[:3], [3, 3, 3], [1, 1], [Crit.job(0, 0), Crit(1, "work", 0, 30.0, False, False)]
    )
    model = build_model(inst, Policy())
    assert model.has_hard.tolist() == [True, False]
    assert model.breaks.tolist() == [[False, False, True], [False, False, False]]


def test_model_arrays_are_read_only(tiny) -> None:
    """No engine can change the model it is handed: every array is read-only."""
    m: CouplingModel = tiny.model
    for name in ("size", "cap", "value", "forbidden", "pinned", "target", "allowed"):
        a = getattr(m, name)
        with pytest.raises(ValueError, match="read-only"):
            a[(0,) * a.ndim] = a[(0,) * a.ndim]


@SETTINGS
@given(tiny_cases(max_households=5))
def test_evaluate_matches_an_independent_count(case: Case) -> None:
    """model.evaluate on the brute-force optimum gives the enumerated uncoupled and broken
    persons and objective, and its parts add up: objective = soft - fill_weight x shortfall,
    assigned persons per municipality = bincount of the plan."""
    model = build_model(case.inst, case.policy)
    best = brute_force(model)
    v = model.evaluate(best.assignment)
    assert (v.uncoupled_persons, v.broken_persons) == (best.uncoupled, best.broken)
    assert v.objective == pytest.approx(best.objective, abs=1e-9)
    assert v.objective == pytest.approx(v.soft - model.fill_weight * v.shortfall, abs=1e-12)
    a = best.assignment
    on = a >= 0
    expected = np.bincount(a[on], weights=model.size[on], minlength=model.n_municipalities)
    assert v.assigned.tolist() == expected.astype(np.int64).tolist()


def test_tiny_fixture_optimum_is_the_brute_force_optimum(tiny, tiny_shortage) -> None:
    """The hand-checked optima written in conftest.py equal the enumerated ones, and
    model.evaluate gives the stated objective for the stated plan."""
    for known in (tiny, tiny_shortage):
        best = brute_force(known.model)
        assert (best.uncoupled, best.broken) == (known.uncoupled, known.broken)
        assert best.objective == pytest.approx(known.objective, abs=1e-9)
        v = known.model.evaluate(known.assignment)
        assert (v.uncoupled_persons, v.broken_persons) == (known.uncoupled, known.broken)
        assert v.objective == pytest.approx(known.objective, abs=1e-9)


def test_national_model_shapes(national_model) -> None:
    """The national monthly batch: 342 municipalities, 4,700 persons, values finite, every
    household has at least one usable municipality."""
    m = national_model
    assert m.n_municipalities == 342
    assert m.persons == 4_700
    assert m.value.shape == (m.n_households, 342)
    assert np.isfinite(m.value).all()
    assert (~m.forbidden).any(axis=1).all()
