"""Reviewing a batch: scoped queries for the review screen, overrides, and the Excel round trip.

Every read here takes the reader's municipality (``None`` for a regievoerder or analist): a
``gemeente:`` user sees only couplings to its own municipality because the **queries** carry
that where-clause; asking for something outside it raises :class:`NotVisible`.

The Excel round trip (issue 13): :func:`export_review` writes one workbook per batch (sheets
``koppelingen``, ``criteria``, ``gemeenten`` and a hidden ``controle`` sheet with the batch's
:func:`~coupler.ledger.explanations.batch_hash`); :func:`read_decisions` reads the decision and
reason columns back with file / row / column messages and no personal values, and
:func:`approve_workbook` approves the batch with those decisions, refusing a workbook whose
batch changed since it was exported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from coupler.errors import InputError, Problem
from coupler.excel import FORMULA_START, safe_frame, safe_text
from coupler.ledger import schema as t
from coupler.ledger.batches import approve, municipality_code
from coupler.ledger.explanations import (
    batch_hash,
    pending_overrides,
    review_households,
    review_overrides,
)
from coupler.ledger.store import Ledger, LedgerError, quota_state, select_frame

PathLike = str | os.PathLike[str]

#: Decisions a reviewer may enter per coupling in the workbook (empty = approve as proposed).
DECISIONS = ("akkoord", "wijzigen")
#: Columns of the batch view, in the order a reviewer reads them; the sort keys it accepts.
SORT_KEYS = ("household_id", "persons", "municipality", "azc", "score", "alternative_diff")


class NotVisible(LedgerError):
    """The reader's role does not let it see this batch, household or export."""


@dataclass(frozen=True)
class Filters:
    """Filters of the batch view; every value is bound as a parameter, never spliced into SQL."""

    broken: bool = False
    conflicts: bool = False
    overridden: bool = False
    municipality: str | None = None  # code or name
    province: str | None = None
    azc: str | None = None  # code or name
    persons: int | None = None
    sort: str = "household_id"
    descending: bool = False
    page: int = 1
    per_page: int = 100
    extra: dict[str, Any] = field(default_factory=dict)


def names(conn: sa.Connection, period_id: int) -> pd.DataFrame:
    """Code, name, province, lat, lon of the period's municipalities, indexed by code."""
    return select_frame(
        conn,
        sa.select(
            t.quotas.c.municipality.label("code"),
            t.quotas.c.name,
            t.quotas.c.province,
            t.quotas.c.lat,
            t.quotas.c.lon,
        ).where(t.quotas.c.period_id == period_id),
    ).set_index("code", drop=False)


def _batch(conn: sa.Connection, batch_id: int) -> sa.Row[Any]:
    row = conn.execute(sa.select(t.batches).where(t.batches.c.id == batch_id)).first()
    if row is None:
        raise LedgerError(f"no batch {batch_id} in the ledger")
    return row


def _effective() -> sa.ColumnElement[Any]:
    """A coupling's municipality as the reviewer sees it: a pending override, else the ledger's."""
    return sa.func.coalesce(review_overrides.c.municipality, t.couplings.c.municipality)


def _base(batch_id: int) -> sa.Select[Any]:
    eff = _effective().label("current")
    return (
        sa.select(
            t.couplings.c.id,
            t.couplings.c.household_id,
            t.couplings.c.persons,
            t.couplings.c.proposed,
            t.couplings.c.municipality,
            eff,
            t.couplings.c.status,
            t.couplings.c.broken,
            t.couplings.c.score,
            t.couplings.c.reason,
            review_households.c.azc,
            review_households.c.conflict,
            review_households.c.alternative,
            review_households.c.alternative_diff,
            review_households.c.alternative_why,
            review_overrides.c.reason.label("override_reason"),
            review_overrides.c.by.label("override_by"),
        )
        .select_from(
            t.couplings.outerjoin(
                review_households,
                (review_households.c.batch_id == t.couplings.c.batch_id)
                & (review_households.c.household_id == t.couplings.c.household_id),
            ).outerjoin(
                review_overrides,
                (review_overrides.c.batch_id == t.couplings.c.batch_id)
                & (review_overrides.c.household_id == t.couplings.c.household_id),
            )
        )
        .where(t.couplings.c.batch_id == batch_id)
    )


