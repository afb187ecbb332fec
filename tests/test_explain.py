"""Explanations: score parts, causes of broken hard criteria, why-not, saved-run round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from coupler import (
    InputError,
    Policy,
    build_model,
    generate_cases,
    load_instance,
    solve,
)
from coupler.explain import (
    explain_broken,
    explain_household,
    render_household,
    score_table,
)
from coupler.rundir import load_run, policy_toml, write_result


@pytest.fixture(scope="module")
def scenario(nl_municipalities) -> pd.DataFrame:
    """The embedded nl-2024 municipalities (read once per session, in conftest.py)."""
    return nl_municipalities


@pytest.fixture(scope="module")
def small(national_model, national_result):
    """The national monthly batch (conftest.py: 4,700 persons, seed 0), solved once."""
    return national_model, national_result


def _work_rows(ids, code: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": pd.array(list(ids), dtype="string"),
            "kind": pd.array(["work"] * len(ids), dtype="string"),
            "municipality": pd.array([code] * len(ids), dtype="string"),
            "hours_per_week": pd.array([20.0] * len(ids), dtype="Float64"),
            "contract_signed": pd.array([True] * len(ids), dtype="boolean"),
            "payslip_seen": pd.array([True] * len(ids), dtype="boolean"),
        }
    )


@pytest.fixture(scope="module")
def shortage(scenario):
    """Shortage around Eindhoven, counted by hand.

    A generated batch of 600 persons keeps its households but none of their criteria; 40
    two-person households get a qualifying job in Eindhoven. Every municipality within 50 km of
    Eindhoven gets remaining quota 0, except 15 of them with 2 places each: 30 places for 80
    persons, so exactly 50 persons (25 households) must break their work criterion.
    """
    households, _ = generate_cases(scenario, persons=600, seed=3)
    two = households.loc[households["size"] == 2, "household_id"].iloc[:40]
    eindhoven = str(scenario.loc[scenario["name"] == "Eindhoven", "code"].iloc[0])
    inst = load_instance(households, _work_rows(two, eindhoven))
    area = inst.distance_km[inst.code_index[eindhoven]] <= 50.0
    remaining = inst.remaining.copy()
    remaining[area] = 0
    remaining[np.flatnonzero(area)[:15]] = 2
    inst = inst.with_remaining(remaining)
    model = build_model(inst, Policy())
    return model, solve(model), area, set(two)


def test_score_parts_add_up_to_household_score(small):
    """For every household, the explained weight x part contributions sum to its plan score."""
    model, result = small
    plan = result.plan.set_index("household_id")
    for hid in plan.index[:: max(1, len(plan) // 20)]:
        expl = explain_household(model, result, hid)
        total = sum(p["contribution"] for p in expl["score_parts"])
        assert total == pytest.approx(expl["score"], abs=1e-9)
        assert total == pytest.approx(plan.loc[hid, "score"], abs=1e-5)
        for p in expl["score_parts"]:
            assert p["contribution"] == pytest.approx(p["weight"] * p["value"])


def test_explained_scores_minus_fill_penalty_equal_objective(small):
    """Sum of the explained household scores minus the fill-balance penalty is the objective."""
    model, result = small
    table = score_table(model, result)
    assert table["score"].sum() - model.fill_weight * result.shortfall == pytest.approx(
        result.objective, abs=1e-6
    )
    # The written plan column (rounded to 6 decimals) agrees within rounding.
    plan_total = float(result.plan["score"].sum())
    assert plan_total - model.fill_weight * result.shortfall == pytest.approx(
        result.objective, abs=1e-6 * len(result.plan)
    )


def test_score_table_matches_household_explanations(small):
    """The batch score table and the one-household explanation give the same parts."""
    model, result = small
    table = score_table(model, result).set_index("household_id")
    for hid in table.index[:: max(1, len(table) // 10)]:
        expl = explain_household(model, result, hid)
        for p in expl["score_parts"]:
            assert table.loc[hid, p["part"]] == pytest.approx(p["contribution"], abs=1e-12)
        assert table.loc[hid, "score"] == pytest.approx(expl["score"], abs=1e-9)


def test_best_alternative_matches_plan(small):
    """The explained best alternative and score difference are the plan's columns."""
    model, result = small
    for _, row in result.plan.head(15).iterrows():
        alt = explain_household(model, result, row["household_id"])["best_alternative"]
        if pd.isna(row["best_alternative"]):
            assert alt is None
        else:
            assert alt["code"] == row["best_alternative"]
            assert alt["score_diff"] == pytest.approx(row["alternative_score_diff"], abs=1e-5)


