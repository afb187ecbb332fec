"""Tests of omkoppeling (coupler.ledger.omkoppeling): every rule of DOMAIN.md section 6 fails alone
with a named reason, the AND/OR timing switch, request validation, and the joint re-coupling in
the ledger (quota released at the old municipality, charged at the new one, nothing else moved).

The request file tests/data/ledger/requests.csv holds R00 (eligible: a welding job in Eindhoven),
R01..R09 (each failing exactly one rule) and R10 (housing not offered, inburgering started: fails
the timing gate under "and", passes under "or").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from coupler.errors import InputError, PolicyError
from coupler.generate import generate_cases
from coupler.geo import haversine_km
from coupler.ledger import (
    Ledger,
    LedgerError,
    Pacing,
    approve,
    audit_trail,
    open_period,
    propose,
    quota_state,
)
from coupler.ledger import schema as t
from coupler.ledger.omkoppeling import (
    RULES,
    OmkoppelRules,
    check_request,
    decide,
    load_requests,
    omkoppel,
    recouple,
)
from coupler.scenario import load_scenario

DATA = Path(__file__).parent / "data" / "ledger"
REQUESTS = DATA / "requests.csv"
FAILS_ALONE = {
    "R01": "timing",
    "R02": "job_match",
    "R03": "scarce_in_region",
    "R04": "contract_signed",
    "R05": "salary",
    "R06": "contract_duration",
    "R07": "payslip_seen",
    "R08": "reba_paid",
    "R09": "job_type",
}
EINDHOVEN, GRONINGEN, MAASTRICHT = "GM0772", "GM0014", "GM0935"


@pytest.fixture(scope="module")
def municipalities() -> pd.DataFrame:
    """The nl-2024 municipalities with quotas for a national 3,000."""
    return load_scenario(None, 3000)[0]


@pytest.fixture(scope="module")
def requests(municipalities: pd.DataFrame) -> pd.DataFrame:
    """The eleven requests of requests.csv, validated."""
    return load_requests(REQUESTS, municipalities, OmkoppelRules()).set_index(
        "request_id", drop=False
    )


def test_every_request_gets_a_verdict_per_rule(requests: pd.DataFrame) -> None:
    """Each request of requests.csv gets, for every rule in the documented order, a pass/fail and
    a non-empty reason; the failed rules are exactly those the file was built to fail (none for
    R00, one each for R01..R09, the timing gate for R10)."""
    expected = {**{rid: [rule] for rid, rule in FAILS_ALONE.items()}, "R00": [], "R10": ["timing"]}
    assert set(requests.index) == set(expected)
    for rid, r in requests.iterrows():
        verdict = check_request(r.to_dict(), OmkoppelRules())
        assert list(verdict) == list(RULES)
        assert all(isinstance(ok, bool) and why.strip() for ok, why in verdict.values())
        assert [k for k, (ok, _) in verdict.items() if not ok] == expected[rid], rid


@pytest.mark.parametrize(
    ("job_type", "excluded"),
    [
        ("schoonmaak", True),
        ("Schoonmaakwerk", True),
        ("schoonmaker kantoren", True),
        ("distributie", True),
        ("Distributiecentrum", True),
        ("magazijnmedewerker", True),
        ("orderpicker", True),
        ("order picking", True),
        ("cleaning", True),
        ("Distribution", True),
        ("warehouse operative", True),
        ("welding", False),
        ("lasser", False),
        ("verpleegkundige", False),
    ],
)
def test_excluded_job_types_in_dutch_and_english(
    requests: pd.DataFrame, job_type: str, excluded: bool
) -> None:
    """The policy's excluded job types catch Dutch and English names (and Dutch compounds that
    start with one); other jobs pass the job-type rule."""
    r = requests.loc["R00"].to_dict() | {"job_type": job_type}
    ok, why = check_request(r, OmkoppelRules())["job_type"]
    assert ok is not excluded
    assert ("matches" in why) is excluded


@pytest.mark.parametrize("request_id,rule", sorted(FAILS_ALONE.items()))
def test_each_rule_fails_alone(requests: pd.DataFrame, request_id: str, rule: str) -> None:
    """A request breaking exactly one rule fails that rule only, with a reason naming why."""
    result = check_request(requests.loc[request_id].to_dict(), OmkoppelRules())
    failed = [k for k, (ok, _) in result.items() if not ok]
    assert failed == [rule]
    assert result[rule][1]


def test_eligible_request_passes_every_rule(requests: pd.DataFrame) -> None:
    """R00 meets every rule."""
    assert all(
        ok for ok, _ in check_request(requests.loc["R00"].to_dict(), OmkoppelRules()).values()
    )


def test_timing_gate_switch(requests: pd.DataFrame) -> None:
    """Inburgering started but housing not offered: refused under gate 'and', allowed under 'or';
    with both events passed the 'or' gate refuses too."""
    r = requests.loc["R10"].to_dict()
    assert not check_request(r, OmkoppelRules(gate="and"))["timing"][0]
    assert check_request(r, OmkoppelRules(gate="or"))["timing"][0]
    r["housing_offered"] = True
    assert not check_request(r, OmkoppelRules(gate="or"))["timing"][0]


def test_rules_from_file(tmp_path: Path, requests: pd.DataFrame) -> None:
    """A rules file sets the gate, the excluded job types and the bijstandsnorm per year; a bad
    key or value is a PolicyError naming the file."""
    f = tmp_path / "rules.toml"
    f.write_text(
        '[omkoppeling]\ngate = "or"\nexcluded_job_types = ["Welding"]\n'
        "[omkoppeling.bijstandsnorm]\n2025 = 2500.0\n"
    )
    rules = OmkoppelRules.from_file(f)
    result = check_request(requests.loc["R00"].to_dict(), rules)
    assert not result["job_type"][0] and not result["salary"][0]
    assert "2,500.00" in result["salary"][1]
    f.write_text('[omkoppeling]\ngate = "maybe"\n')
    with pytest.raises(PolicyError, match="rules.toml.*gate"):
        OmkoppelRules.from_file(f)
    f.write_text("[omkoppeling]\nradius = 3\n")
    with pytest.raises(PolicyError, match="unknown key"):
        OmkoppelRules.from_file(f)


def test_request_validation_names_file_row_column(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """Malformed requests are reported together, each with file, row and column: a bad yes/no,
    an empty yes/no, an unknown municipality, a negative salary, a year without a norm, a
    duplicate request id and a household without an approved coupling."""
    bad = pd.read_csv(REQUESTS, dtype=str).iloc[:4].copy()
    bad.loc[0, "reba_paid"] = "perhaps"
    bad.loc[1, "payslip_seen"] = ""
    bad.loc[1, "job_municipality"] = "Atlantis"
    bad.loc[2, "monthly_salary"] = "-5"
    bad.loc[2, "contract_year"] = "2031"
    bad.loc[3, "request_id"] = "R00"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        load_requests(path, municipalities, OmkoppelRules(), coupled={"H000001": 1})
    text = str(err.value)
    for row, column in [
        (2, "reba_paid"),
        (3, "payslip_seen"),
        (3, "job_municipality"),
        (4, "monthly_salary"),
        (4, "contract_year"),
        (5, "request_id"),
        (3, "household_id"),
    ]:
        assert f"bad.csv, row {row}, column '{column}'" in text, (row, column, text)
    assert "perhaps" not in text  # personal cells are not echoed
    missing = tmp_path / "missing.csv"
    bad.drop(columns=["reba_paid"]).to_csv(missing, index=False)
    with pytest.raises(InputError, match="missing required column 'reba_paid'"):
        load_requests(missing, municipalities, OmkoppelRules())


def test_joint_recoupling_swaps_when_quota_is_full() -> None:
    """Two households whose jobs lie near each other's municipality swap places even though both
    municipalities are full: capacity counts the persons moving out."""
    lat, lon = np.array([53.21869, 51.44998]), np.array([6.62081, 5.45839])
    codes = np.array([GRONINGEN, EINDHOVEN])
    job = np.array([1, 0])  # a works in Eindhoven, b in Groningen
    job_km = haversine_km(lat[job][:, None], lon[job][:, None], lat[None, :], lon[None, :])
    eligible = pd.DataFrame(
        {"household_id": ["a", "b"], "persons": [3, 3], "old": [GRONINGEN, EINDHOVEN]}
    )
    none = np.zeros((2, 2), dtype=bool)
    cap = np.zeros(2)
    moves = {m.household_id: m.new for m in recouple(eligible, codes, cap, job_km, none, 50.0)}
    assert moves == {"a": EINDHOVEN, "b": GRONINGEN}
    eligible.loc[1, "persons"] = 4  # b no longer fits in a's 3 released places
    moves = {m.household_id: m.new for m in recouple(eligible, codes, cap, job_km, none, 50.0)}
    assert moves == {"a": None, "b": None}


def test_recoupling_prefers_a_place_that_keeps_other_criteria() -> None:
    """Of two places near the job, the one that breaks none of the household's other hard
    criteria is chosen even when it is farther from the job."""
    codes = np.array(["GM9001", "GM9002", "GM9003"])
    job_km = np.array([[200.0, 5.0, 30.0]])
    breaks = np.array([[False, True, False]])
    eligible = pd.DataFrame({"household_id": ["a"], "persons": [2], "old": ["GM9001"]})
    (move,) = recouple(eligible, codes, np.array([0, 9, 9]), job_km, breaks, 50.0)
    assert move.new == "GM9003"
    (move,) = recouple(eligible, codes, np.array([0, 9, 0]), job_km, breaks, 50.0)
    assert move.new == "GM9002"  # the only room left: proposed, and flagged as breaking


def _ledger_with_couplings(tmp_path: Path, municipalities: pd.DataFrame) -> Ledger:
    ledger = Ledger.open(tmp_path / "l.sqlite", user="rv")
    open_period(ledger, "2025-H1", 3000)
    hh, _ = generate_cases(municipalities, persons=30, seed=0)
    hh = hh.iloc[:12]
    p = propose(ledger, hh, None, pacing=Pacing(enabled=False))
    over = {h: GRONINGEN for h in hh["household_id"].iloc[:10]}
    over[str(hh["household_id"].iloc[10])] = MAASTRICHT
    approve(ledger, p.batch_id, overrides=over, reason="test set-up: far from the jobs")
    return ledger


def _snapshot(ledger: Ledger) -> tuple[dict[str, str], pd.DataFrame]:
    with ledger.read() as conn:
        where = dict(
            conn.execute(sa.select(t.couplings.c.household_id, t.couplings.c.municipality)).all()
        )
        return where, quota_state(conn, 1).set_index("municipality")


def test_omkoppel_in_ledger(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """On the ledger: a dry run writes nothing; then R00 is proposed within 50 km of Eindhoven
    while nothing moves, R01..R10 are rejected naming their failed rule, every decision is
    audited and a request is decided once; approving the proposal moves only H000001, releasing
    its persons in Groningen and charging them at the new municipality."""
    ledger = _ledger_with_couplings(tmp_path, municipalities)
    before, q0 = _snapshot(ledger)
    dry = omkoppel(ledger, REQUESTS, dry_run=True).set_index("request_id")
    assert dry.loc["R00", "decision"] == "proposed" and pd.isna(dry.loc["R00", "proposal"])
    with ledger.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.omkoppelingen)).scalar_one() == 0
        )
    report = omkoppel(ledger, REQUESTS).set_index("request_id")
    assert report.loc["R00", "decision"] == "proposed"
    new = report.loc["R00", "new_municipality"]
    assert new == dry.loc["R00", "new_municipality"]
    m = municipalities.set_index("code")
    km = haversine_km(
        m.at[new, "lat"], m.at[new, "lon"], m.at[EINDHOVEN, "lat"], m.at[EINDHOVEN, "lon"]
    )
    assert km <= 50.0
    for rid, rule in FAILS_ALONE.items():
        assert report.loc[rid, "decision"] == "rejected"
        assert [r for r in RULES if report.loc[rid, r] == "fail"] == [rule]
    assert report.loc["R10", "timing"] == "fail"
    assert _snapshot(ledger)[0] == before  # a proposal moves nothing
    a = audit_trail(ledger)
    assert len(a[a["command"] == "omkoppel"]) == 11
    with pytest.raises(Exception, match="already decided"):
        omkoppel(ledger, REQUESTS)
    decided = decide(ledger, [int(report.loc["R00", "proposal"])], approve=True)
    assert decided["decision"].tolist() == ["recoupled"]
    after, q1 = _snapshot(ledger)
    changed = {h for h in before if before[h] != after[h]}
    assert changed == {"H000001"} and after["H000001"] == new
    persons = int(report.loc["R00", "persons"])
    assert q1.at[GRONINGEN, "coupled"] == q0.at[GRONINGEN, "coupled"] - persons
    assert q1.at[new, "coupled"] == q0.at[new, "coupled"] + persons
    assert int(q1["coupled"].sum()) == int(q0["coupled"].sum())
    with pytest.raises(LedgerError, match="only a proposal"):
        decide(ledger, [int(report.loc["R00", "proposal"])], approve=False, reason="again")


AMSTERDAM = "GM0363"


def test_move_breaking_medical_needs_approval_and_reason(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """A household with medical care in Amsterdam asks to move to a job in Groningen: the move is
    proposed with the medical criterion named as broken and nothing moves; approving without a
    reason is refused and changes nothing; with a reason the move is applied and the coupling
    records the broken criterion and the reason. A rejection needs a reason too."""
    from factories import frame

    from coupler import schema

    hh = frame(
        [{"household_id": "M1", "size": 2}, {"household_id": "M2", "size": 1}],
        schema.HOUSEHOLD_DTYPES,
    )
    cr = frame(
        [
            {"household_id": "M1", "kind": "medical", "municipality": AMSTERDAM},
            {"household_id": "M2", "kind": "medical", "municipality": AMSTERDAM},
        ],
        schema.CRITERIA_DTYPES,
    )
    ledger = Ledger.open(tmp_path / "l.sqlite", user="rv")
    open_period(ledger, "2025-H1", 3000)
    p = propose(ledger, hh, cr, pacing=Pacing(enabled=False))
    approve(ledger, p.batch_id)
    req = pd.read_csv(REQUESTS, dtype=str).iloc[[0, 0]].copy()
    req["request_id"] = ["X1", "X2"]
    req["household_id"] = ["M1", "M2"]
    req["job_municipality"] = "Groningen"
    path = tmp_path / "requests.csv"
    req.to_csv(path, index=False)
    before, _ = _snapshot(ledger)
    report = omkoppel(ledger, path).set_index("request_id")
    assert report.loc["X1", "decision"] == "proposed"
    assert report.loc["X1", "breaks"] == "medical"
    assert "Amsterdam" in report.loc["X1", "criteria"]
    pid = int(report.loc["X1", "proposal"])
    with pytest.raises(LedgerError, match="medical.*--reason"):
        decide(ledger, [pid], approve=True)
    assert _snapshot(ledger)[0] == before
    with pytest.raises(LedgerError, match="--reason"):
        decide(ledger, [int(report.loc["X2", "proposal"])], approve=False)
    decide(ledger, [pid], approve=True, reason="treatment transferred to UMCG")
    after, _ = _snapshot(ledger)
    assert after["M1"] == report.loc["X1", "new_municipality"] and after["M2"] == before["M2"]
    with ledger.read() as conn:
        row = conn.execute(
            sa.select(t.couplings.c.broken, t.couplings.c.reason).where(
                t.couplings.c.household_id == "M1"
            )
        ).one()
    assert row.broken == "medical" and row.reason == "treatment transferred to UMCG"
    decide(ledger, [int(report.loc["X2", "proposal"])], approve=False, reason="care stays")
    assert _snapshot(ledger)[0]["M2"] == before["M2"]


def test_omkoppel_cli_propose_then_decide(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """`coupler omkoppel --requests --dry-run` writes nothing; without it the proposals are
    recorded with ids; `reject` without --reason is refused; `approve ID` applies the move."""
    from click.testing import CliRunner

    from coupler.cli import main

    ledger = _ledger_with_couplings(tmp_path, municipalities)
    ledger.close()
    db = ["--db", str(tmp_path / "l.sqlite")]
    run = CliRunner().invoke
    r = run(main, ["omkoppel", "--requests", str(REQUESTS), "--dry-run", *db])
    assert r.exit_code == 0 and "dry run: nothing was written" in r.output, r.output
    r = run(main, ["omkoppel", "--requests", str(REQUESTS), *db])
    assert r.exit_code == 0 and "[proposal 1]" in r.output, r.output
    r = run(main, ["omkoppel", "reject", "1", *db])
    assert r.exit_code != 0 and "--reason" in r.output
    r = run(main, ["omkoppel", "approve", "1", *db])
    assert r.exit_code == 0 and "recoupled" in r.output, r.output
    after, _ = _snapshot(Ledger.open(tmp_path / "l.sqlite"))
    assert after["H000001"] != GRONINGEN


def test_recoupling_uses_the_batch_radius_and_road_matrix(tmp_path: Path) -> None:
    """A batch proposed with a 30 km radius and a road-distance matrix is approved and then
    re-coupled with those: the job's own municipality has no quota, the road matrix puts every
    other municipality far from the job except one (25 km by road, about 40 km as the crow flies),
    so that one is proposed; under great circle and 50 km a nearer place would be."""
    from factories import frame

    from coupler import schema
    from coupler.policy import Policy

    m = load_scenario(None, 3000)[0].set_index("code")
    km = haversine_km(
        m.at[EINDHOVEN, "lat"], m.at[EINDHOVEN, "lon"], m["lat"].to_numpy(), m["lon"].to_numpy()
    )
    target = str(m.index[(km > 35) & (km < 45)].sort_values()[0])
    nearer = m.index[(km > 0) & (km < 35)]
    assert len(nearer)  # places a great-circle, 50 km re-coupling would prefer
    road = tmp_path / "road.csv"
    others = [c for c in m.index if c not in (EINDHOVEN, target)]
    pd.DataFrame(
        {
            "from": [EINDHOVEN] * (len(others) + 1),
            "to": [target, *others],
            "km": [25.0] + [100.0] * len(others),
        }
    ).to_csv(road, index=False)
    quotas = tmp_path / "quotas.csv"
    pd.DataFrame({"code": m.index, "quota": [0 if c == EINDHOVEN else 20 for c in m.index]}).to_csv(
        quotas, index=False
    )
    ledger = Ledger.open(tmp_path / "l.sqlite", user="rv")
    open_period(ledger, "2025-H1", quotas=quotas)
    hh = frame([{"household_id": "H000001", "size": 1}], schema.HOUSEHOLD_DTYPES)
    policy = Policy().with_(hard={"radius_km": 30.0})
    p = propose(ledger, hh, None, policy=policy, distances=road, pacing=Pacing(enabled=False))
    approve(ledger, p.batch_id, overrides={"H000001": GRONINGEN}, reason="set-up: far from the job")
    req = pd.read_csv(REQUESTS, dtype=str).iloc[[0]]
    path = tmp_path / "r.csv"
    req.to_csv(path, index=False)
    report = omkoppel(ledger, path).set_index("request_id")
    assert report.loc["R00", "decision"] == "proposed"
    assert report.loc["R00", "new_municipality"] == target
    assert report.loc["R00", "distance_km"] == 25.0
