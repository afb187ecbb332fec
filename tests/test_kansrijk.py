"""Tests of Kansrijke Koppeling (coupler.ledger.kansrijk): grant probabilities from the input or the
nationality table, provisional couplings reserving probability x persons, proposals planning
around the reservations, and confirmation, re-planning or release when the permit comes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from coupler.errors import InputError, PolicyError
from coupler.generate import generate_cases
from coupler.ledger import Ledger, Pacing, approve, audit_trail, open_period, propose, quota_state
from coupler.ledger import schema as t
from coupler.ledger.batches import paced_remaining
from coupler.ledger.kansrijk import KansrijkRules, grant_probabilities, permit, propose_provisional
from coupler.scenario import load_scenario


@pytest.fixture(scope="module")
def municipalities() -> pd.DataFrame:
    """The nl-2024 municipalities with quotas for a national 3,000."""
    return load_scenario(None, 3000)[0]


def _cases(tmp_path: Path, municipalities: pd.DataFrame) -> Path:
    """Six cases in procedure: Syria, Yemen, Turkey by nationality, one explicit 0.9, one
    explicit 0.3 (below the 0.5 threshold) and one explicit 0.95."""
    hh, _ = generate_cases(municipalities, persons=20, seed=2)
    hh = hh.iloc[:6].copy()
    hh["household_id"] = "K-" + hh["household_id"].astype(str)
    hh["nationality"] = ["Syria", "yemen", "Turkey", "", "", "Eritrea"]
    hh["grant_probability"] = ["", "", "", "0.9", "0.3", "0.95"]
    path = tmp_path / "cases.csv"
    hh.to_csv(path, index=False)
    return path


def test_probabilities_from_column_or_table(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """The column wins; else the nationality table (DOMAIN.md: Syria 0.82, Yemen 0.87, Turkey
    0.68); a listed kansrijk nationality without a probability is an error naming row and column
    but not the nationality."""
    path = _cases(tmp_path, municipalities)
    p = grant_probabilities(path, KansrijkRules())
    assert list(p.round(2)) == [0.82, 0.87, 0.68, 0.9, 0.3, 0.95]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[5, "grant_probability"] = ""
    frame.loc[3, "grant_probability"] = "1.5"
    frame.to_csv(path, index=False)
    eritrea = KansrijkRules(nationalities=("syria", "yemen", "eritrea"))
    with pytest.raises(InputError) as err:
        grant_probabilities(path, eritrea)
    text = str(err.value)
    assert "row 7, column 'nationality'" in text and "Eritrea" not in text
    assert "row 5, column 'grant_probability'" in text


def test_rules_file(tmp_path: Path) -> None:
    """A [kansrijk] table sets the threshold and the table; a probability outside [0, 1] is an
    error naming the file."""
    f = tmp_path / "k.toml"
    f.write_text(
        "[kansrijk]\nmin_probability = 0.7\n[kansrijk.grant_probability]\nEritrea = 0.75\n"
    )
    r = KansrijkRules.from_file(f)
    assert r.min_probability == 0.7 and r.grant_probability == {"eritrea": 0.75}
    f.write_text("[kansrijk.grant_probability]\nsyria = 82\n")
    with pytest.raises(PolicyError, match="k.toml"):
        KansrijkRules.from_file(f)


def test_provisional_reservations_and_permits(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """Provisional couplings reserve probability x persons; remaining quota and a batch's paced
    capacity drop by it; a granted permit with room confirms and charges the full household;
    a refusal releases the reservation; a granted permit whose municipality filled up meanwhile is
    re-planned as a proposed batch; nationality is never stored."""
    ledger = Ledger.open(tmp_path / "l.sqlite", user="rv")
    open_period(ledger, "2025-H1", 3000)
    report = propose_provisional(ledger, _cases(tmp_path, municipalities), None).set_index(
        "household_id"
    )
    # Turkey (0.68) and Eritrea (0.95) are not on the policy's kansrijk list: a grant rate alone
    # does not make a nationality kansrijk.
    assert list(report["status"]) == [
        "active",
        "active",
        "not-kansrijk",
        "active",
        "below-threshold",
        "not-kansrijk",
    ]
    active = report[report["status"] == "active"]
    assert (active["reserved"] - active["probability"] * active["persons"]).abs().max() < 1e-9
    with ledger.read() as conn:
        q = quota_state(conn, 1)
        cols = {c["name"] for c in sa.inspect(conn).get_columns("provisional")}
    assert "nationality" not in cols
    assert q["reserved"].sum() == pytest.approx(active["reserved"].sum())
    by_m = active.groupby("municipality")["reserved"].sum()
    for code, r in by_m.items():
        row = q[q["municipality"] == code].iloc[0]
        assert row["remaining"] == int(row["target"] - row["coupled"] - r + 1e-9)
    # A batch plans around the reservations: paced capacity never counts reserved places.
    cap = pd.Series(paced_remaining(q, 10.0), index=q["municipality"])
    assert (
        cap
        <= (
            q.set_index("municipality")["available"] - q.set_index("municipality")["reserved"]
        ).clip(lower=0)
    ).all()

    ids = list(active.index)
    confirm, refuse, full = ids[0], ids[1], ids[2]
    # Fill the municipality of `full` completely with an ordinary batch (an override).
    target_m = active.at[full, "municipality"]
    hh, _ = generate_cases(municipalities, persons=200, seed=8)
    hh["household_id"] = "F-" + hh["household_id"].astype(str)
    st = q.set_index("municipality")
    room = int(st.at[target_m, "available"])
    take = hh[hh["size"].cumsum() <= room]
    if active.at[confirm, "municipality"] == target_m:
        pytest.skip("seed put both cases in one municipality")
    p = propose(ledger, take, None, pacing=Pacing(enabled=False))
    approve(
        ledger, p.batch_id, overrides={h: target_m for h in take["household_id"]}, reason="fill up"
    )
    decisions = tmp_path / "d.csv"
    pd.DataFrame(
        {"household_id": [confirm, refuse, full], "decision": ["granted", "refused", "granted"]}
    ).to_csv(decisions, index=False)
    out = permit(ledger, decisions).set_index("household_id")
    assert out.at[confirm, "outcome"] == "confirmed"
    assert out.at[refuse, "outcome"] == "refused"
    assert out.at[full, "outcome"] == "replan"
    with ledger.read() as conn:
        prov = {r.household_id: r.status for r in conn.execute(sa.select(t.provisional))}
        q2 = quota_state(conn, 1).set_index("municipality")
        replan = conn.execute(sa.select(t.batches).where(t.batches.c.kind == "replan")).one()
        coupling = conn.execute(
            sa.select(t.couplings).where(t.couplings.c.household_id == confirm)
        ).one()
    assert prov[confirm] == "confirmed" and prov[refuse] == "refused" and prov[full] == "replanned"
    assert coupling.status == "approved" and coupling.persons == active.at[confirm, "persons"]
    assert q2["reserved"].sum() == pytest.approx(
        active["reserved"].sum() - active.loc[[confirm, refuse, full], "reserved"].sum()
    )
    assert replan.status == "proposed"
    assert (q2["coupled"] <= q2["target"]).all()
    approve(ledger, replan.id, reason="re-planned after the permit")
    a = audit_trail(ledger)
    assert {"permit-confirmed", "permit-refused", "permit-replan", "provisional"} <= set(
        a["action"]
    )
    with pytest.raises(InputError, match="no active provisional coupling"):
        permit(ledger, decisions)


EINDHOVEN = "GM0772"


def _eindhoven_cases(tmp_path: Path) -> Path:
    """Three Syrian cases living in azc Eindhoven with their network there; K3 has a public
    order contra-indication."""
    path = tmp_path / "k.csv"
    pd.DataFrame(
        {
            "household_id": ["K1", "K2", "K3"],
            "size": [2, 1, 1],
            "azc": [EINDHOVEN] * 3,
            "network": [EINDHOVEN] * 3,
            "preferred_municipality": [EINDHOVEN] * 3,
            "nationality": ["Syria"] * 3,
            "public_order": ["nee", "nee", "ja"],
        }
    ).to_csv(path, index=False)
    return path


def test_whole_household_is_kept_updated_and_replanned(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """A contra-indication excludes a case; the stored provisional coupling keeps every field of
    the household; `update` records a new size (the reservation follows) and new criteria;
    `list` shows where each coupling stands; a Dutch 'verleend' whose municipality filled up is
    re-planned from the whole stored household (azc and network in Eindhoven: the new
    municipality lies within 50 km of Eindhoven and scores on azc and network), 'geweigerd'
    releases."""
    from coupler.geo import haversine_km
    from coupler.ledger.kansrijk import list_provisional, provisional_context, update_provisional

    ledger = Ledger.open(tmp_path / "l.sqlite", user="rv")
    open_period(ledger, "2025-H1", 3000)
    cases = _eindhoven_cases(tmp_path)
    report = propose_provisional(ledger, cases, None).set_index("household_id")
    assert report.at["K3", "status"] == "contra-indication"
    assert list(report.loc[["K1", "K2"], "status"]) == ["active", "active"]
    with ledger.read() as conn:
        stored = {r.provisional_id: r for r in conn.execute(sa.select(provisional_context))}
    (k1,) = [r for r in stored.values() if '"K1"' in r.household]
    assert '"network":"GM0772"' in k1.household.replace(" ", "")
    assert "nationality" not in k1.household and "public_order" not in k1.household

    # K1 grows to 4 persons and gains a family criterion in Eindhoven before the permit.
    new_hh = tmp_path / "k1.csv"
    pd.read_csv(cases).iloc[[0]].assign(size=4).to_csv(new_hh, index=False)
    new_cr = tmp_path / "k1-criteria.csv"
    pd.DataFrame({"household_id": ["K1"], "kind": ["family"], "municipality": [EINDHOVEN]}).to_csv(
        new_cr, index=False
    )
    changed = update_provisional(ledger, new_hh, new_cr, reason="child born")
    assert changed.iloc[0][["persons_before", "persons", "criteria"]].tolist() == [2, 4, 1]
    listed = list_provisional(ledger).set_index("household_id")
    assert listed.at["K1", "persons"] == 4
    assert listed.at["K1", "reserved"] == pytest.approx(0.82 * 4)
    assert listed["stands"].str.len().min() > 0

    # Fill K1's municipality so the granted permit must re-plan it.
    target = listed.at["K1", "municipality"]
    with ledger.read() as conn:
        st = quota_state(conn, 1).set_index("municipality")
    hh, _ = generate_cases(municipalities, persons=200, seed=8)
    hh["household_id"] = "F-" + hh["household_id"].astype(str)
    take = hh[hh["size"].cumsum() <= int(st.at[target, "available"])]
    p = propose(ledger, take, None, pacing=Pacing(enabled=False))
    approve(ledger, p.batch_id, overrides={h: target for h in take["household_id"]}, reason="fill")
    assert "re-planned" in list_provisional(ledger).set_index("household_id").at["K1", "stands"]

    decisions = tmp_path / "d.csv"
    pd.DataFrame({"household_id": ["K1", "K2"], "decision": ["Verleend", "geweigerd"]}).to_csv(
        decisions, index=False
    )
    out = permit(ledger, decisions).set_index("household_id")
    assert out.at["K1", "outcome"] == "replan" and out.at["K2", "outcome"] == "refused"
    with ledger.read() as conn:
        replan = conn.execute(sa.select(t.batches).where(t.batches.c.kind == "replan")).one()
        row = conn.execute(sa.select(t.couplings).where(t.couplings.c.batch_id == replan.id)).one()
    assert row.persons == 4
    m = municipalities.set_index("code")
    km = haversine_km(
        m.at[row.proposed, "lat"],
        m.at[row.proposed, "lon"],
        m.at[EINDHOVEN, "lat"],
        m.at[EINDHOVEN, "lon"],
    )
    assert row.proposed != target and km <= 50.0
    summary = json.loads(replan.summary)
    assert summary["soft_score"] > 0
