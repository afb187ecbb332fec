"""Periods: open one with its quotas, report its state, close it and carry the backlog.

A period is a half year (``2025-H1`` = January-June, ``2025-H2`` = July-December) with a national
total. Opening divides the total over the municipalities in proportion to inhabitants (the
scenario's quota column when it has one) and adds each municipality's backlog. Closing fixes each
municipality's carry, ``quota + backlog - counted`` (negative for a surplus), which the next
period opened ``--from-previous`` takes as its backlog (DOMAIN.md section 2). ``counted`` is the
coupled persons, or the persons housed within the period's dates when the housing policy counts
at housing (:class:`coupler.ledger.housing.HousingRules`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd
import sqlalchemy as sa

from coupler.ledger import schema as t
from coupler.ledger.housing import (
    HousingRules,
    counted_persons,
    housed_persons,
    overdue,
    overdue_summary,
    period_dates,
    today_utc,
)
from coupler.ledger.store import Ledger, LedgerError, Tx, quota_state
from coupler.scenario import load_scenario

_NAME = re.compile(r"^(\d{4})-H([12])$")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise LedgerError(f"period must look like 2025-H1 or 2025-H2; got '{name}'")
    return name


def open_period(
    ledger: Ledger,
    name: str,
    total: int,
    *,
    from_previous: bool = False,
    scenario: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Open period ``name`` with national ``total``; returns a summary."""
    check_name(name)
    if total < 0:
        raise LedgerError(f"--total must be >= 0; got {total}")
    municipalities, _ = load_scenario(scenario, total)
    with ledger.write("period open") as tx:
        conn = tx.conn
        if conn.execute(sa.select(t.periods.c.id).where(t.periods.c.status == "open")).first():
            raise LedgerError("a period is still open; close it first with `coupler period close`")
        if conn.execute(sa.select(t.periods.c.id).where(t.periods.c.name == name)).first():
            raise LedgerError(f"period '{name}' already exists in the ledger")
        backlog = pd.Series(0, index=municipalities["code"].astype(str), dtype="int64")
        previous = None
        if from_previous:
            previous = conn.execute(sa.select(t.periods).order_by(t.periods.c.id.desc())).first()
            if previous is None:
                raise LedgerError("--from-previous: the ledger has no earlier period")
            carry = dict(
                conn.execute(
                    sa.select(t.quotas.c.municipality, t.quotas.c.carry).where(
                        t.quotas.c.period_id == previous.id
                    )
                ).all()
            )
            unknown = sorted(set(carry) - set(backlog.index))
            if unknown:
                raise LedgerError(
                    f"--from-previous: {len(unknown)} municipalities of {previous.name} are not in "
                    f"the scenario (e.g. {unknown[0]}); merged municipalities need a manual backlog"
                )
            backlog = backlog.add(pd.Series(carry, dtype="int64"), fill_value=0).astype("int64")
        elif "backlog" in municipalities and municipalities["backlog"].notna().any():
            backlog = pd.Series(
                municipalities["backlog"].fillna(0).to_numpy(dtype="int64"),
                index=municipalities["code"].astype(str),
            )
        period_id = conn.execute(
            t.periods.insert().values(
                name=name,
                total=int(total),
                months=6,
                status="open",
                scenario=None if scenario is None else str(scenario),
                opened_at=tx.at,
            )
        ).inserted_primary_key[0]
        rows = [
            {
                "period_id": period_id,
                "municipality": str(r.code),
                "name": str(r.name),
                "province": str(r.province),
                "lat": float(r.lat),
                "lon": float(r.lon),
                "quota": int(r.quota),
                "backlog": int(backlog[str(r.code)]),
            }
            for r in municipalities.itertuples(index=False)
        ]
        conn.execute(t.quotas.insert(), rows)
        summary = {
            "period": name,
            "total": int(total),
            "municipalities": len(rows),
            "quota": int(sum(r["quota"] for r in rows)),
            "backlog": int(sum(r["backlog"] for r in rows)),
            "from_previous": previous.name if previous is not None else None,
        }
        tx.audit("open", name, summary, reason)
    return summary


