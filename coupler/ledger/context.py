"""What a batch was made with: its policy, distance source, agreements and hard criteria.

A proposal stores its :class:`BatchContext` in the ``batch_context`` table (a table of its own,
created with the ledger). Approving the batch, re-coupling one of its households (omkoppeling),
settling a Kansrijke Koppeling and the audit then judge hard criteria with exactly what the
proposal used: the same policy text (radius, hours threshold, evidence rules, priority), the same
distance matrix and the same agreements, through the same code as the solver
(:func:`coupler.criteria.hard_criteria`), never with a default radius or great-circle distance
the batch was not made with.

Privacy (DOMAIN.md section 9): the context holds the batch's hard criteria (kind, municipality,
hours and evidence flags), which the decisions need; no soft household attributes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from coupler.agreements import Agreement
from coupler.criteria import hard_criteria
from coupler.instance import Instance
from coupler.ledger import schema as t
from coupler.ledger.store import LedgerError
from coupler.policy import Policy
from coupler.schema import CRITERIA_DTYPES, DISTANCE_DTYPES, HOUSEHOLD_DTYPES

batch_context = sa.Table(
    "batch_context",
    t.metadata,
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), primary_key=True),
    sa.Column("policy", sa.Text, nullable=False),  # TOML text of the policy as given
    sa.Column("agreements", sa.Text, nullable=False),  # JSON: [{name, source, toml}]
    sa.Column("distances_name", sa.String(256)),  # file name of the distance matrix (NULL: none)
    sa.Column("distances_hash", sa.String(64)),  # sha256 of the matrix as stored
    sa.Column("distances", sa.Text),  # JSON records from, to, km
    sa.Column("criteria", sa.Text, nullable=False),  # JSON records of the canonical criteria
)


def stored_policy(text: str, source: str = "<policy>") -> Policy:
    """The policy the ledger keeps as TOML text (a batch's or a provisional coupling's)."""
    return Policy.from_dict(tomllib.loads(text), source=source)


def frame_to_json(df: pd.DataFrame) -> str:
    """A canonical frame as JSON records (missing values as null); strict JSON."""
    records = json.loads(df.to_json(orient="records", force_ascii=False))
    return json.dumps(records, ensure_ascii=False, allow_nan=False, sort_keys=False)


def frame_from_json(text: str, dtypes: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """The inverse of :func:`frame_to_json` for a canonical frame with ``dtypes``."""
    rows = json.loads(text) if text else []
    n = len(rows)
    return pd.DataFrame(
        {
            col: pd.array([r.get(col) for r in rows] if n else [], dtype=dtype)
            for col, dtype in dtypes
        },
        index=pd.RangeIndex(n),
    )


def _empty_criteria() -> pd.DataFrame:
    return frame_from_json("[]", CRITERIA_DTYPES)


@dataclass(frozen=True, eq=False)
class BatchContext:
    """The policy, agreements, distance matrix and hard criteria a batch was proposed with."""

    policy: Policy
    agreements: tuple[Agreement, ...]
    distances: pd.DataFrame | None
    distances_name: str | None
    distances_hash: str | None
    criteria: pd.DataFrame

    @property
    def effective_policy(self) -> Policy:
        """The policy with every agreement's ``[policy]`` keys merged in (in order)."""
        policy = self.policy
        for a in self.agreements:
            policy = a.apply_policy(policy)
        return policy

    @classmethod
    def of(
        cls, instance: Instance, policy: Policy, agreements: Iterable[Agreement] = ()
    ) -> BatchContext:
        """The context of a proposal about to be made from ``instance``."""
        d = instance.distances
        name = digest = None
        if d is not None and len(d):
            d = d[[c for c, _ in DISTANCE_DTYPES]].reset_index(drop=True)
            name = Path(instance.sources.get("distances", "distances")).name
            digest = hashlib.sha256(frame_to_json(d).encode()).hexdigest()
        else:
            d = None
        crit = instance.criteria
        crit = crit[[c for c, _ in CRITERIA_DTYPES if c in crit]].reset_index(drop=True)
        return cls(policy, tuple(agreements), d, name, digest, crit)

    # -- ledger ---------------------------------------------------------------------------------
    def save(self, conn: sa.Connection, batch_id: int) -> None:
        conn.execute(
            batch_context.insert().values(
                batch_id=batch_id,
                policy=self.policy.to_toml(),
                agreements=json.dumps(
                    [{"name": a.name, "source": a.source, "toml": a.text} for a in self.agreements]
                ),
                distances_name=self.distances_name,
                distances_hash=self.distances_hash,
                distances=None if self.distances is None else frame_to_json(self.distances),
                criteria=frame_to_json(self.criteria),
            )
        )

    @classmethod
    def load(cls, conn: sa.Connection, batch_id: int) -> BatchContext:
        """The stored context of a batch; a batch without one (made before contexts were stored,
        or a Kansrijk confirmation) is judged under the default policy with great-circle
        distance and its stored hard criteria."""
        row = conn.execute(
            sa.select(batch_context).where(batch_context.c.batch_id == batch_id)
        ).first()
        if row is None:
            return cls(Policy(), (), None, None, None, _stored_criteria(conn, batch_id))
        agreements = tuple(
            Agreement.from_text(a["toml"], a["source"], a["name"])
            for a in json.loads(row.agreements)
        )
        distances = (
            None if row.distances is None else frame_from_json(row.distances, DISTANCE_DTYPES)
        )
        if distances is not None:
            digest = hashlib.sha256(frame_to_json(distances).encode()).hexdigest()
            if digest != row.distances_hash:
                raise LedgerError(
                    f"batch {batch_id}: the stored distance matrix does not match its hash"
                )
        return cls(
            stored_policy(row.policy, f"batch {batch_id} policy"),
            agreements,
            distances,
            row.distances_name,
            row.distances_hash,
            frame_from_json(row.criteria, CRITERIA_DTYPES),
        )

    def describe(self) -> dict[str, Any]:
        """What an audit row or ``batch show`` says about the context."""
        p = self.effective_policy
        return {
            "radius_km": p.hard.radius_km,
            "distances": self.distances_name or "great circle",
            "distances_sha256": (self.distances_hash or "")[:16] or None,
            "agreements": [a.name for a in self.agreements],
        }

    # -- judging --------------------------------------------------------------------------------
    def instance(self, municipalities: pd.DataFrame, households: pd.DataFrame) -> Instance:
        """An instance of ``households`` (household_id, size) with the batch's criteria and
        distances, on ``municipalities`` (the period's scenario)."""
        hh = frame_from_json(
            frame_to_json(households[["household_id", "size"]].astype({"size": "int64"})),
            HOUSEHOLD_DTYPES,
        )
        ids = set(hh["household_id"])
        crit = self.criteria[self.criteria["household_id"].isin(ids)].reset_index(drop=True)
        return Instance(
            municipalities=municipalities,
            households=hh,
            criteria=crit,
            distances=self.distances,
        )

    def broken_kinds(
        self, municipalities: pd.DataFrame, plan: pd.DataFrame, policy: Policy | None = None
    ) -> dict[str, str]:
        """Household id -> ';'-joined kinds of the hard criteria its municipality breaks.

        ``plan`` has household_id, persons and municipality (a code; missing = uncoupled, which
        breaks nothing here). Yielded criteria of a conflict are not breaks. Uses
        :func:`coupler.criteria.hard_criteria` under the batch's policy and distances.
        """
        plan = plan[plan["municipality"].notna()]
        if plan.empty:
            return {}
        inst = self.instance(
            municipalities, plan.rename(columns={"persons": "size"})[["household_id", "size"]]
        )
        hard = hard_criteria(inst, policy or self.effective_policy)
        h = inst.household_index
        rows = plan["household_id"].map(h).to_numpy(dtype=np.int64)
        m = plan["municipality"].map(inst.code_index).to_numpy(dtype=np.int64)
        tab = hard.table
        active = tab[tab["hard"] & ~tab["yielded"]]
        where = np.full(inst.n_households, -1, dtype=np.int64)
        where[rows] = m
        chosen = where[active["household"].to_numpy(dtype=np.int64)]
        radius = (policy or self.effective_policy).hard.radius_km
        far = inst.distance_km[active["municipality"].to_numpy(dtype=np.int64), chosen] > (
            radius + 1e-9
        )
        broken = active[far]
        return (
            pd.Series(broken["kind"].to_numpy(), index=inst.household_ids[broken["household"]])
            .groupby(level=0, sort=False)
            .agg(";".join)
            .to_dict()
        )


def _stored_criteria(conn: sa.Connection, batch_id: int) -> pd.DataFrame:
    """The hard criteria the ledger's ``criteria`` table holds for a batch without a context.

    They were hard when the batch was planned, so they stay hard (hours and evidence filled in).
    """
    rows = conn.execute(
        sa.select(t.criteria.c.household_id, t.criteria.c.kind, t.criteria.c.municipality).where(
            (t.criteria.c.batch_id == batch_id) & t.criteria.c.hard
        )
    ).all()
    if not rows:
        return _empty_criteria()
    return frame_from_json(
        json.dumps(
            [
                {
                    "household_id": h,
                    "kind": k,
                    "municipality": m,
                    "hours_per_week": 40.0 if k == "work" else None,
                    "contract_signed": True if k == "work" else None,
                    "payslip_seen": True if k == "work" else None,
                }
                for h, k, m in rows
            ]
        ),
        CRITERIA_DTYPES,
    )


__all__ = ["BatchContext", "batch_context", "frame_from_json", "frame_to_json"]