def test_shortage_row_matches_manual_count(shortage):
    """The Hall violator is the 50 km area around Eindhoven: 30 places, 80 persons, 50 short."""
    model, result, area, workers = shortage
    assert result.broken_persons == 50
    broken = explain_broken(model, result)
    assert set(broken["household_id"]) <= workers
    assert int(broken["persons"].sum()) == 50
    assert (broken["cause_kind"] == "shortage").all()
    row = broken.iloc[0]
    assert row["area_municipalities"] == int(area.sum())
    assert set(row["area_codes"].split(";")) == set(model.instance.codes[area])
    assert row["places_left"] == 30
    assert row["persons_needing"] == 80
    assert row["shortage"] == 50
    assert "around Eindhoven" in row["cause"]
    assert (
        f"({int(area.sum())} municipalities) has 30 quota places left and 80 persons"
        in row["cause"]
    )


def test_broken_household_explanation_names_cause(shortage):
    """A broken household's explanation marks the criterion broken and gives the shortage cause."""
    model, result, _, _ = shortage
    hid = explain_broken(model, result)["household_id"].iloc[0]
    expl = explain_household(model, result, hid)
    work = [c for c in expl["criteria"] if c["kind"] == "work"]
    assert work and work[0]["state"] == "broken" and work[0]["distance_km"] > 50
    assert "30 quota places left" in work[0]["cause"]
    assert "broken" in render_household(expl)


def test_no_broken_gives_empty_table(scenario):
    """Without shortage and conflicts, explain_broken returns no rows but all columns."""
    households, _ = generate_cases(scenario, persons=200, seed=5)
    model = build_model(load_instance(households), Policy())
    result = solve(model)
    broken = explain_broken(model, result)
    assert broken.empty and "cause" in broken.columns


def test_why_not_banned_pair_says_banned(small):
    """why_not on a banned pair reports the ban (and the chosen municipality is never banned)."""
    model, first = small
    inst = model.instance
    hid = str(inst.household_ids[3])
    target = str(first.plan.set_index("household_id").loc[hid, "municipality"])
    locks = pd.DataFrame(
        {
            "household_id": pd.array([hid], dtype="string"),
            "municipality": pd.array([target], dtype="string"),
            "action": pd.array(["ban"], dtype="string"),
        }
    )
    banned_model = build_model(inst.replace(locks=locks), model.policy)
    result = solve(banned_model)
    assert result.plan.set_index("household_id").loc[hid, "municipality"] != target
    wn = explain_household(banned_model, result, hid, why_not=target)["why_not"]
    assert wn["banned"] is True
    assert any("banned" in r for r in wn["reasons"])
    assert "banned: yes" in render_household(
        explain_household(banned_model, result, hid, why_not=target)
    )


def test_why_not_hard_break_reports_distance(small):
    """why_not at a far municipality says which hard criterion breaks and by how many km."""
    model, result = small
    inst = model.instance
    h = int(np.flatnonzero(model.has_hard)[0])
    far = int(np.argmax(np.where(model.allowed[h], -1.0, 1.0) * 1))
    assert not model.allowed[h, far]
    wn = explain_household(model, result, inst.household_ids[h], why_not=inst.codes[far])["why_not"]
    assert wn["breaks_hard"]
    broken = [c for c in wn["criteria"] if c["hard"] and not c["met"] and not c["yielded"]]
    assert broken and all(c["excess_km"] > 0 for c in broken)
    assert any("would break" in r for r in wn["reasons"])


def test_why_not_accepts_name_and_reports_capacity(small):
    """why_not takes an exact name; room = capacity - assigned persons there."""
    model, result = small
    hid = result.plan["household_id"].iloc[0]
    wn = explain_household(model, result, hid, why_not="amsterdam")["why_not"]
    muni = result.municipalities.set_index("code").loc[wn["code"]]
    assert wn["name"] == "Amsterdam"
    assert wn["capacity"] == muni["capacity"]
    assert wn["assigned_persons"] == muni["assigned_persons"]
    assert wn["room"] == muni["capacity"] - muni["assigned_persons"] + (
        wn["chosen"] * explain_household(model, result, hid)["persons"]
    )


