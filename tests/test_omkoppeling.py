"""Tests of omkoppeling (coupler.ledger.omkoppeling): every rule of DOMAIN.md section 6 fails alone
with a named reason, the AND/OR timing switch, request validation, and the joint re-coupling in
the ledger (quota released at the old municipality, charged at the new one, nothing else moved).

The request file tests/data/ledger/requests.csv holds R00 (eligible: a welding job in Eindhoven),
R01..R09 (each failing exactly one rule) and R10 (housing not offered, inburgering started: fails
the timing gate under "and", passes under "or").
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from coupler.errors import InputError, PolicyError
from coupler.generate import generate_cases
from coupler.geo import haversine_km
from coupler.ledger import Ledger, Pacing, approve, audit_trail, open_period, propose, quota_state
from coupler.ledger import schema as t
from coupler.ledger.omkoppeling import (
    RULES,
    OmkoppelRules,
    check_request,
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


def test_rules_are_all_reported() -> None:
    """Each request gets a verdict and a reason for every rule, in the documented order."""
    assert len(RULES) == 9


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
    state = pd.DataFrame(
        {
            "municipality": [GRONINGEN, EINDHOVEN],
            "lat": [53.21869, 51.44998],
            "lon": [6.62081, 5.45839],
            "capacity": [0, 0],
        }
    )
    eligible = pd.DataFrame(
        {
            "household_id": ["a", "b"],
            "persons": [3, 3],
            "old": [GRONINGEN, EINDHOVEN],
            "job": [EINDHOVEN, GRONINGEN],
        }
    )
    moves = {m.household_id: m.new for m in recouple(eligible, state, 50.0)}
    assert moves == {"a": EINDHOVEN, "b": GRONINGEN}
    eligible.loc[1, "persons"] = 4  # b no longer fits in a's 3 released places
    moves = {m.household_id: m.new for m in recouple(eligible, state, 50.0)}
    assert moves == {"a": None, "b": None}


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


def test_omkoppel_in_ledger(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """On the ledger: R00 is re-coupled within 50 km of Eindhoven, its persons released in
    Groningen and charged at the new municipality; R01..R10 are rejected naming their failed
    rule; no other coupling changes; every decision is audited; a request is decided once."""
    ledger = _ledger_with_couplings(tmp_path, municipalities)
    with ledger.read() as conn:
        before = dict(
            conn.execute(sa.select(t.couplings.c.household_id, t.couplings.c.municipality)).all()
        )
        q0 = quota_state(conn, 1).set_index("municipality")
    report = omkoppel(ledger, REQUESTS).set_index("request_id")
    assert report.loc["R00", "decision"] == "recoupled"
    new = report.loc["R00", "new_municipality"]
    m = municipalities.set_index("code")
    km = haversine_km(
        m.at[new, "lat"], m.at[new, "lon"], m.at[EINDHOVEN, "lat"], m.at[EINDHOVEN, "lon"]
    )
    assert km <= 50.0
    for rid, rule in FAILS_ALONE.items():
        assert report.loc[rid, "decision"] == "rejected"
        assert report.loc[rid, rule] == "fail"
        assert [r for r in RULES if report.loc[rid, r] == "fail"] == [rule]
    assert report.loc["R10", "timing"] == "fail"
    with ledger.read() as conn:
        after = dict(
            conn.execute(sa.select(t.couplings.c.household_id, t.couplings.c.municipality)).all()
        )
        q1 = quota_state(conn, 1).set_index("municipality")
    changed = {h for h in before if before[h] != after[h]}
    assert changed == {"H000001"} and after["H000001"] == new
    persons = int(report.loc["R00", "persons"])
    assert q1.at[GRONINGEN, "coupled"] == q0.at[GRONINGEN, "coupled"] - persons
    assert q1.at[new, "coupled"] == q0.at[new, "coupled"] + persons
    assert int(q1["coupled"].sum()) == int(q0["coupled"].sum())
    a = audit_trail(ledger)
    assert len(a[a["command"] == "omkoppel"]) == 11
    with pytest.raises(Exception, match="already decided"):
        omkoppel(ledger, REQUESTS)
    with ledger.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.omkoppelingen)).scalar_one() == 11
        )
