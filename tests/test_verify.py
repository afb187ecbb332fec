"""The independent plan checker (coupler.verify) and `coupler verify`."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from factories import LINE, Crit, code, frame, hid, instance
from geopy.distance import great_circle
from hypothesis import given, settings
from hypothesis import strategies as st

import coupler.verify
from coupler import (
    Policy,
    SolveParams,
)
from coupler.cli import main
from coupler.criteria import hard_criteria
from coupler.verify import great_circle_km, verify_plan

SOLVE = SolveParams(time_limit=30.0)


def check(inst, plan, policy=None):
    return verify_plan(
        inst.municipalities,
        inst.households,
        inst.criteria,
        plan,
        policy or Policy(),
        locks=inst.locks,
        distances=inst.distances,
    )


def plan_of(*places: int | None) -> dict[str, str | None]:
    return {hid(i): (None if m is None else code(m)) for i, m in enumerate(places)}


def test_verify_imports_nothing_of_the_solver():
    """The checker is independent: it imports no model, criteria, engine, geo or instance."""
    tree = ast.parse(Path(coupler.verify.__file__).read_text(encoding="utf-8"))
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    forbidden = {"coupler.model", "coupler.criteria", "coupler.geo", "coupler.instance"}
    assert not imported & forbidden
    assert not any(str(m).startswith("coupler.engine") for m in imported)


def test_great_circle_matches_geopy():
    """The checker's own great-circle formula agrees with geopy's great_circle to 1e-6 km."""
    pts = [(50.8, 3.4), (53.5, 7.2), (52.0, 4.5), (51.44, 5.48), (52.37, 4.9)]
    d = great_circle_km(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    for (i, a), (j, b) in itertools.product(enumerate(pts), repeat=2):
        assert d[i, j] == pytest.approx(great_circle(a, b, radius=6371.0088).km, abs=1e-6)


def test_accepts_the_hand_checked_plan():
    """A plan that fills within capacity and meets every criterion passes, with correct counts."""
    inst = instance(LINE[:3], [3, 3, 3], [2, 1, 3], [Crit.job(0, 0), Crit(2, "family", 2)])
    rep = check(inst, plan_of(1, 0, 2))
    assert rep.ok, rep.violations
    assert rep.persons_per_municipality.tolist() == [1, 2, 3]
    assert rep.broken_persons == 0 and rep.uncoupled_persons == 0 and rep.broken.empty


@pytest.mark.parametrize(
    ("places", "locks", "message"),
    [
        ((0, 0, 0), (), "exceed the capacity"),
        ((0, 1, 2), [(0, 0, "ban")], "banned municipality GM9001"),
        ((0, 1, 2), [(1, 2, "pin")], "pinned to GM9003"),
        ((0, None, 2), [(1, 2, "pin")], "left uncoupled although GM9003 has room"),
        ((0, 1), (), "missing from the plan"),
        ((0, 1, None), (), "left uncoupled although"),
    ],
)
def test_rejects_each_broken_rule(places, locks, message):
    """Each rule the plan breaks (quota, ban, pin, missing, needless uncoupled) is named."""
    inst = instance(LINE[:3], [3, 3, 3], [2, 1, 2], lock_items=locks)
    rep = check(inst, plan_of(*places))
    assert not rep.ok
    assert any(message in v for v in rep.violations), rep.violations


def test_rejects_duplicates_and_unknown_codes():
    """A household listed twice, an unknown household and an unknown code are violations."""
    inst = instance(LINE[:2], [5, 5], [1, 1])
    plan = pd.DataFrame(
        {
            "household_id": ["H001", "H001", "H002", "H999"],
            "municipality": ["GM9001", "GM9002", "GM0001", "GM9001"],
        }
    )
    v = " | ".join(check(inst, plan).violations)
    assert "more than once" in v and "unknown household" in v and "unknown municipality code" in v


def test_pinned_household_may_stay_uncoupled_only_when_its_pin_is_full():
    """A household pinned to a full municipality is rightly uncoupled (nothing else is allowed)."""
    inst = instance(LINE[:2], [2, 5], [2, 1], lock_items=[(1, 0, "pin")])
    rep = check(inst, plan_of(0, None))
    assert rep.ok, rep.violations
    assert rep.uncoupled_persons == 1


def test_avoidable_broken_is_a_violation_with_witness():
    """A job-holder placed 68 km from the job while a place 34 km away has room is avoidable."""
    inst = instance(LINE[:3], [3, 3, 3], [1], [Crit.job(0, 0)])
    rep = check(inst, plan_of(2))
    assert not rep.ok
    row = rep.broken.iloc[0]
    assert bool(row["avoidable"]) and row["witness"] in {code(0), code(1)}
    assert row["km"] == pytest.approx(68.6, abs=0.5)
    assert rep.broken_persons == 1


def test_unavoidable_broken_is_listed_not_rejected():
    """When every place near the job is full the break is reported but the plan passes."""
    inst = instance(LINE[:3], [2, 0, 3], [2, 1], [Crit.job(1, 0)])
    rep = check(inst, plan_of(0, 2))
    assert rep.ok, rep.violations
    assert rep.broken_persons == 1 and not rep.broken["avoidable"].any()


def test_work_without_evidence_is_not_hard_and_conflicts_yield_by_priority():
    """Work under the hours threshold is not hard; on a conflict the lowest-priority kind yields."""
    inst = instance(
        LINE[:5],
        [9] * 5,
        [1, 1],
        [
            Crit(0, "work", 0, hours=4.0, contract=True, payslip=True),
            Crit.job(1, 0),
            Crit(1, "family", 4),
        ],
    )
    rep = check(inst, plan_of(4, 4))  # household 1: family (priority) over work
    assert rep.ok, rep.violations
    assert rep.yielded["kind"].tolist() == ["work"]
    assert rep.broken.empty


def test_distance_table_overrides_great_circle():
    """A user's distance (one direction given) applies both ways and decides what is in radius."""
    inst = instance(LINE[:3], [3, 3, 3], [1], [Crit.job(0, 0)])
    far = frame(
        [{"from": code(0), "to": code(1), "km": 80.0}],
        [("from", "string"), ("to", "string"), ("km", "float64")],
    )
    inst2 = inst.replace(distances=far)
    assert check(inst, plan_of(1)).ok
    rep = check(inst2, plan_of(1))
    assert not rep.ok and rep.broken.iloc[0]["km"] == 80.0