@pytest.mark.parametrize(
    ("household", "why_not", "expected"),
    [
        ("H4", None, "did you mean H000004"),
        ("nobody", None, "unknown household 'nobody'"),
        ("H000004", "Amsterdm", "did you mean Amsterdam (GM0363)"),
        ("H000004", "GM9999", "unknown municipality 'GM9999'"),
    ],
)
def test_unknown_household_or_municipality(small, household, why_not, expected):
    """Unknown ids and municipalities are InputErrors that suggest close matches."""
    model, result = small
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        explain_household(model, result, household, why_not=why_not)


def test_conflict_household_is_broken_with_conflict_cause(small):
    """A conflict whose yielded criterion is unmet appears in broken with cause 'conflict'."""
    model, result = small
    broken = explain_broken(model, result)
    conflicts = set(result.conflicts["household_id"])
    assert conflicts, "the national batch has conflicts to explain"
    rows = broken[broken["household_id"].isin(conflicts)]
    assert len(rows) > 0
    assert (rows["cause_kind"] == "conflict").all()
    assert set(broken.loc[broken["cause_kind"] == "conflict", "household_id"]) <= conflicts


def test_saved_run_round_trip(small, tmp_path):
    """load_run rebuilds the same model and plan from the written folder alone."""
    model, result = small
    write_result(result, model, tmp_path / "run")
    model2, result2, summary = load_run(tmp_path / "run")
    assert model2.instance.checksum() == model.instance.checksum() == summary["checksums"]
    assert model2.policy == model.policy
    assert result2.objective == pytest.approx(result.objective, abs=1e-9)
    pd.testing.assert_frame_equal(result2.plan, result.plan)
    hid = result.plan["household_id"].iloc[5]
    assert explain_household(model2, result2, hid) == explain_household(model, result, hid)


def test_policy_toml_round_trip(tmp_path):
    """The written policy.toml reads back to an equal policy, including bands and inf."""
    policy = Policy().with_(
        hard={"radius_km": 30.0},
        quota={"bands": [{"level": "province", "name": "Utrecht", "min_fill": 0.9}]},
        solver={"time_limit": math.inf},
    )
    path = tmp_path / "policy.toml"
    path.write_text(policy_toml(policy), encoding="utf-8")
    assert Policy.from_file(path) == policy


def test_load_run_on_a_non_output_folder(tmp_path):
    """A folder without summary.json is a clear InputError, not a crash."""
    with pytest.raises(InputError, match="not a coupler output folder"):
        load_run(tmp_path)


def test_two_independent_shortages_are_two_areas(scenario):
    """Shortages around Eindhoven (30 places, 80 persons) and Groningen (8 places, 20 persons)
    are reported as two areas whose broken persons equal their shortages (50 and 12)."""
    households, _ = generate_cases(scenario, persons=600, seed=3)
    two = households.loc[households["size"] == 2, "household_id"].iloc[:40]
    one = households.loc[households["size"] == 1, "household_id"].iloc[:20]
    code = scenario.set_index("name")["code"]
    criteria = pd.concat(
        [_work_rows(two, code["Eindhoven"]), _work_rows(one, code["Groningen"])], ignore_index=True
    )
    inst = load_instance(households, criteria)
    remaining = inst.remaining.copy()
    for name, places in (("Eindhoven", 15), ("Groningen", 4)):
        area = inst.distance_km[inst.code_index[code[name]]] <= 50.0
        remaining[area] = 0
        remaining[np.flatnonzero(area)[:places]] = 2
    model = build_model(inst.with_remaining(remaining), Policy())
    result = solve(model)
    broken = explain_broken(model, result)
    assert result.broken_persons == 62
    by_area = broken.groupby("area").agg(
        persons=("persons", "sum"),
        places=("places_left", "first"),
        need=("persons_needing", "first"),
        short=("shortage", "first"),
    )
    assert by_area.loc["the 50 km area around Eindhoven"].tolist() == [50, 30, 80, 50]
    assert by_area.loc["the 50 km area around Groningen"].tolist() == [12, 8, 20, 12]
