"""Periods: open one with its quotas, report its state, close it and carry the backlog.

A period is a half year (``2025-H1`` = January-June, ``2025-H2`` = July-December). Its quotas
come from one of three places:

* the official per-municipality quotas of a ``--quotas`` file (code, quota[, backlog]);
* the scenario's own ``quota`` (and ``backlog``) column;
* a national ``--total`` divided over the municipalities in proportion to inhabitants.

Each municipality's backlog is added. Closing fixes each municipality's carry,
``quota + backlog - counted`` (negative for a surplus), which the next period opened
``--from-previous`` takes as its backlog (DOMAIN.md section 2). ``counted`` is the coupled
persons, or the persons housed within the period's dates when the housing policy counts at
housing (:class:`coupler.ledger.housing.HousingRules`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

import pandas as pd
import sqlalchemy as sa

from coupler.errors import InputError, Problem
from coupler.io import read_table
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
from coupler.ledger.store import Ledger, LedgerError, Tx, quota_state, select_frame
from coupler.scenario import has_quota_column, load_scenario

_NAME = re.compile(r"^(\d{4})-H([12])$")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise LedgerError(f"period must look like 2025-H1 or 2025-H2; got '{name}'")
    return name


def period_total(period: Any) -> int | None:
    """The national total to load a period's scenario with: None when the scenario carries its
    own quota column (the ledger's quotas table holds the official figures either way)."""
    return None if has_quota_column(period.scenario) else int(period.total)


def read_quotas(path: str | os.PathLike[str], municipalities: pd.DataFrame) -> pd.DataFrame:
    """Official quotas from a table with ``code``, ``quota`` and optional ``backlog``.

    Every municipality of the scenario must appear exactly once; quotas are whole numbers >= 0,
    backlogs whole numbers (negative: a surplus). Returns code, quota, backlog (0 when absent).
    """
    file = os.fspath(path)
    table = read_table(path)
    problems: list[Problem] = []
    missing = [c for c in ("code", "quota") if c not in table.columns]
    if missing:
        raise InputError(Problem(file, f"missing column(s) {', '.join(missing)}"))
    known = set(municipalities["code"].astype(str))
    seen: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    has_backlog = "backlog" in table.columns
    for i, r in enumerate(table.to_dict("records")):
        row = i + 2
        code = str(r["code"]).strip().upper()
        if code not in known:
            problems.append(Problem(file, "unknown municipality code", row=row, column="code"))
            continue
        if code in seen:
            problems.append(
                Problem(
                    file, f"{code} appears twice (also row {seen[code]})", row=row, column="code"
                )
            )
            continue
        seen[code] = row
        values: dict[str, Any] = {"code": code}
        for col in ("quota", "backlog") if has_backlog else ("quota",):
            text = str(r[col]).strip()
            if col == "backlog" and text == "":
                values[col] = 0
                continue
            try:
                number = float(text.replace(",", "."))
            except ValueError:
                number = float("nan")
            if not number == number or number != int(number) or (col == "quota" and number < 0):
                rule = "a whole number >= 0" if col == "quota" else "a whole number"
                problems.append(Problem(file, f"{col} must be {rule}", row=row, column=col))
                continue
            values[col] = int(number)
        rows.append(values)
    absent = sorted(known - set(seen))
    if absent:
        problems.append(
            Problem(
                file,
                f"{len(absent)} municipalities of the scenario have no quota (e.g. {absent[0]}); "
                "give every municipality a row",
                column="code",
            )
        )
    if problems:
        raise InputError(problems)
    out = pd.DataFrame(rows)
    if "backlog" not in out:
        out["backlog"] = 0
    return out[["code", "quota", "backlog"]]


def open_period(
    ledger: Ledger,
    name: str,
    total: int | None = None,
    *,
    quotas: str | os.PathLike[str] | None = None,
    from_previous: bool = False,
    scenario: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Open period ``name``; returns a summary.

    Quotas come from ``quotas`` (a file), else the scenario's quota column, else ``total``
    divided by population. Exactly one source may be given.
    """
    check_name(name)
    if total is not None and total < 0:
        raise LedgerError(f"--total must be >= 0; got {total}")
    own = has_quota_column(scenario)
    if quotas is not None and total is not None:
        raise LedgerError("give --quotas or --total, not both")
    if own and (quotas is not None or total is not None):
        raise LedgerError(
            "the scenario has its own quota column; do not also give --total or --quotas"
        )
    if not own and quotas is None and total is None:
        raise LedgerError(
            "give --total N (divided by population), --quotas FILE (official quotas per "
            "municipality) or a scenario with a quota column"
        )
    municipalities, _ = load_scenario(scenario, None if own or quotas is not None else total)
    official = None
    if quotas is not None:
        official = read_quotas(quotas, municipalities).set_index("code")
        codes = municipalities["code"].astype(str)
        municipalities = municipalities.copy()
        municipalities["quota"] = codes.map(official["quota"]).to_numpy(dtype="int64")
        if (official["backlog"] != 0).any():
            if from_previous:
                raise LedgerError("--quotas with a backlog column and --from-previous: give one")
            municipalities["backlog"] = codes.map(official["backlog"]).to_numpy(dtype="int64")
    total = int(municipalities["quota"].sum())
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
        ).inserted_primary_key[0]  # type: ignore[index, unused-ignore]
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
        return select_frame(conn, sa.select(t.audit).order_by(t.audit.c.id))


__all__ = ["Tx", "audit_trail", "check_name", "close_period", "open_period", "period_status"]