def _visible(q: sa.Select[Any], municipality: str | None) -> sa.Select[Any]:
    """Restrict to couplings to ``municipality`` as they stand (a pending override included)."""
    if municipality is None:
        return q
    return q.where(_effective() == municipality)


def visible_batches(ledger: Ledger, municipality: str | None) -> pd.DataFrame:
    """Batches of the ledger the reader may open, newest first."""
    with ledger.read() as conn:
        q = sa.select(
            t.batches.c.id,
            t.batches.c.period_id,
            t.batches.c.status,
            t.batches.c.month,
            t.batches.c.households,
            t.batches.c.persons,
            t.batches.c.created_at,
            t.batches.c.created_by,
        ).order_by(t.batches.c.id.desc())
        if municipality is not None:
            mine = sa.select(t.couplings.c.batch_id).where(
                t.couplings.c.municipality == municipality
            )
            moved = sa.select(review_overrides.c.batch_id).where(
                review_overrides.c.municipality == municipality
            )
            q = q.where(t.batches.c.id.in_(mine) | t.batches.c.id.in_(moved))
        return select_frame(conn, q)


def _resolve(ref: str | None, nm: pd.DataFrame) -> str | None:
    if ref is None or not ref.strip():
        return None
    code = municipality_code(ref, nm["name"])
    # An unknown name filters to nothing rather than being ignored (no code is empty).
    return code if code is not None else ""


def batch_view(
    ledger: Ledger, batch_id: int, municipality: str | None, filters: Filters | None = None
) -> dict[str, Any]:
    """One page of a batch's couplings with names, verdicts and the best alternative.

    Returns ``batch`` (the row), ``total`` (couplings matching the filters), ``rows`` (this
    page, dicts), ``counts`` (broken, conflicts, overridden among the visible couplings),
    ``names`` (the period's municipalities) and ``pending`` (number of pending overrides).

    Raises
    ------
    NotVisible
        A ``gemeente:`` reader and a batch without couplings to its municipality.
    """
    f = filters or Filters()
    with ledger.read() as conn:
        batch = _batch(conn, batch_id)
        nm = names(conn, batch.period_id)
        base = _visible(_base(batch_id), municipality)
        if municipality is not None:
            seen = conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar()
            if not seen:
                raise NotVisible(f"batch {batch_id} has no couplings to your municipality")
        q = base
        if f.broken:
            q = q.where(t.couplings.c.broken.is_not(None))
        if f.conflicts:
            q = q.where(review_households.c.conflict)
        if f.overridden:
            q = q.where(
                review_overrides.c.municipality.is_not(None)
                | (t.couplings.c.municipality != t.couplings.c.proposed)
            )
        code = _resolve(f.municipality, nm)
        if code is not None:
            q = q.where(_effective() == code)
        if f.province and f.province.strip():
            codes = nm.index[nm["province"].str.casefold() == f.province.strip().casefold()]
            q = q.where(_effective().in_([str(c) for c in codes]))
        azc = _resolve(f.azc, nm)
        if azc is not None:
            q = q.where(review_households.c.azc == azc)
        if f.persons is not None:
            q = q.where(t.couplings.c.persons == int(f.persons))
        sub = q.subquery()
        total = int(conn.execute(sa.select(sa.func.count()).select_from(sub)).scalar_one())
        key = f.sort if f.sort in SORT_KEYS else "household_id"
        col = sub.c["current" if key == "municipality" else key]
        order = col.desc() if f.descending else col.asc()
        per = max(1, min(int(f.per_page), 500))
        page = max(1, int(f.page))
        rows = (
            conn.execute(
                sa.select(sub)
                .order_by(order.nulls_last(), sub.c.household_id)
                .limit(per)
                .offset((page - 1) * per)
            )
            .mappings()
            .all()
        )
        vis = base.subquery()
        counts = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((vis.c.broken.is_not(None), 1), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(sa.case((vis.c.conflict, 1), else_=0)), 0),
                sa.func.coalesce(
                    sa.func.sum(sa.case((vis.c.override_by.is_not(None), 1), else_=0)), 0
                ),
            )
        ).one()
        pending = len(pending_overrides(conn, batch_id))
    out_rows = []
    for r in rows:
        d = dict(r)
        for k in ("proposed", "municipality", "current", "azc", "alternative"):
            d[f"{k}_name"] = _name(nm, d.get(k))
        d["broken_kinds"] = [k for k in (d.get("broken") or "").split(";") if k]
        out_rows.append(d)
    return {
        "batch": batch,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // per)),
        "per_page": per,
        "rows": out_rows,
        "counts": {
            "visible": int(counts[0]),
            "broken": int(counts[1]),
            "conflicts": int(counts[2]),
            "overridden": int(counts[3]),
        },
        "names": nm,
        "pending": pending,
    }