def close_period(
    ledger: Ledger,
    *,
    reason: str | None = None,
    rules: HousingRules | None = None,
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """Close the open period: fix each municipality's carry and expire pending proposals.

    The carry is ``target - counted``; ``rules.count_at`` says whether persons count at coupling
    or at housing (housed within the period's dates, up to ``as_of``, default today).
    """
    rules = rules or HousingRules()
    with ledger.write("period close") as tx:
        conn = tx.conn
        period = ledger.open_period(conn, lock=True)
        q = quota_state(conn, period.id, reserve=False)
        counted = counted_persons(conn, period, q, rules, as_of or today_utc())
        carry = q["target"] - counted
        conn.execute(
            t.quotas.update()
            .where(t.quotas.c.period_id == sa.bindparam("pid"))
            .where(t.quotas.c.municipality == sa.bindparam("code"))
            .values(carry=sa.bindparam("carry")),
            [
                {"pid": period.id, "code": c, "carry": int(v)}
                for c, v in zip(q["municipality"], carry, strict=True)
            ],
        )
        pending = [
            r.id
            for r in conn.execute(
                sa.select(t.batches.c.id).where(
                    (t.batches.c.period_id == period.id) & (t.batches.c.status == "proposed")
                )
            )
        ]
        if pending:
            conn.execute(
                t.batches.update().where(t.batches.c.id.in_(pending)).values(status="expired")
            )
            conn.execute(
                t.couplings.update()
                .where(t.couplings.c.batch_id.in_(pending))
                .values(status="expired")
            )
        conn.execute(
            t.periods.update()
            .where(t.periods.c.id == period.id)
            .values(status="closed", closed_at=tx.at)
        )
        tx.checkpoint("close")
        summary = {
            "period": period.name,
            "target": int(q["target"].sum()),
            "coupled": int(q["coupled"].sum()),
            "count_at": rules.count_at,
            "counted": int(counted.sum()),
            "carry": int(carry.sum()),
            "deficit": int(carry.clip(lower=0).sum()),
            "surplus": int((-carry).clip(lower=0).sum()),
            "expired_batches": pending,
        }
        tx.audit("close", period.name, summary, reason)
    return summary


def period_status(
    ledger: Ledger,
    name: str | None = None,
    *,
    rules: HousingRules | None = None,
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """Totals of a period (the open one by default), its batches, provisional reservations,
    persons housed within its dates and the overdue couplings per municipality (as of ``as_of``,
    default today)."""
    rules = rules or HousingRules()
    as_of = as_of or today_utc()
    late = overdue_summary(overdue(ledger, rules=rules, as_of=as_of))
    with ledger.read() as conn:
        period = ledger.period(conn, name)
        start, end = period_dates(period.name)
        housed = sum(housed_persons(conn, start, min(end, as_of)).values())
        q = quota_state(conn, period.id, reserve=period.status == "open")
        batches = conn.execute(
            sa.select(t.batches.c.status, sa.func.count(), sa.func.sum(t.batches.c.persons))
            .where(t.batches.c.period_id == period.id)
            .group_by(t.batches.c.status)
        ).all()
        active = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(t.provisional.c.reserved)).where(
                t.provisional.c.status == "active"
            )
        ).one()
    over = q[q["coupled"] > q["target"].clip(lower=0)]
    return {
        "period": period.name,
        "status": period.status,
        "total": int(period.total),
        "quota": int(q["quota"].sum()),
        "backlog": int(q["backlog"].sum()),
        "target": int(q["target"].sum()),
        "coupled": int(q["coupled"].sum()),
        "reserved": round(float(q["reserved"].sum()), 2),
        "remaining": int(q["remaining"].sum()),
        "municipalities_full": int((q["available"] <= 0).sum()),
        "municipalities_over": int(len(over)),
        "batches": {s: {"count": int(n), "persons": int(p or 0)} for s, n, p in batches},
        "provisional": {"active": int(active[0]), "reserved": round(float(active[1] or 0.0), 2)},
        "housed": int(housed),
        "as_of": as_of.isoformat(),
        "offer_weeks": rules.offer_weeks,
        "overdue": late.to_dict("records"),
    }


def audit_trail(ledger: Ledger) -> pd.DataFrame:
    with ledger.read() as conn:
        return pd.DataFrame(
            conn.execute(sa.select(t.audit).order_by(t.audit.c.id)).mappings().all()
        )


__all__ = ["Tx", "audit_trail", "check_name", "close_period", "open_period", "period_status"]
