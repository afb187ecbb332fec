"""KPIs of a plan: jobs within reach, distances, fill shares, Gini, groups."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from coupler import (
    Policy,
    SolveParams,
    build_model,
    generate_cases,
    load_instance,
    load_scenario,
    solve,
)
from coupler.analysis.kpi import KPI_LABELS, compute_kpis, fill_table, gini


@pytest.fixture(scope="module")
def solved():
    """A generated batch of 300 persons (seed 5) on the national scenario, solved with the
    default policy; it holds a few work and family criteria and the group columns."""
    municipalities, _ = load_scenario()
    hh, cr = generate_cases(municipalities, persons=300, seed=5)
    inst = load_instance(hh, cr)
    model = build_model(inst, Policy())
    return model, solve(model, SolveParams(time_limit=20))


def test_gini_known_values() -> None:
    """Gini is 0 for equal values, (n-1)/n for all mass on one unit, and NaN when empty."""
    assert gini(np.array([1.0, 1.0, 1.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 1.0])) == pytest.approx(2 / 3)
    assert math.isnan(gini(np.array([])))


def test_jobs_kept_matches_an_independent_count(solved) -> None:
    """jobs_kept equals the work criteria whose job municipality lies within the reach of the chosen
    municipality, recomputed from the instance's distance matrix, for two different reaches."""
    model, result = solved
    inst = model.instance
    chosen = result.plan.set_index("household_id")["municipality"]
    work = inst.criteria[inst.criteria["kind"] == "work"]
    assert len(work) > 0
    for reach in (50.0, 20.0):
        k = compute_kpis(result, model, reach_km=reach).values
        kept = 0
        for _, row in work.iterrows():
            c = chosen[row["household_id"]]
            if (
                pd.notna(c)
                and inst.distance_km[inst.code_index[row["municipality"]], inst.code_index[c]]
                <= reach
            ):
                kept += 1
        assert k["jobs"] == len(work)
        assert k["jobs_kept"] == kept
        assert k["jobs_kept_qualifying"] + k["jobs_kept_other"] == kept


def test_every_labelled_kpi_is_computed(solved) -> None:
    """Every KPI in the table's label list is present, and counts agree with the result."""
    model, result = solved
    k = compute_kpis(result, model).values
    assert set(KPI_LABELS) <= set(k)
    assert k["persons"] == model.persons
    assert k["broken_persons"] == result.broken_persons
    assert k["uncoupled_persons"] == result.uncoupled_persons
    assert k["objective"] == pytest.approx(result.objective)


def test_fill_share_is_relative_to_the_fair_share(solved) -> None:
    """fill_share = assigned / (batch persons / total remaining x remaining); the assigned persons
    sum to the coupled persons and the fair shares to the batch size."""
    model, result = solved
    t = fill_table(result, model)
    assert t["assigned_persons"].sum() == model.persons - result.uncoupled_persons
    assert t["fair_share"].sum() == pytest.approx(model.persons, rel=1e-3)
    ok = t["fair_share"] > 0
    np.testing.assert_allclose(
        t.loc[ok, "fill_share"], (t["assigned_persons"] / t["fair_share"])[ok], rtol=1e-2, atol=1e-3
    )


def test_reference_remaining_fixes_the_denominator(solved) -> None:
    """With a doubled reference quota the fair shares stay the same in total (the batch) but the
    fill shares are computed against the given quota, not the model's."""
    model, result = solved
    ref = np.asarray(model.instance.remaining) * 2
    ref[0] = 0
    t = fill_table(result, model, reference_remaining=ref)
    assert t["remaining"].iloc[0] == 0 and math.isnan(t["fill_share"].iloc[0])


def test_groups_cover_every_household(solved) -> None:
    """For each group column the groups partition the households and persons."""
    model, result = solved
    g = compute_kpis(result, model).groups
    assert set(g["column"]) == {"household_type", "gender", "age_group"}
    for _, part in g.groupby("column"):
        assert part["households"].sum() == model.n_households
        assert part["persons"].sum() == model.persons