def _name(nm: pd.DataFrame, code: Any) -> str | None:
    if code is None or (isinstance(code, float) and pd.isna(code)):
        return None
    return str(nm.at[code, "name"]) if code in nm.index else str(code)


def household_view(
    ledger: Ledger, batch_id: int, household_id: str, municipality: str | None
) -> dict[str, Any]:
    """Everything about one coupling of a batch: criteria, score parts, three alternatives.

    Raises
    ------
    LedgerError
        No such household in the batch.
    NotVisible
        A ``gemeente:`` reader and a household coupled elsewhere.
    """
    with ledger.read() as conn:
        batch = _batch(conn, batch_id)
        nm = names(conn, batch.period_id)
        row = conn.execute(
            _base(batch_id).where(t.couplings.c.household_id == household_id)
        ).first()
        if row is None:
            raise LedgerError(f"batch {batch_id} has no such household")
        if municipality is not None:
            mine = conn.execute(
                _visible(_base(batch_id), municipality).where(
                    t.couplings.c.household_id == household_id
                )
            ).first()
            if mine is None:
                raise NotVisible("this household is not coupled to your municipality")
        detail_json = conn.execute(
            sa.select(review_households.c.detail).where(
                (review_households.c.batch_id == batch_id)
                & (review_households.c.household_id == household_id)
            )
        ).scalar()
        state = quota_state(conn, batch.period_id).set_index("municipality")
    d = dict(row._mapping)
    detail = json.loads(detail_json) if detail_json else {}
    for c in detail.get("criteria", []):
        c["criterion_municipality_name"] = _name(nm, c.get("criterion_municipality"))
        c["lat"], c["lon"] = _coords(nm, c.get("criterion_municipality"))
    for a in detail.get("alternatives", []):
        a["name"] = _name(nm, a["municipality"])
        a["lat"], a["lon"] = _coords(nm, a["municipality"])
    for k in ("proposed", "municipality", "current", "azc"):
        d[f"{k}_name"] = _name(nm, d.get(k))
    d["lat"], d["lon"] = _coords(nm, d.get("current"))
    d["room"] = (
        int(state.at[d["current"], "remaining"]) if d.get("current") in state.index else None
    )
    d["broken_kinds"] = [k for k in (d.get("broken") or "").split(";") if k]
    return {"batch": batch, "coupling": d, "detail": detail, "names": nm}


def _coords(nm: pd.DataFrame, code: Any) -> tuple[float | None, float | None]:
    if code is None or code not in nm.index:
        return None, None
    return float(nm.at[code, "lat"]), float(nm.at[code, "lon"])


def set_override(
    ledger: Ledger, batch_id: int, household_id: str, target: str, reason: str
) -> dict[str, Any]:
    """Record a reviewer's override of one proposed coupling (applied when the batch is approved).

    The new municipality (code or name) must have room for the household, counting this batch's
    proposals and pending overrides; the check runs inside the write transaction, so concurrent
    reviewers never plan more than the quota. Returns the override.
    """
    if not reason or not reason.strip():
        raise LedgerError("an override needs a reason")
    with ledger.write("review override") as tx:
        conn = tx.conn
        period = ledger.open_period(conn, lock=True)
        batch = _batch(conn, batch_id)
        if batch.status != "proposed":
            raise LedgerError(f"batch {batch_id} is {batch.status}; only a proposed batch changes")
        if batch.period_id != period.id:
            raise LedgerError(f"batch {batch_id} belongs to another period than the open one")
        state = quota_state(conn, period.id).set_index("municipality")
        code = municipality_code(target, state["name"])
        if code is None:
            raise LedgerError("unknown municipality; pick one from the list")
        row = conn.execute(
            _base(batch_id).where(t.couplings.c.household_id == household_id)
        ).first()
        if row is None:
            raise LedgerError(f"batch {batch_id} has no such household")
        planned = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(t.couplings.c.persons), 0))
            .select_from(
                t.couplings.outerjoin(
                    review_overrides,
                    (review_overrides.c.batch_id == t.couplings.c.batch_id)
                    & (review_overrides.c.household_id == t.couplings.c.household_id),
                )
            )
            .where(
                (t.couplings.c.batch_id == batch_id)
                & (t.couplings.c.household_id != household_id)
                & (t.couplings.c.status == "proposed")
                & (_effective() == code)
            )
        ).scalar_one()
        room = int(state.at[code, "available"] - state.at[code, "reserved"]) - int(planned)
        if row.persons > room:
            raise LedgerError(
                f"{state.at[code, 'name']} has {max(room, 0)} places left for this batch, "
                "fewer than the household needs"
            )
        conn.execute(
            review_overrides.delete().where(
                (review_overrides.c.batch_id == batch_id)
                & (review_overrides.c.household_id == household_id)
            )
        )
        if code != row.municipality:
            conn.execute(
                review_overrides.insert().values(
                    batch_id=batch_id,
                    household_id=household_id,
                    municipality=code,
                    reason=reason.strip(),
                    by=tx.who,
                    at=tx.at,
                )
            )
        tx.audit(
            "override-pending",
            household_id,
            {"batch": batch_id, "from": row.municipality, "to": code},
            reason.strip(),
        )
    return {"household_id": household_id, "municipality": code, "room_left": room - row.persons}