def test_agrees_with_solver_on_a_national_batch(national_instance, national_result):
    """On the national monthly batch (4,700 persons) the checker passes the engine's plan and
    agrees with the result on persons per municipality and broken persons."""
    res = national_result
    rep = check(national_instance, res.plan)
    assert rep.ok, rep.violations
    assert rep.broken_persons == res.broken_persons
    got = res.municipalities.set_index("code")["assigned_persons"]
    assert (rep.persons_per_municipality == got.reindex(rep.persons_per_municipality.index)).all()


def test_cli_explicit_files(tmp_path):
    """`coupler verify` with explicit files exits 0 on a good plan and 1 listing the violation."""
    inst = instance(LINE[:3], [3, 3, 3], [2, 1], [Crit.job(0, 0)])
    scen = tmp_path / "scenario"
    scen.mkdir()
    inst.municipalities.drop(columns=["remaining"]).to_csv(scen / "municipalities.csv", index=False)
    inst.households.to_csv(tmp_path / "households.csv", index=False)
    inst.criteria.to_csv(tmp_path / "criteria.csv", index=False)
    for name, places in (("good.csv", (0, 1)), ("bad.csv", (2, 1))):
        pd.DataFrame(
            {"household_id": ["H001", "H002"], "municipality": [code(p) for p in places]}
        ).to_csv(tmp_path / name, index=False)
    args = [
        "verify",
        "--scenario",
        str(scen),
        "--households",
        str(tmp_path / "households.csv"),
        "--criteria",
        str(tmp_path / "criteria.csv"),
    ]
    ok = CliRunner().invoke(main, [*args, "--plan", str(tmp_path / "good.csv")])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(main, [*args, "--plan", str(tmp_path / "bad.csv")])
    assert bad.exit_code == 1 and "work criterion at GM9001 broken" in bad.output


