"""Hard and soft criteria: allowed pairs, conflicts, and the soft parts' aggregation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coupler import Policy, load_instance
from coupler.criteria import hard_criteria, qualifies_as_hard, soft_parts

DATA = Path(__file__).parent / "data" / "valid"


@pytest.fixture(scope="module")
def inst():
    """Five households on the national scenario; H001 works 24 h in Eindhoven with contract and
    payslip, H002 has family in Amsterdam, H004 medical care in Maastricht."""
    return load_instance(DATA / "households.csv", DATA / "criteria.csv")


def _row(inst, household: str) -> int:
    return inst.household_index[household]


def test_allowed_is_within_radius_of_every_hard_criterion(inst):
    """A household's allowed municipalities lie within the radius of each of its hard criteria."""
    policy = Policy()
    hard = hard_criteria(inst, policy)
    d = inst.distance_km
    h = _row(inst, "H001")
    eindhoven = inst.code_index["GM0772"]
    allowed = np.flatnonzero(hard.allowed[h])
    assert len(allowed) > 0
    assert (d[eindhoven, allowed] <= policy.hard.radius_km + 1e-9).all()
    outside = np.flatnonzero(~hard.allowed[h])
    assert (d[eindhoven, outside] > policy.hard.radius_km).all()
    # Households without a hard criterion may go anywhere.
    assert hard.allowed[_row(inst, "H005")].all() and not hard.has_hard[_row(inst, "H005")]


def test_work_counts_as_hard_only_with_hours_contract_and_payslip(inst):
    """Work is hard only at >= the hours threshold with both contract and payslip recorded."""
    c = inst.criteria
    hard = qualifies_as_hard(c, Policy())
    work = c["kind"].to_numpy() == "work"
    assert hard[work].all()  # 24 h, contract yes, payslip ja
    assert not qualifies_as_hard(c, Policy().with_(hard={"work_min_hours": 30.0}))[work].any()


def test_a_smaller_radius_never_allows_more(inst):
    """Shrinking the radius can only remove allowed pairs."""
    wide = hard_criteria(inst, Policy()).allowed
    narrow = hard_criteria(inst, Policy().with_(hard={"radius_km": 20.0})).allowed
    assert not (narrow & ~wide).any()


def test_participation_by_several_regions_keeps_each_region(inst):
    """A household scored in two regions keeps both scores; municipality rows override."""
    h = inst.household_ids[0]
    scores = pd.DataFrame(
        {
            "household_id": pd.array([h, h, h], dtype="string"),
            "municipality": pd.array([pd.NA, pd.NA, "GM0363"], dtype="string"),
            "labour_market_region": pd.array(
                ["Groot Amsterdam", "Rijnmond", pd.NA], dtype="string"
            ),
            "score": [0.7, 0.3, 0.9],
        }
    )
    part = soft_parts(inst.replace(scores=scores), Policy())["participation"][0]
    region = inst.municipalities["labour_market_region"].to_numpy()
    amsterdam = inst.code_index["GM0363"]
    assert part[amsterdam] == pytest.approx(0.9)
    others = (region == "Groot Amsterdam") & (np.arange(len(region)) != amsterdam)
    assert np.allclose(part[others], 0.7)
    assert np.allclose(part[region == "Rijnmond"], 0.3)
    assert part[(region != "Rijnmond") & (region != "Groot Amsterdam")].max() == 0.0


@pytest.mark.parametrize("how", ["sum", "mean", "any"])
def test_labour_aggregation_over_members(inst, how):
    """The labour part of a two-adult household is the sum, mean or best of its members' parts."""
    h = _row(inst, "H002")  # sectors care;other
    single = inst.households.copy()
    single.loc[h, "sector"] = "care"
    care = soft_parts(inst.replace(households=single), Policy())["labour"][h]
    single.loc[h, "sector"] = "other"
    other = soft_parts(inst.replace(households=single), Policy())["labour"][h]
    got = soft_parts(inst, Policy().with_(soft={"aggregation": how}))["labour"][h]
    want = {"sum": care + other, "mean": (care + other) / 2, "any": np.maximum(care, other)}[how]
    assert np.allclose(got, want)
