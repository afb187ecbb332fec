"""Tests of coupler.ledger.batches: approval asks a reason only for real breaks and overrides,
stores it only on them, and writes audit rows that are strict JSON."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from coupler.generate import generate_cases
from coupler.ledger import Ledger, LedgerError, Pacing, approve, open_period, propose
from coupler.ledger import schema as t


@pytest.fixture(scope="module")
def municipalities() -> pd.DataFrame:
    """The 342 municipalities of the embedded nl-2024 reference scenario."""
    path = importlib.resources.files("coupler.scenarios") / "nl-2024" / "municipalities.csv"
    return pd.read_csv(str(path))


def _strict(text: str) -> Any:
    """json.loads that refuses NaN and Infinity (they are not JSON)."""

    def bad(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=bad)


def _couplings(ledger: Ledger, batch_id: int) -> pd.DataFrame:
    with ledger.read() as conn:
        return pd.DataFrame(
            conn.execute(
                sa.select(
                    t.couplings.c.household_id, t.couplings.c.broken, t.couplings.c.reason
                ).where(t.couplings.c.batch_id == batch_id)
            ).all(),
            columns=["household_id", "broken", "reason"],
        )


def _audit(ledger: Ledger) -> pd.DataFrame:
    with ledger.read() as conn:
        return pd.DataFrame(conn.execute(sa.select(t.audit)).mappings().all())


def test_approve_needs_no_reason_when_nothing_breaks(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """The issue's reproduction (150 persons, seed 3, total 1,000, no pacing): a batch whose
    couplings break no hard criterion approves without --reason; no coupling is recorded as
    broken or carries a reason, and every audit row's detail is strict JSON."""
    hh, cr = generate_cases(municipalities, persons=150, seed=3)
    ledger = Ledger.open(tmp_path / "l.sqlite", user="tester")
    open_period(ledger, "2025-H1", 1000)
    p = propose(ledger, hh, cr, pacing=Pacing(enabled=False))
    assert p.result is not None
    breaking = set(p.result.plan.loc[p.result.plan["broken"] != "", "household_id"])
    if breaking:
        with pytest.raises(LedgerError, match=f"{len(breaking)} couplings break"):
            approve(ledger, p.batch_id)
        s = approve(ledger, p.batch_id, reason="no room within 50 km")
    else:
        s = approve(ledger, p.batch_id)
    assert s["broken"] == len(breaking)
    rows = _couplings(ledger, p.batch_id)
    with_reason = set(rows.loc[rows["reason"].notna(), "household_id"])
    assert with_reason == breaking
    audit = _audit(ledger)
    for detail in audit["detail"].dropna():
        _strict(detail)
    assert (audit["action"] == "approve-broken").sum() == len(breaking)


