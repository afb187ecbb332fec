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