# --- period, queues, audit --------------------------------------------------------------------


def period_overview(ledger: Ledger, municipality: str | None) -> dict[str, Any] | None:
    """The open (else latest) period: quota, coupled and remaining per municipality, province
    and labour-market region, the batches the reader may open and the waiting queue items.

    None when the ledger has no period yet.
    """
    from coupler.ledger.batches import progress_table
    from coupler.ledger.periods import period_status
    from coupler.scenario import load_scenario

    try:
        status = period_status(ledger)
    except LedgerError:
        return None
    _, m, prov = progress_table(ledger, status["period"])
    with ledger.read() as conn:
        period = ledger.period(conn, status["period"])
    regions, _ = load_scenario(period.scenario, period.total)
    region_of = regions.set_index("code")["labour_market_region"].astype(str)
    m["region"] = m["code"].map(region_of).fillna("?")
    reg = (
        m.groupby("region", sort=True)[["target", "coupled", "reserved", "remaining"]]
        .sum()
        .reset_index()
    )
    batches = visible_batches(ledger, municipality)
    if len(batches):
        batches = batches[batches["period_id"] == period.id]
    om = omkoppeling_queue(ledger, municipality)
    kr = kansrijk_queue(ledger, municipality)
    return {
        "status": status,
        "municipalities": m if municipality is None else m[m["code"] == municipality],
        "provinces": prov,
        "regions": reg,
        "batches": batches,
        "omkoppeling_waiting": int((om["decision"] == "proposed").sum()) if len(om) else 0,
        "kansrijk_waiting": int((kr["status"] == "active").sum()) if len(kr) else 0,
    }


def _reviews(conn: sa.Connection, queue: str) -> dict[int, dict[str, Any]]:
    from coupler.ledger.explanations import queue_reviews as q

    rows = conn.execute(
        sa.select(q.c.item_id, q.c.decision, q.c.reason, q.c.by, q.c.at)
        .where(q.c.queue == queue)
        .order_by(q.c.id)
    ).mappings()
    return {int(r["item_id"]): dict(r) for r in rows}


def omkoppeling_queue(ledger: Ledger, municipality: str | None) -> pd.DataFrame:
    """Omkoppeling requests with each rule's verdict and the reviewer's decision, newest first.

    A ``gemeente:`` reader sees the requests that move a household to or from its municipality.
    """
    o = t.omkoppelingen
    q = sa.select(o).order_by(o.c.id.desc())
    if municipality is not None:
        q = q.where((o.c.old_municipality == municipality) | (o.c.new_municipality == municipality))
    with ledger.read() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
        reviews = _reviews(conn, "omkoppeling")
        nm = _all_names(conn)
    for r in rows:
        r["rules"] = json.loads(r["rules"] or "{}")
        r["review"] = reviews.get(int(r["id"]))
        for k in ("old_municipality", "new_municipality", "job_municipality"):
            r[f"{k}_name"] = nm.get(r[k], r[k])
    return pd.DataFrame(
        rows, columns=[c.name for c in o.columns] + ["review"] if not rows else None
    )