def test_reason_only_on_overridden_coupling(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """An override needs a reason; the reason is stored on the overridden coupling only, and the
    audit has exactly one override row (strict JSON) and no approve-broken rows for others."""
    hh, cr = generate_cases(municipalities, persons=150, seed=3)
    ledger = Ledger.open(tmp_path / "l.sqlite", user="tester")
    open_period(ledger, "2025-H1", 1000)
    p = propose(ledger, hh, cr, pacing=Pacing(enabled=False))
    assert p.result is not None
    plan = p.result.plan
    free = plan[(plan["broken"] == "") & (plan["hard_criteria"] == "") & plan["coupled"]]
    h = str(free["household_id"].iloc[0])
    other = (
        "GM0363" if plan.set_index("household_id").at[h, "municipality"] != "GM0363" else "GM0344"
    )
    with pytest.raises(LedgerError, match="--reason"):
        approve(ledger, p.batch_id, overrides={h: other})
    breaking = set(plan.loc[plan["broken"] != "", "household_id"])
    approve(ledger, p.batch_id, overrides={h: other}, reason="housing offered there")
    rows = _couplings(ledger, p.batch_id)
    assert set(rows.loc[rows["reason"].notna(), "household_id"]) == {h} | breaking
    audit = _audit(ledger)
    assert (audit["action"] == "override").sum() == 1
    for detail in audit["detail"].dropna():
        _strict(detail)


UTRECHT = "GM0344"


def _one_job_batch(tmp_path: Path, municipalities: pd.DataFrame):
    """Three single persons; H1 works 24 h in Utrecht with contract and payslip. Returns the
    households, criteria, a road-distance file and the code of a municipality 10-28 km from
    Utrecht as the crow flies that the road matrix puts 45 km away."""
    from factories import frame

    from coupler import schema
    from coupler.geo import haversine_km

    hh = frame([{"household_id": f"H{i}", "size": 1} for i in (1, 2, 3)], schema.HOUSEHOLD_DTYPES)
    cr = frame(
        [
            {
                "household_id": "H1",
                "kind": "work",
                "municipality": UTRECHT,
                "hours_per_week": 24.0,
                "contract_signed": True,
                "payslip_seen": True,
            }
        ],
        schema.CRITERIA_DTYPES,
    )
    m = municipalities.set_index("code")
    km = haversine_km(
        m.at[UTRECHT, "lat"], m.at[UTRECHT, "lon"], m["lat"].to_numpy(), m["lon"].to_numpy()
    )
    near = m.index[(km > 10) & (km < 28)].sort_values()
    far_by_road = str(near[0])
    road = tmp_path / "road.csv"
    pd.DataFrame({"from": [UTRECHT], "to": [far_by_road], "km": [45.0]}).to_csv(road, index=False)
    return hh, cr, road, far_by_road


def test_approve_judges_with_the_batch_radius_and_distance_matrix(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """A batch proposed with a 30 km radius and a road-distance matrix is approved with those:
    overriding the job-holder to a municipality ~20 km away as the crow flies but 45 km by road
    breaks the work criterion (it would not under great circle and the default 50 km), so it
    is recorded as broken in the coupling and the audit row; under the defaults it is not."""
    from coupler.ledger.context import BatchContext
    from coupler.policy import Policy

    hh, cr, road, x = _one_job_batch(tmp_path, municipalities)
    ledger = Ledger.open(tmp_path / "l.sqlite", user="tester")
    open_period(ledger, "2025-H1", 5000)
    policy = Policy().with_(hard={"radius_km": 30.0})
    p = propose(ledger, hh, cr, policy=policy, distances=road, pacing=Pacing(enabled=False))
    with ledger.read() as conn:
        ctx = BatchContext.load(conn, p.batch_id)
    assert ctx.effective_policy.hard.radius_km == 30.0
    assert ctx.distances_name == "road.csv" and len(ctx.distances_hash or "") == 64
    assert ctx.distances is not None and float(ctx.distances["km"].iloc[0]) == 45.0
    s = approve(ledger, p.batch_id, overrides={"H1": x}, reason="employer moves to " + x)
    assert s["broken"] == 1 and s["radius_km"] == 30.0 and s["distances"] == "road.csv"
    rows = _couplings(ledger, p.batch_id).set_index("household_id")
    assert rows.at["H1", "broken"] == "work"
    assert rows["reason"].notna().sum() == 1
    audit = _audit(ledger)
    override = audit[audit["action"] == "override"]
    assert _strict(override["detail"].iloc[0])["breaks"] == "work"
    # The same override in a batch proposed under the defaults breaks nothing.
    plain = Ledger.open(tmp_path / "plain.sqlite", user="tester")
    open_period(plain, "2025-H1", 5000)
    q = propose(plain, hh, cr, pacing=Pacing(enabled=False))
    assert approve(plain, q.batch_id, overrides={"H1": x}, reason="same move")["broken"] == 0


def test_proposals_differ_by_distance_matrix_and_agreements(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """The proposal's checksum covers the distance matrix and the agreements: the same cases
    proposed again with another matrix or an agreement make a new batch, the same again do not."""
    from coupler.agreements import Agreement

    hh, cr, road, _ = _one_job_batch(tmp_path, municipalities)
    ledger = Ledger.open(tmp_path / "l.sqlite", user="tester")
    open_period(ledger, "2025-H1", 5000)
    a = propose(ledger, hh, cr, pacing=Pacing(enabled=False))
    b = propose(ledger, hh, cr, distances=road, pacing=Pacing(enabled=False))
    radius = importlib.resources.files("coupler.scenarios") / "nl-2024" / "agreements"
    agreement = Agreement.from_file(str(radius / "radius-30.toml"))
    c = propose(ledger, hh, cr, agreements=(agreement,), pacing=Pacing(enabled=False))
    again = propose(ledger, hh, cr, agreements=(agreement,), pacing=Pacing(enabled=False))
    assert len({a.batch_id, b.batch_id, c.batch_id}) == 3
    assert not again.created and again.batch_id == c.batch_id


def test_conflicts_approve_without_reason(tmp_path: Path) -> None:
    """A batch whose households have conflicting criteria (two jobs 200 km apart; medical,
    work and family far apart) approves without --reason when nothing is broken: a yielded
    criterion is not a break, and the audit has no approve-broken rows."""
    from factories import frame

    from coupler import schema

    job = {"kind": "work", "hours_per_week": 24.0, "contract_signed": True, "payslip_seen": True}
    hh = frame(
        [{"household_id": "C1", "size": 1}, {"household_id": "C2", "size": 3}],
        schema.HOUSEHOLD_DTYPES,
    )
    cr = frame(
        [
            {"household_id": "C1", "municipality": "GM0014", **job},
            {"household_id": "C1", "municipality": "GM0935", **job, "hours_per_week": 32.0},
            {"household_id": "C2", "kind": "medical", "municipality": "GM0935"},
            {"household_id": "C2", "municipality": "GM0917", **job},
            {"household_id": "C2", "kind": "family", "municipality": "GM0014"},
        ],
        schema.CRITERIA_DTYPES,
    )
    ledger = Ledger.open(tmp_path / "l.sqlite", user="tester")
    open_period(ledger, "2025-H1", 5000)
    p = propose(ledger, hh, cr, pacing=Pacing(enabled=False))
    assert p.result is not None and len(p.result.conflicts) == 2
    s = approve(ledger, p.batch_id)
    assert s["broken"] == 0
    rows = _couplings(ledger, p.batch_id)
    assert rows["broken"].isna().all() and rows["reason"].isna().all()
    audit = _audit(ledger)
    assert not (audit["action"] == "approve-broken").any()
    for detail in audit["detail"].dropna():
        _strict(detail)
