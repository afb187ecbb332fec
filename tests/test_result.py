"""The Result (coupler.result): pickling round trip, and tables consistent with the plan."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from coupler import Result, Status, blocks
from coupler.result import make_result, plan_table


def _assignment(result: Result, model) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Municipality index per model household, read back from the plan by label."""
    codes = result.plan.set_index("household_id")["municipality"].reindex(
        model.instance.household_ids
    )
    index = model.instance.code_index
    return np.array([-1 if pd.isna(c) else index[c] for c in codes], dtype=np.int64)


def test_pickle_round_trip(national_result: Result) -> None:
    """A pickled and unpickled national result has equal tables and equal numbers."""
    back = pickle.loads(pickle.dumps(national_result))
    for name in ("plan", "criteria", "municipalities", "conflicts"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(national_result, name))
    for name in (
        "status",
        "objective",
        "bound",
        "soft",
        "shortfall",
        "broken_persons",
        "uncoupled_persons",
        "backend",
        "method",
        "seconds",
        "info",
    ):
        assert getattr(back, name) == getattr(national_result, name), name
    assert back.summary() == national_result.summary()


def test_json_is_plain_and_agrees(national_result: Result) -> None:
    """to_json survives json.dumps and repeats the result's counts and status."""
    data = json.loads(json.dumps(national_result.to_json()))
    assert data["status"] == str(national_result.status)
    assert data["households"] == len(national_result.plan)
    assert data["persons"] == 4_700
    assert data["broken_persons"] == national_result.broken_persons
    assert data["uncoupled_persons"] == national_result.uncoupled_persons


def test_tables_agree_with_the_assignment(national_model, national_result: Result) -> None:
    """Per municipality, assigned persons and households are the counts of the plan; objective,
    soft score, shortfall and broken persons are model.evaluate of the plan; a criterion is met
    exactly when the chosen municipality lies within the radius of it."""
    model, res = national_model, national_result
    a = _assignment(res, model)
    v = model.evaluate(a)
    assert res.objective == pytest.approx(v.objective, abs=1e-9)
    assert res.soft == pytest.approx(v.soft, abs=1e-9)
    assert res.shortfall == pytest.approx(v.shortfall, abs=1e-9)
    assert (res.broken_persons, res.uncoupled_persons) == (v.broken_persons, v.uncoupled_persons)
    mt = res.municipalities.set_index("code").loc[model.instance.codes]
    assert mt["assigned_persons"].tolist() == v.assigned.tolist()
    on = a >= 0
    households = np.bincount(a[on], minlength=model.n_municipalities)
    assert mt["assigned_households"].tolist() == households.tolist()
    assert (mt["assigned_persons"] <= mt["capacity"]).all()
    plan = res.plan.set_index("household_id").loc[model.instance.household_ids]
    assert plan["persons"].tolist() == model.size.tolist()
    assert (plan["coupled"].to_numpy() == on).all()
    c = res.criteria
    inst = model.instance
    crit = c["criterion_municipality"].map(inst.code_index).to_numpy(dtype=np.int64)
    chosen = c["household_id"].map(inst.household_index).to_numpy(dtype=np.int64)
    km = inst.distance_km[crit, np.maximum(a[chosen], 0)]
    met = (a[chosen] >= 0) & (km <= model.policy.hard.radius_km + 1e-9)
    assert (c["met"].to_numpy() == met).all()
    assert res.gap >= 0 and res.bound >= res.objective - 1e-6


def test_make_result_on_the_tiny_optimum(tiny) -> None:
    """make_result on the tiny fixture's optimal plan [1, 0, 0] writes that plan, objective 1.6,
    the score per household and the fill per municipality."""
    model = tiny.model
    res = make_result(
        model,
        tiny.assignment,
        status=Status.OPTIMAL,
        bound=1.6,
        broken_lower_bound=0,
        uncoupled_lower_bound=0,
        backend="test",
        method="given",
        seconds={},
    )
    assert res.plan["municipality"].tolist() == ["GM9002", "GM9001", "GM9001"]
    assert res.plan["score"].tolist() == pytest.approx([0.2, 0.9, 0.5])
    assert res.objective == pytest.approx(1.6)
    assert res.gap == pytest.approx(0.0, abs=1e-12)
    assert res.municipalities["assigned_persons"].tolist() == [2, 2]
    assert res.municipalities["fill"].tolist() == [1.0, 0.5]
    assert res.status is Status.OPTIMAL and "optimal" in res.summary()


def test_uncoupled_household_has_no_place(tiny_shortage) -> None:
    """A plan leaving a household uncoupled shows no municipality, persons uncoupled and a score
    of 0 for it."""
    res = make_result(
        tiny_shortage.model,
        np.array([-1, 0]),
        status=Status.FEASIBLE,
        bound=float("inf"),
        broken_lower_bound=1,
        uncoupled_lower_bound=0,
        backend="test",
        method="given",
        seconds={},
    )
    row = res.plan.iloc[0]
    assert pd.isna(row["municipality"]) and not row["coupled"] and row["score"] == 0
    assert res.uncoupled_persons == 1 and res.broken_persons == 0
    assert res.gap == float("inf")


def test_plan_table_is_the_same_in_blocks(
    national_model, national_result: Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan table (score parts recomputed at each household's place, best alternative found
    a block of households at a time) is identical with blocks of 7 households."""
    monkeypatch.setattr(blocks, "BLOCK_PAIRS", 7 * national_model.n_municipalities)
    table = plan_table(national_model, national_result.assignment)
    pd.testing.assert_frame_equal(table, national_result.plan)