def kansrijk_queue(ledger: Ledger, municipality: str | None) -> pd.DataFrame:
    """Provisional (Kansrijke) couplings with their reservation and the reviewer's decision."""
    p = t.provisional
    q = sa.select(p).order_by(p.c.id.desc())
    if municipality is not None:
        q = q.where(p.c.municipality == municipality)
    with ledger.read() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
        reviews = _reviews(conn, "kansrijk")
        nm = _all_names(conn)
    for r in rows:
        r["review"] = reviews.get(int(r["id"]))
        r["municipality_name"] = nm.get(r["municipality"], r["municipality"])
    return pd.DataFrame(
        rows, columns=[c.name for c in p.columns] + ["review"] if not rows else None
    )


def _all_names(conn: sa.Connection) -> dict[str, str]:
    return dict(conn.execute(sa.select(t.quotas.c.municipality, t.quotas.c.name).distinct()).all())


def decide_queue(ledger: Ledger, queue: str, item_id: int, decision: str, reason: str) -> None:
    """Record a regievoerder's approval or rejection of an omkoppeling or Kansrijke Koppeling.

    The decision and its reason are kept with the item and in the audit log.
    """
    from coupler.ledger.explanations import queue_reviews

    if queue not in ("omkoppeling", "kansrijk"):
        raise LedgerError(f"unknown queue '{queue[:20]}'")
    if decision not in ("approved", "rejected"):
        raise LedgerError("a decision is approved or rejected")
    if not reason or not reason.strip():
        raise LedgerError("a decision needs a reason")
    table = t.omkoppelingen if queue == "omkoppeling" else t.provisional
    with ledger.write(f"review {queue}") as tx:
        if tx.conn.execute(sa.select(table.c.id).where(table.c.id == item_id)).first() is None:
            raise LedgerError(f"no such {queue} item")
        tx.conn.execute(
            queue_reviews.insert().values(
                queue=queue,
                item_id=item_id,
                decision=decision,
                reason=reason.strip(),
                by=tx.who,
                at=tx.at,
            )
        )
        tx.audit(f"{queue}-{decision}", f"{queue} {item_id}", None, reason.strip())


def audit_view(
    ledger: Ledger,
    *,
    who: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    since: str | None = None,
    limit: int | None = 500,
) -> pd.DataFrame:
    """Audit rows, newest first, filtered (each filter a bound parameter; text filters match
    a substring, ``since`` an ISO date or time)."""
    a = t.audit
    q = sa.select(a).order_by(a.c.id.desc())
    if who and who.strip():
        q = q.where(a.c.who.contains(who.strip(), autoescape=True))
    if action and action.strip():
        q = q.where(a.c.action.contains(action.strip(), autoescape=True))
    if subject and subject.strip():
        q = q.where(a.c.subject.contains(subject.strip(), autoescape=True))
    if since and since.strip():
        q = q.where(a.c.at >= since.strip())
    if limit is not None:
        q = q.limit(limit)
    with ledger.read() as conn:
        return select_frame(conn, q)


# --- Excel round trip -------------------------------------------------------------------------

SHEET_COUPLINGS = "koppelingen"
SHEET_CRITERIA = "criteria"
SHEET_MUNICIPALITIES = "gemeenten"
SHEET_CHECK = "controle"
COUPLING_COLUMNS = (
    "huishouden",
    "personen",
    "azc",
    "gemeente",
    "provincie",
    "harde criteria gebroken",
    "conflict",
    "score",
    "beste alternatief",
    "scoreverschil",
    "waarom niet",
    "besluit",
    "nieuwe gemeente",
    "reden",
)