def test_cli_out_folder_layout(tmp_path):
    """`coupler verify --out DIR` reads the layout `coupler solve` writes: DIR/plan.csv,
    DIR/policy.toml and the canonical inputs as DIR/inputs/*.parquet (remaining included)."""
    inst = instance(LINE[:3], [3, 3, 3], [2, 1], [Crit.job(0, 0)], lock_items=[(1, 2, "ban")])
    (tmp_path / "inputs").mkdir()
    for name in ("municipalities", "households", "criteria", "locks"):
        getattr(inst, name).to_parquet(tmp_path / f"inputs/{name}.parquet", index=False)
    (tmp_path / "policy.toml").write_text("[hard]\nradius_km = 20\n", encoding="utf-8")
    pd.DataFrame({"household_id": ["H001", "H002"], "municipality": [code(1), code(1)]}).to_csv(
        tmp_path / "plan.csv", index=False
    )
    # 34 km from the job: fine at 50 km, an avoidable break under the folder's own 20 km policy.
    out = CliRunner().invoke(main, ["verify", "--out", str(tmp_path)])
    assert out.exit_code == 1, out.output
    assert "34.2 km from GM9002" in out.output and "GM9001 within the radius has room" in out.output
    pd.DataFrame({"household_id": ["H001", "H002"], "municipality": [code(0), code(2)]}).to_csv(
        tmp_path / "plan.csv", index=False
    )
    out = CliRunner().invoke(main, ["verify", "--out", str(tmp_path)])
    assert out.exit_code == 1 and "banned municipality GM9003" in out.output, out.output
    pd.DataFrame({"household_id": ["H001", "H002"], "municipality": [code(0), code(1)]}).to_csv(
        tmp_path / "plan.csv", index=False
    )
    out = CliRunner().invoke(main, ["verify", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output


def test_cli_missing_plan_file_is_a_clear_error(tmp_path):
    """A missing plan file is a user error: exit 2, no traceback."""
    inst = instance(LINE[:2], [3, 3], [1])
    inst.households.to_csv(tmp_path / "h.csv", index=False)
    out = CliRunner().invoke(
        main,
        ["verify", "--plan", str(tmp_path / "nope.csv"), "--households", str(tmp_path / "h.csv")],
    )
    assert out.exit_code == 2 and "Traceback" not in out.output


# --------------------------------------------------------------------------------------------
# Conflicts: verify's brute force over subsets against criteria.py's rule
# --------------------------------------------------------------------------------------------

_KINDS = ("work", "family", "study", "medical")


@st.composite
def _conflicting(draw):
    """Up to three households on LINE, each with 1-5 criteria at random places and hours."""
    n_h = draw(st.integers(1, 3))
    crits = []
    for h in range(n_h):
        for _ in range(draw(st.integers(1, 5))):
            kind = draw(st.sampled_from(_KINDS))
            m = draw(st.integers(0, 5))
            if kind == "work":
                crits.append(Crit.job(h, m, hours=float(draw(st.sampled_from([8, 16, 24, 32])))))
            else:
                crits.append(Crit(h, kind, m))
    priority = draw(st.permutations(_KINDS))
    return instance(LINE, [9] * 6, [1] * n_h, crits), Policy().with_(
        hard={"priority": list(priority)}
    )


@settings(derandomize=True, max_examples=150, deadline=None)
@given(_conflicting())
def test_yielded_criteria_agree_with_brute_force(case):
    """For random households with conflicting criteria (two jobs, three criteria with an outlier,
    any priority order), the criteria verify keeps by trying every subset are exactly the ones
    the solver's criteria keep, row for row."""
    inst, policy = case
    hard = hard_criteria(inst, policy)
    plan = {hid(i): None for i in range(inst.n_households)}
    rep = verify_plan(inst.municipalities, inst.households, inst.criteria, plan, policy)
    t = hard.table[hard.table["yielded"]]
    mine = sorted(
        (str(inst.household_ids[h]), k, str(inst.codes[m]))
        for h, k, m in zip(t["household"], t["kind"], t["municipality"], strict=True)
    )
    theirs = sorted(
        map(tuple, rep.yielded[["household_id", "kind", "criterion_municipality"]].values)
    )
    assert mine == theirs


@pytest.mark.parametrize(
    ("crits", "yielded"),
    [
        # two jobs at places 0 and 5 (171 km): the one with more hours stays
        ([Crit.job(0, 0, 16.0), Crit.job(0, 5, 32.0)], [("work", 0)]),
        # medical 0, work 1 (34 km), family 5: medical and work share place 0 or 1
        ([Crit(0, "medical", 0), Crit.job(0, 1), Crit(0, "family", 5)], [("family", 5)]),
        # three criteria, one outlier (medical) although medical ranks first
        ([Crit.job(0, 4), Crit(0, "family", 5), Crit(0, "medical", 0)], [("medical", 0)]),
    ],
)
def test_plan_breaking_a_kept_criterion_is_caught(crits, yielded):
    """verify names the yielded criterion of each hidden-style conflict, and a plan that honours
    the yielded criterion instead of a kept one is rejected as an avoidable break."""
    inst = instance(LINE, [9] * 6, [1], crits)
    got = check(inst, {hid(0): None})
    assert [(k, c) for _, k, c in got.yielded.values] == [(k, code(m)) for k, m in yielded]
    bad = check(inst, {hid(0): code(yielded[0][1])})
    assert not bad.ok
