"""Hard and soft criteria: allowed pairs, conflicts, and the soft parts' aggregation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coupler import Policy, blocks, load_instance
from coupler.criteria import (
    SOFT_PARTS,
    hard_criteria,
    qualifies_as_hard,
    soft_parts,
    soft_parts_at,
)

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


# --------------------------------------------------------------------------------------------
# Conflicts at criterion level
# --------------------------------------------------------------------------------------------
def _conflict_instance(crits: list[dict[str, object]]):
    """One household of two persons on the national scenario with the given criteria rows."""
    from factories import frame

    from coupler import schema

    hh = frame([{"household_id": "H001", "size": 2}], schema.HOUSEHOLD_DTYPES)
    cr = frame([{"household_id": "H001", **c} for c in crits], schema.CRITERIA_DTYPES)
    return load_instance(hh, cr)


def _job(code: str, hours: float = 24.0) -> dict[str, object]:
    return {
        "kind": "work",
        "municipality": code,
        "hours_per_week": hours,
        "contract_signed": True,
        "payslip_seen": True,
    }


MAASTRICHT, HEERLEN, GRONINGEN, AMSTERDAM = "GM0935", "GM0917", "GM0014", "GM0363"


def _yielded(inst, policy=None) -> list[tuple[str, str]]:
    hard = hard_criteria(inst, policy or Policy())
    t = hard.table
    rows = t[t["yielded"]]
    return [
        (k, str(inst.codes[m])) for k, m in zip(rows["kind"], rows["municipality"], strict=True)
    ]


def test_medical_work_family_keeps_medical_and_work():
    """Medical in Maastricht, work in Heerlen (19 km) and family in Groningen: the two southern
    criteria share municipalities, so only family yields and every allowed municipality lies
    within 50 km of both Maastricht and Heerlen."""
    inst = _conflict_instance(
        [
            {"kind": "medical", "municipality": MAASTRICHT},
            _job(HEERLEN),
            {"kind": "family", "municipality": GRONINGEN},
        ]
    )
    hard = hard_criteria(inst, Policy())
    assert _yielded(inst) == [("family", GRONINGEN)]
    allowed = np.flatnonzero(hard.allowed[0])
    d = inst.distance_km
    assert len(allowed)
    for code in (MAASTRICHT, HEERLEN):
        assert (d[inst.code_index[code], allowed] <= 50 + 1e-9).all()
    c = hard.conflicts
    assert c["kind"].tolist() == ["family"]
    assert "Groningen" in c["reason"].iloc[0] and "medical Maastricht" in c["kept"].iloc[0]


@pytest.mark.parametrize(
    ("hours", "kept"),
    [((24.0, 32.0), MAASTRICHT), ((32.0, 24.0), GRONINGEN), ((24.0, 24.0), GRONINGEN)],
)
def test_two_jobs_keep_one_and_yield_one(hours, kept):
    """Two qualifying jobs 200 km apart: one job is kept (more hours; on equal hours the first in
    the file) and only the other yields."""
    inst = _conflict_instance([_job(GRONINGEN, hours[0]), _job(MAASTRICHT, hours[1])])
    other = MAASTRICHT if kept == GRONINGEN else GRONINGEN
    assert _yielded(inst) == [("work", other)]
    hard = hard_criteria(inst, Policy())
    assert hard.has_hard[0]
    assert hard.allowed[0, inst.code_index[kept]] and not hard.allowed[0, inst.code_index[other]]


def test_one_outlier_yields_even_when_it_has_priority():
    """Three criteria where two share municipalities and one lies far away: the largest
    compatible set is kept, so the outlier yields although medical ranks first."""
    inst = _conflict_instance(
        [
            _job(AMSTERDAM),
            {"kind": "family", "municipality": "GM0362"},  # Amstelveen, next to Amsterdam
            {"kind": "medical", "municipality": MAASTRICHT},
        ]
    )
    assert _yielded(inst) == [("medical", MAASTRICHT)]


def test_equal_sized_sets_follow_the_priority_order():
    """Family in Groningen against study in Maastricht: one each, so the policy's priority
    decides; reversing the priority reverses which criterion yields."""
    inst = _conflict_instance(
        [
            {"kind": "study", "municipality": MAASTRICHT},
            {"kind": "family", "municipality": GRONINGEN},
        ]
    )
    assert _yielded(inst) == [("study", MAASTRICHT)]
    flipped = Policy().with_(hard={"priority": ["study", "medical", "work", "family"]})
    assert _yielded(inst, flipped) == [("family", GRONINGEN)]


def test_yielded_criteria_are_named_in_every_output():
    """A solved conflict names each yielded criterion with its reason in the conflicts table,
    plan_criteria, the plan's yielded column and the summary; it is not a broken criterion."""
    from coupler import build_model, solve

    inst = _conflict_instance(
        [
            {"kind": "medical", "municipality": MAASTRICHT},
            _job(HEERLEN),
            {"kind": "family", "municipality": GRONINGEN},
        ]
    )
    result = solve(build_model(inst, Policy()), progress=None)
    assert result.conflicts[["kind", "criterion_municipality"]].values.tolist() == [
        ["family", GRONINGEN]
    ]
    assert result.conflicts["reason"].str.len().iloc[0] > 20
    crit = result.criteria.set_index("kind")
    assert bool(crit.at["family", "yielded"]) and crit.at["family", "yield_reason"]
    assert bool(crit.at["medical", "met"]) and bool(crit.at["work", "met"])
    plan = result.plan.iloc[0]
    assert plan["yielded"] == "family" and plan["broken"] == ""
    assert result.broken_persons == 0
    assert "1 criteria yielded" in result.summary()


def test_parts_at_pairs_and_of_blocks_equal_the_whole_parts(
    national_instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``soft_parts_at`` (households in any order and repeated, worked through blocks of 100
    households) returns exactly the entries of the whole parts, and ``soft_parts`` of some rows
    exactly those rows of the whole parts; also with participation scores by region (several
    per household) and by municipality."""
    rng = np.random.default_rng(3)
    ids = list(national_instance.household_ids[:60])
    regions = sorted(set(national_instance.municipalities["labour_market_region"]))
    scores = pd.DataFrame(
        {
            "household_id": pd.array(ids * 3, dtype="string"),
            "municipality": pd.array(
                [pd.NA] * 120 + list(national_instance.codes[:60]), dtype="string"
            ),
            "labour_market_region": pd.array(
                [regions[i % len(regions)] for i in range(120)] + [pd.NA] * 60, dtype="string"
            ),
            "score": rng.random(180).round(3),
        }
    )
    inst = national_instance.replace(scores=scores)
    policy = Policy()
    whole = soft_parts(inst, policy)
    assert whole["participation"].any()
    h = rng.integers(0, inst.n_households, 5000)
    m = rng.integers(0, inst.n_municipalities, 5000)
    monkeypatch.setattr(blocks, "BLOCK_PAIRS", 100 * inst.n_municipalities)
    at = soft_parts_at(inst, policy, h, m)
    rows = np.arange(30, 250)
    some = soft_parts(inst, policy, rows=rows)
    for name in SOFT_PARTS:
        np.testing.assert_array_equal(at[name], whole[name][h, m])
        np.testing.assert_array_equal(some[name], whole[name][rows])