def export_review(
    ledger: Ledger, batch_id: int, path: PathLike, municipality: str | None = None
) -> Path:
    """Write the review workbook of a proposed batch (atomically); returns the path.

    Sheets: couplings (names, not codes; a ``besluit`` drop-down and ``reden`` column), criteria
    (each with distance and verdict), municipalities (quota and room) and a hidden check sheet
    with the batch hash. Headers are frozen and filtered; every text cell goes through
    :func:`coupler.excel.safe_text` and is written as a string, never a formula.
    """
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    out = Path(path)
    view = batch_view(ledger, batch_id, municipality, Filters(per_page=500, page=1))
    nm: pd.DataFrame = view["names"]
    rows = list(view["rows"])
    for page in range(2, view["pages"] + 1):
        rows += batch_view(ledger, batch_id, municipality, Filters(per_page=500, page=page))["rows"]
    with ledger.read() as conn:
        digest = batch_hash(conn, batch_id)
        period_id = view["batch"].period_id
        state = quota_state(conn, period_id)
        ids = [r["household_id"] for r in rows]
        details = dict(
            conn.execute(
                sa.select(review_households.c.household_id, review_households.c.detail).where(
                    (review_households.c.batch_id == batch_id)
                    & review_households.c.household_id.in_(ids)
                )
            ).all()
        )
    couplings = pd.DataFrame(
        [
            {
                "huishouden": r["household_id"],
                "personen": int(r["persons"]),
                "azc": r["azc_name"] or "",
                "gemeente": r["current_name"] or "",
                "provincie": str(nm.at[r["current"], "province"])
                if r["current"] in nm.index
                else "",
                "harde criteria gebroken": ", ".join(r["broken_kinds"]),
                "conflict": "ja" if r["conflict"] else "",
                "score": round(float(r["score"] or 0.0), 4),
                "beste alternatief": r["alternative_name"] or "",
                "scoreverschil": None
                if r["alternative_diff"] is None
                else round(float(r["alternative_diff"]), 4),
                "waarom niet": r["alternative_why"] or "",
                "besluit": "",
                "nieuwe gemeente": "",
                "reden": r["override_reason"] or "",
            }
            for r in rows
        ],
        columns=list(COUPLING_COLUMNS),
    )
    crit_rows = []
    for h in ids:
        for c in json.loads(details.get(h) or "{}").get("criteria", []):
            crit_rows.append(
                {
                    "huishouden": h,
                    "criterium": c["kind"],
                    "gemeente van het criterium": _name(nm, c["criterion_municipality"]),
                    "hard": "ja" if c["hard"] else "nee",
                    "afstand (km)": c["distance_km"],
                    "oordeel": c["state"],
                }
            )
    criteria = pd.DataFrame(
        crit_rows,
        columns=[
            "huishouden",
            "criterium",
            "gemeente van het criterium",
            "hard",
            "afstand (km)",
            "oordeel",
        ],
    )
    municipalities = pd.DataFrame(
        {
            "gemeente": state["name"],
            "provincie": state["province"],
            "taakstelling": state["target"],
            "gekoppeld": state["coupled"],
            "ruimte": state["remaining"],
        }
    )
    wb = Workbook()
    sheets = [
        (SHEET_COUPLINGS, couplings),
        (SHEET_CRITERIA, criteria),
        (SHEET_MUNICIPALITIES, municipalities),
    ]
    first = True
    for title, frame in sheets:
        ws = wb.active if first else wb.create_sheet()
        first = False
        assert ws is not None
        ws.title = title
        safe = safe_frame(frame)
        ws.append([str(c) for c in safe.columns])
        for rec in safe.itertuples(index=False):
            ws.append([_cell(v) for v in rec])
        _as_text(ws)
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
    ws = wb[SHEET_COUPLINGS]
    n = len(couplings) + 1
    dec = COUPLING_COLUMNS.index("besluit") + 1
    letter = get_column_letter(dec)
    dv = DataValidation(
        type="list", formula1='"' + ",".join(DECISIONS) + '"', allow_blank=True, showDropDown=False
    )
    dv.error = "kies akkoord of wijzigen"
    dv.add(f"{letter}2:{letter}{max(n, 2)}")
    ws.add_data_validation(dv)
    new_col = get_column_letter(COUPLING_COLUMNS.index("nieuwe gemeente") + 1)
    dv2 = DataValidation(
        type="list",
        formula1=f"={SHEET_MUNICIPALITIES}!$A$2:$A${len(municipalities) + 1}",
        allow_blank=True,
    )
    dv2.add(f"{new_col}2:{new_col}{max(n, 2)}")
    ws.add_data_validation(dv2)
    check = wb.create_sheet(SHEET_CHECK)
    check.append(["batch", "hash"])
    check.append([str(batch_id), digest])
    _as_text(check)
    check.sheet_state = "hidden"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        wb.save(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return safe_text(value)


def _as_text(ws: Any) -> None:
    """Mark string cells as text so that no spreadsheet program turns them into formulas."""
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"


def _unsafe(text: str) -> str:
    """Undo :func:`coupler.excel.safe_text`: drop the apostrophe it put before a formula start."""
    if text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


@dataclass(frozen=True)
class Decisions:
    """What a review workbook says: its batch, hash, overrides and reasons per household."""

    batch_id: int
    digest: str
    overrides: dict[str, str]
    reasons: dict[str, str]
    approved: int


def read_decisions(ledger: Ledger, path: PathLike) -> Decisions:
    """Read and validate the decisions of a review workbook written by :func:`export_review`.

    Raises
    ------
    InputError
        The file is not such a workbook, or rows have bad decisions (file, row, column; no
        personal values in the messages).
    """
    from openpyxl import load_workbook

    file = str(path)
    try:
        wb = load_workbook(file, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a bad file
        raise InputError(
            Problem(file, f"is not a readable .xlsx workbook ({type(exc).__name__})")
        ) from None
    missing = [s for s in (SHEET_COUPLINGS, SHEET_CHECK) if s not in wb.sheetnames]
    if missing:
        raise InputError(
            Problem(
                file, f"has no sheet '{missing[0]}'; export it with `coupler batch export --review`"
            )
        )
    check = list(wb[SHEET_CHECK].iter_rows(min_row=2, max_row=2, values_only=True))
    try:
        batch_id = int(str(check[0][0]))
        digest = str(check[0][1])
    except (IndexError, TypeError, ValueError):
        raise InputError(Problem(file, "the hidden sheet 'controle' was changed")) from None
    rows = list(wb[SHEET_COUPLINGS].iter_rows(values_only=True))
    wb.close()
    header = [str(h).strip() if h is not None else "" for h in (rows[0] if rows else [])]
    need = ("huishouden", "besluit", "nieuwe gemeente", "reden")
    problems = [
        Problem(file, f"sheet '{SHEET_COUPLINGS}' has no column '{c}'", row=1)
        for c in need
        if c not in header
    ]
    if problems:
        raise InputError(problems)
    col = {c: header.index(c) for c in need}
    with ledger.read() as conn:
        batch = _batch(conn, batch_id)
        nm = names(conn, batch.period_id)
        known = {
            h
            for (h,) in conn.execute(
                sa.select(t.couplings.c.household_id).where(t.couplings.c.batch_id == batch_id)
            )
        }
    overrides: dict[str, str] = {}
    reasons: dict[str, str] = {}
    approved = 0
    seen: set[str] = set()
    for i, r in enumerate(rows[1:], start=2):

        def val(c: str, r: tuple[Any, ...] = r) -> str:
            v = r[col[c]] if col[c] < len(r) else None
            return "" if v is None else str(v).strip()

        h = _unsafe(val("huishouden"))
        if not h:
            continue
        if h not in known:
            problems.append(
                Problem(file, "household is not in the batch", row=i, column="huishouden")
            )
            continue
        if h in seen:
            problems.append(
                Problem(file, "a second row for the same household", row=i, column="huishouden")
            )
            continue
        seen.add(h)
        decision = val("besluit").casefold()
        reason = val("reden")
        if decision not in ("", *DECISIONS):
            problems.append(
                Problem(file, f"must be empty, {' or '.join(DECISIONS)}", row=i, column="besluit")
            )
            continue
        if decision == "wijzigen":
            target = _unsafe(val("nieuwe gemeente"))
            code = municipality_code(target, nm["name"]) if target else None
            if code is None:
                problems.append(
                    Problem(
                        file,
                        "needs a municipality from sheet 'gemeenten'",
                        row=i,
                        column="nieuwe gemeente",
                    )
                )
                continue
            if not reason:
                problems.append(Problem(file, "an override needs a reason", row=i, column="reden"))
                continue
            overrides[h] = code
        elif decision == "akkoord":
            approved += 1
        if reason:
            reasons[h] = reason
    if problems:
        raise InputError(problems)
    return Decisions(batch_id, digest, overrides, reasons, approved)


def approve_workbook(ledger: Ledger, path: PathLike, reason: str | None = None) -> dict[str, Any]:
    """Approve the batch of a review workbook with its decisions; refuses a changed batch."""
    d = read_decisions(ledger, path)
    return approve(
        ledger,
        d.batch_id,
        overrides=d.overrides,
        reasons=d.reasons,
        reason=reason,
        expect=d.digest,
    )


__all__ = [
    "DECISIONS",
    "Decisions",
    "Filters",
    "NotVisible",
    "approve_workbook",
    "audit_view",
    "batch_view",
    "decide_queue",
    "kansrijk_queue",
    "omkoppeling_queue",
    "period_overview",
    "export_review",
    "household_view",
    "names",
    "read_decisions",
    "set_override",
    "visible_batches",
]
