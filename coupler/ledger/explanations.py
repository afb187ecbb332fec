"""Why each proposal: the explanation of a batch, kept in the ledger when the batch is proposed.

The ledger keeps no soft attributes of households (privacy, :mod:`coupler.ledger.schema`), so a
batch cannot be re-explained later from the ledger alone. When a batch is proposed, the engine's
model is at hand: this module stores, per household, what a reviewer needs and nothing
personal — the azc municipality, the criteria with distances and verdicts, the score parts and
the three best other municipalities with why each was not chosen
(:func:`coupler.explain.alternatives_table`, :func:`coupler.explain.criteria_table`,
:func:`coupler.explain.score_table`).

It also keeps the reviewers' pending overrides of a proposed batch (``review_overrides``): a
regievoerder may override couplings one by one on the review screen before approving the batch;
:func:`coupler.ledger.batches.approve` then applies them with their own reasons.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from coupler.criteria import SOFT_PARTS
from coupler.explain import alternatives_table, criteria_table, score_table
from coupler.ledger.schema import metadata
from coupler.ledger.store import Tx, select_frame
from coupler.model import CouplingModel
from coupler.result import Result

review_households = sa.Table(
    "review_households",
    metadata,
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), primary_key=True),
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("azc", sa.String(8)),  # municipality code of the azc (NULL: unknown)
    sa.Column("conflict", sa.Boolean, nullable=False),  # a hard criterion yielded
    sa.Column("alternative", sa.String(8)),  # best other municipality
    sa.Column("alternative_diff", sa.Float),  # its score minus the chosen score
    sa.Column("alternative_why", sa.String(16)),  # see coupler.explain.WHY_NOT
    sa.Column("detail", sa.Text, nullable=False),  # JSON: criteria, parts, alternatives
)

review_overrides = sa.Table(
    "review_overrides",
    metadata,
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), primary_key=True),
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("municipality", sa.String(8), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)

queue_reviews = sa.Table(
    "queue_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(16), nullable=False),  # omkoppeling | kansrijk
    sa.Column("item_id", sa.Integer, nullable=False),  # omkoppelingen.id | provisional.id
    sa.Column("decision", sa.String(16), nullable=False),  # approved | rejected
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def record(tx: Tx, batch_id: int, model: CouplingModel, result: Result) -> None:
    """Store the explanation of every household of a just-proposed batch."""
    inst = model.instance
    alts = alternatives_table(model, result, k=3)
    crit = criteria_table(model, result)
    parts = score_table(model, result).set_index("household_id")
    azc = (
        inst.households.set_index("household_id")["azc"].astype("string")
        if "azc" in inst.households
        else pd.Series(dtype="string")
    )
    alt_by = {h: g for h, g in alts.groupby("household_id", sort=False)}
    crit_by = {h: g for h, g in crit.groupby("household_id", sort=False)}
    rows = []
    for h in inst.household_ids:
        a = alt_by.get(h)
        c = crit_by.get(h)
        crit_list = (
            []
            if c is None
            else [
                {k: _clean(v) for k, v in r.items() if k != "household_id"}
                for r in c.to_dict("records")
            ]
        )
        alt_list = (
            []
            if a is None
            else [
                {k: _clean(v) for k, v in r.items() if k != "household_id"}
                for r in a.to_dict("records")
            ]
        )
        p = parts.loc[h]
        detail = {
            "criteria": crit_list,
            "score_parts": {name: _clean(p[name]) for name in SOFT_PARTS},
            "alternatives": alt_list,
            "radius_km": model.policy.hard.radius_km,
        }
        first = alt_list[0] if alt_list else None
        code = azc.get(h) if len(azc) else None
        rows.append(
            {
                "batch_id": batch_id,
                "household_id": str(h),
                "azc": None if code is None or pd.isna(code) else str(code),
                "conflict": any(x["state"] == "yielded" for x in crit_list)
                or any(x["yielded"] for x in crit_list),
                "alternative": first["municipality"] if first else None,
                "alternative_diff": first["score_diff"] if first else None,
                "alternative_why": first["why_not"] if first else None,
                "detail": json.dumps(detail, sort_keys=True),
            }
        )
    if rows:
        tx.conn.execute(review_households.insert(), rows)


def pending_overrides(conn: sa.Connection, batch_id: int) -> pd.DataFrame:
    """The reviewers' overrides of a proposed batch: household_id, municipality, reason, by, at."""
    return select_frame(
        conn,
        sa.select(
            review_overrides.c.household_id,
            review_overrides.c.municipality,
            review_overrides.c.reason,
            review_overrides.c.by,
            review_overrides.c.at,
        )
        .where(review_overrides.c.batch_id == batch_id)
        .order_by(review_overrides.c.household_id),
    )


def batch_hash(conn: sa.Connection, batch_id: int) -> str:
    """A fingerprint of a batch as a reviewer sees it: status, couplings and pending overrides.

    An exported review workbook carries it; approving from the workbook compares it, so that
    decisions are never applied to a batch that changed meanwhile.
    """
    from coupler.ledger import schema as t

    status = conn.execute(sa.select(t.batches.c.status).where(t.batches.c.id == batch_id)).scalar()
    rows = conn.execute(
        sa.select(
            t.couplings.c.household_id,
            t.couplings.c.persons,
            t.couplings.c.proposed,
            t.couplings.c.municipality,
            t.couplings.c.status,
        )
        .where(t.couplings.c.batch_id == batch_id)
        .order_by(t.couplings.c.household_id)
    ).all()
    over = pending_overrides(conn, batch_id)[["household_id", "municipality"]]
    payload = json.dumps(
        [batch_id, status, [list(r) for r in rows], over.to_numpy().tolist()], default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


__all__ = [
    "batch_hash",
    "pending_overrides",
    "queue_reviews",
    "record",
    "review_households",
    "review_overrides",
]
