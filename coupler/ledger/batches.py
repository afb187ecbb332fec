"""Monthly batches: propose against the remaining quota with pacing, approve, export.

Pacing (docs/ledger.md): a period of K months should not be used up early. In month k a batch may
fill municipality m only up to a cumulative monthly fill target::

    cumulative[m] = ceil((1 + slack) * k / K * target[m])
    paced[m] = min(remaining[m], max(0, cumulative[m] - coupled[m] - reserved[m]))

(``target`` = quota + backlog). The engine then fills these paced capacities, balancing fill with
its own fill-balance penalty. Pacing never costs a hard criterion or an uncoupled person: when the
paced plan breaks more hard criteria or leaves more persons uncoupled than a plan against the full
remaining quota, the full plan is proposed instead and the batch records that pacing yielded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from coupler.agreements import Agreement, build_variant
from coupler.engine import solve
from coupler.errors import InputError, Problem
from coupler.excel import write_xlsx
from coupler.instance import Instance
from coupler.io import read_table
from coupler.jsonsafe import dumps
from coupler.ledger import explanations
from coupler.ledger import schema as t
from coupler.ledger.context import BatchContext
from coupler.ledger.periods import period_total
from coupler.ledger.store import Ledger, LedgerError, Tx, quota_state, select_frame
from coupler.policy import Policy
from coupler.result import Result
from coupler.rundir import write_file
from coupler.scenario import load_instance, load_scenario

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Pacing:
    """How a batch paces the period's quota: cumulative target (1 + slack) * month / months."""

    enabled: bool = True
    slack: float = 0.25
    month: int | None = None  # None: the number of approved batches so far + 1

    def factor(self, month: int, months: int) -> float:
        if not self.enabled:
            return math.inf
        return (1.0 + self.slack) * month / months


def paced_remaining(state: pd.DataFrame, factor: float) -> np.ndarray:
    """Capacity per municipality for this batch under the cumulative fill target ``factor``."""
    remaining = state["remaining"].to_numpy(dtype=np.int64)
    if not math.isfinite(factor):
        return remaining
    target = state["target"].clip(lower=0).to_numpy(dtype=np.float64)
    used = state["coupled"].to_numpy(dtype=np.float64) + state["reserved"].to_numpy(
        dtype=np.float64
    )
    cum = np.ceil(factor * target - 1e-9)
    paced = np.floor(cum - used + 1e-9).clip(min=0).astype(np.int64)
    return np.minimum(remaining, paced)


def _checksum(
    period: str,
    inst: Instance,
    policy: Policy,
    pacing: Pacing,
    month: int,
    agreements: Sequence[Agreement] = (),
) -> str:
    digest = inst.checksum()
    payload = {
        "period": period,
        "households": digest["households"],
        "criteria": digest["criteria"],
        "scores": digest.get("scores", ""),
        "locks": digest.get("locks", ""),
        "policy": policy.to_dict(),
        "pacing": [pacing.enabled, pacing.slack, month],
        "distances": digest.get("distances", ""),
        "agreements": [a.text for a in agreements],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _align(inst: Instance, state: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Ledger values (ordered by code) aligned to the instance's municipalities, by label."""
    series = pd.Series(values, index=state["municipality"].to_numpy())
    codes = pd.Index(inst.codes)
    missing = codes.difference(series.index)
    extra = series.index.difference(codes)
    if len(missing) or len(extra):
        raise LedgerError(
            "the scenario's municipalities differ from the period's "
            f"({len(missing)} unknown to the ledger, {len(extra)} missing from the scenario); "
            "use the scenario the period was opened with"
        )
    return series.reindex(codes).to_numpy()


def coupled_households(conn: sa.Connection) -> dict[str, int]:
    """Household id -> batch id of every approved coupling."""
    q = sa.select(t.couplings.c.household_id, t.couplings.c.batch_id).where(
        t.couplings.c.status == "approved"
    )
    return {h: b for h, b in conn.execute(q).all()}


def active_provisional(conn: sa.Connection) -> set[str]:
    q = sa.select(t.provisional.c.household_id).where(t.provisional.c.status == "active")
    return {h for (h,) in conn.execute(q).all()}


def _approved_batches(conn: sa.Connection, period_id: int) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                (t.batches.c.period_id == period_id)
                & (t.batches.c.status == "approved")
                & (t.batches.c.kind == "batch")
            )
        ).scalar_one()
    )


def source_rows(source: PathLike | pd.DataFrame, n: int) -> list[int]:
    """The spreadsheet row (header = row 1) of each of the ``n`` rows read from ``source``.

    A file is read again for its row numbers (blank rows are skipped, as when it was loaded); a
    frame's rows are numbered as if it were written out with a header (position + 2).
    """
    if not isinstance(source, pd.DataFrame):
        rows = [int(r) for r in read_table(source).index]
        if len(rows) == n:
            return rows
    return list(range(2, n + 2))


@dataclass(frozen=True)
class Opening:
    """What a proposal starts from: the open period, its quota state and who is taken already."""

    period: sa.Row[Any]
    state: pd.DataFrame  # quota_state of the period
    coupled: dict[str, int]  # household id -> batch id of its approved coupling
    provisional: set[str]  # household ids with an active provisional coupling
    approved_batches: int  # approved batches (kind "batch") of the period so far

    def refuse_taken(self, source: PathLike | pd.DataFrame, ids: Sequence[str]) -> None:
        """Refuse households already coupled or provisionally coupled.

        Raises
        ------
        InputError
            One problem per such household, naming ``source``, its row and the column
            ``household_id``, never the id itself.
        """
        taken = [i for i, h in enumerate(ids) if h in self.coupled or h in self.provisional]
        if not taken:
            return
        file = str(source) if not isinstance(source, pd.DataFrame) else "households"
        rows = source_rows(source, len(ids))
        problems = []
        for i in taken:
            h = ids[i]
            message = (
                f"this household is already coupled (batch {self.coupled[h]})"
                if h in self.coupled
                else "this household has a provisional coupling; settle it with "
                "`coupler kansrijk permit`"
            )
            problems.append(Problem(file, message, row=rows[i], column="household_id"))
        raise InputError(problems)


def open_proposal(ledger: Ledger) -> Opening:
    """Read what a proposal (a batch or Kansrijke Koppelingen) starts from, in one read."""
    with ledger.read() as conn:
        period = ledger.open_period(conn)
        return Opening(
            period,
            quota_state(conn, period.id),
            coupled_households(conn),
            active_provisional(conn),
            _approved_batches(conn, period.id),
        )


def open_batch(
    tx: Tx,
    period_id: int,
    *,
    kind: str,
    checksum: str,
    status: str,
    households: int,
    persons: int,
    **values: Any,
) -> int:
    """Insert a batch row of the period, created by the command's user now; its id.

    An ``approved`` batch is decided at once (by the same user, at the same time); ``values``
    are the other columns (month, pacing, summary).
    """
    decided = {"decided_at": tx.at, "decided_by": tx.who} if status == "approved" else {}
    return int(
        tx.conn.execute(
            t.batches.insert().values(
                period_id=period_id,
                kind=kind,
                checksum=checksum,
                status=status,
                households=households,
                persons=persons,
                created_at=tx.at,
                created_by=tx.who,
                **decided,
                **values,
            )
        ).inserted_primary_key[0]  # type: ignore[index, unused-ignore]
    )


def open_proposed_batch(
    tx: Tx,
    period_id: int,
    result: Result,
    context: BatchContext,
    *,
    kind: str,
    checksum: str,
    **values: Any,
) -> int:
    """Open a proposed batch: its row, its couplings and criteria (``result``) and the context
    it was made with; its id."""
    plan = result.plan
    batch_id = open_batch(
        tx,
        period_id,
        kind=kind,
        checksum=checksum,
        status="proposed",
        households=len(plan),
        persons=int(plan["persons"].sum()),
        summary=dumps(result.to_json()),
        **values,
    )
    _insert_plan(tx, batch_id, result)
    context.save(tx.conn, batch_id)
    return batch_id


@dataclass(frozen=True)
class Proposal:
    batch_id: int
    created: bool  # False: the same proposal was already in the ledger
    result: Result | None
    month: int
    paced: bool
    summary: dict[str, Any]


def propose(
    ledger: Ledger,
    households: PathLike | pd.DataFrame,
    criteria: PathLike | pd.DataFrame | None,
    *,
    policy: Policy | None = None,
    pacing: Pacing | None = None,
    scores: PathLike | None = None,
    locks: PathLike | None = None,
    distances: PathLike | None = None,
    agreements: Sequence[Agreement] = (),
    progress: Any = None,
) -> Proposal:
    """Propose a coupling of a batch against the remaining (paced) quota of the open period.

    ``agreements`` are applied as ``coupler compare`` tests them
    (:func:`coupler.agreements.build_variant`). The batch stores its policy, distance matrix,
    agreements and hard criteria (:class:`~coupler.ledger.context.BatchContext`); approval and
    later decisions judge it with exactly those. The same input (households, criteria, policy,
    distances, agreements, pacing, month) proposed twice in a period returns the batch already
    in the ledger and changes nothing.
    """
    policy = policy or Policy()
    pacing = pacing or Pacing()
    opening = open_proposal(ledger)
    period, state = opening.period, opening.state
    month = pacing.month or min(opening.approved_batches + 1, period.months)
    if not 1 <= month <= period.months:
        raise LedgerError(f"--month must be between 1 and {period.months}; got {month}")
    inst = load_instance(
        households,
        criteria,
        scenario=period.scenario,
        total=period_total(period),
        scores=scores,
        locks=locks,
        distances=distances,
    )
    context = BatchContext.of(inst, policy, agreements)
    checksum = _checksum(period.name, inst, policy, pacing, month, agreements)

    with ledger.read() as conn:
        existing = conn.execute(
            sa.select(t.batches).where(
                (t.batches.c.period_id == period.id) & (t.batches.c.checksum == checksum)
            )
        ).first()
    if existing is not None:
        return Proposal(
            existing.id,
            False,
            None,
            month,
            bool(json.loads(existing.pacing or "{}").get("paced")),
            json.loads(existing.summary or "{}"),
        )
    opening.refuse_taken(households, [str(h) for h in inst.household_ids])

    full = _align(inst, state, state["remaining"].to_numpy(dtype=np.int64))
    factor = pacing.factor(month, period.months)
    paced = _align(inst, state, paced_remaining(state, factor))
    used_pacing = math.isfinite(factor)
    yielded = False
    paced_error = None
    # One model (with the batch's agreements); the paced and the full solve differ only in
    # capacities.
    model = build_variant(inst.with_remaining(full), policy, tuple(agreements))
    paced_model = model.with_capacity(paced)
    result, chosen = solve(paced_model, progress=progress), paced_model
    if not result.has_plan:
        if not used_pacing or not (paced < full).any():
            result.require_plan()
        # The paced capacities are too tight for a plan: the batch uses the full quota instead.
        paced_error = str(result.info.get("message", result.status))
        result, chosen = solve(model, progress=progress).require_plan(), model
        used_pacing, yielded = False, True
    if used_pacing and (result.broken_persons or result.uncoupled_persons) and (paced < full).any():
        unpaced = solve(model, progress=progress)
        if unpaced.has_plan and (unpaced.uncoupled_persons, unpaced.broken_persons) < (
            result.uncoupled_persons,
            result.broken_persons,
        ):
            result, chosen, used_pacing, yielded = unpaced, model, False, True
    summary = result.to_json()
    pacing_info = {
        "paced": used_pacing,
        "factor": factor if math.isfinite(factor) else None,
        "slack": pacing.slack,
        "yielded": yielded,
        "month": month,
    }
    if paced_error:
        pacing_info["paced_error"] = paced_error
    plan = result.plan
    with ledger.write("batch propose") as tx:
        conn = tx.conn
        period_now = ledger.open_period(conn, lock=True)
        if period_now.id != period.id:
            raise LedgerError("the open period changed while proposing; run the command again")
        again = conn.execute(
            sa.select(t.batches.c.id).where(
                (t.batches.c.period_id == period.id) & (t.batches.c.checksum == checksum)
            )
        ).first()
        if again is not None:
            return Proposal(again.id, False, None, month, used_pacing, summary)
        batch_id = open_proposed_batch(
            tx,
            period.id,
            result,
            context,
            kind="batch",
            checksum=checksum,
            month=month,
            pacing=json.dumps(pacing_info),
        )
        explanations.record(tx, batch_id, chosen, result)
        tx.checkpoint("propose")
        tx.audit(
            "propose",
            f"batch {batch_id}",
            {
                "households": len(plan),
                "persons": int(plan["persons"].sum()),
                "coupled_persons": int(plan.loc[plan["coupled"], "persons"].sum()),
                "broken_persons": result.broken_persons,
                "checksum": checksum[:16],
                **context.describe(),
                **pacing_info,
            },
        )
    return Proposal(batch_id, True, result, month, used_pacing, summary)


def _insert_plan(tx: Tx, batch_id: int, result: Result) -> None:
    plan = result.plan
    rows = [
        {
            "batch_id": batch_id,
            "household_id": str(r.household_id),
            "persons": int(r.persons),
            "proposed": None if pd.isna(r.municipality) else str(r.municipality),
            "municipality": None if pd.isna(r.municipality) else str(r.municipality),
            "status": "proposed" if r.coupled else "uncoupled",
            "broken": r.broken or None,
            "score": float(r.score),
        }
        for r in plan.itertuples(index=False)
    ]
    if rows:
        tx.conn.execute(t.couplings.insert(), rows)
    crit = result.criteria
    crows = [
        {
            "batch_id": batch_id,
            "household_id": str(r.household_id),
            "kind": str(r.kind),
            "municipality": str(r.criterion_municipality),
            "hard": bool(r.hard),
        }
        for r in crit.itertuples(index=False)
    ]
    if crows:
        tx.conn.execute(t.criteria.insert(), crows)


def _latest_batch(conn: sa.Connection, period_id: int, status: str) -> int:
    row = conn.execute(
        sa.select(t.batches.c.id)
        .where((t.batches.c.period_id == period_id) & (t.batches.c.status == status))
        .order_by(t.batches.c.id.desc())
    ).first()
    if row is None:
        raise LedgerError(f"the open period has no {status} batch")
    return int(row.id)


def batch_couplings(conn: sa.Connection, batch_id: int, *columns: str) -> pd.DataFrame:
    """The couplings of a batch, in the order they were proposed, with ``columns``."""
    return select_frame(
        conn,
        sa.select(*(t.couplings.c[c] for c in columns))
        .where(t.couplings.c.batch_id == batch_id)
        .order_by(t.couplings.c.id),
    )


def batch_table(ledger: Ledger, batch_id: int | None = None) -> tuple[sa.Row[Any], pd.DataFrame]:
    """A batch (the latest proposed or else approved one by default) and its couplings."""
    with ledger.read() as conn:
        if batch_id is None:
            period = ledger.open_period(conn)
            try:
                batch_id = _latest_batch(conn, period.id, "proposed")
            except LedgerError:
                batch_id = _latest_batch(conn, period.id, "approved")
        batch = conn.execute(sa.select(t.batches).where(t.batches.c.id == batch_id)).first()
        if batch is None:
            raise LedgerError(f"no batch {batch_id} in the ledger")
        rows = batch_couplings(
            conn,
            batch_id,
            "household_id",
            "persons",
            "proposed",
            "municipality",
            "status",
            "broken",
            "score",
            "reason",
        )
    return batch, rows


#: Usual short names of municipalities whose CBS name differs (issue 13).
SHORT_NAMES: dict[str, str] = {
    "den haag": "'s-Gravenhage",
    "den bosch": "'s-Hertogenbosch",
    "nuenen": "Nuenen, Gerwen en Nederwetten",
    "bergen nh": "Bergen (NH.)",
    "bergen l": "Bergen (L.)",
}


def municipality_code(ref: str, names: pd.Series) -> str | None:
    """The code of a municipality given by code, name or usual short name (any case), else None.

    ``names`` is indexed by code (e.g. ``quota_state(...).set_index("municipality")["name"]``).
    """
    text = " ".join(ref.split())
    if text.upper() in names.index:
        return text.upper()
    key = text.casefold().replace(".", "").replace("(", "").replace(")", "")
    text = SHORT_NAMES.get(key, text)
    hit = names.index[names.str.casefold() == text.casefold()]
    return str(hit[0]) if len(hit) else None


def _count(n: int, noun: str) -> str:
    """``1 household``, ``3 households``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _parse_overrides(overrides: dict[str, str], names: pd.Series) -> dict[str, str]:
    out = {}
    for household, ref in overrides.items():
        c = municipality_code(ref, names)
        if c is None:
            # The municipality is no personal value; the household (typed by the user) is.
            raise LedgerError(
                f"--override: unknown municipality '{ref[:40]}' for a household you gave"
            )
        out[household.strip()] = c
    return out


def approve(
    ledger: Ledger,
    batch_id: int | None = None,
    *,
    overrides: dict[str, str] | None = None,
    reason: str | None = None,
    reasons: dict[str, str] | None = None,
    expect: str | None = None,
) -> dict[str, Any]:
    """Approve a proposed batch in one transaction, charging each coupling to the period's quota.

    Overriding a proposal, or approving a coupling that breaks a hard criterion, needs a reason:
    the household's own in ``reasons`` or else the batch's ``reason``; both are written to the
    audit log. Hard criteria are judged with the batch's own context (policy, distances,
    agreements): a reason is asked, and stored, only for the couplings that break one or override
    the proposal. The reviewers' pending overrides of the batch (review screen,
    :mod:`coupler.ledger.explanations`) are applied with their own reasons; ``overrides`` given
    here take precedence. With ``expect`` (a :func:`coupler.ledger.explanations.batch_hash`),
    nothing is approved when the batch changed since that hash was taken. Nothing is approved
    when any municipality's quota would be exceeded (the check runs inside the transaction, after
    taking the write lock).
    """
    overrides = overrides or {}
    reasons = {h: r.strip() for h, r in (reasons or {}).items() if r and r.strip()}
    batch_reason = reason.strip() if reason and reason.strip() else None
    unexplained = [h for h in overrides if h.strip() not in reasons]
    if unexplained and not batch_reason:
        raise LedgerError(
            "--override needs --reason: an override of the proposal is recorded with its reason"
        )
    with ledger.write("batch approve") as tx:
        conn = tx.conn
        period, batch = _proposed_batch(ledger, conn, batch_id, "approved")
        batch_id = int(batch.id)
        if expect is not None:
            if explanations.batch_hash(conn, batch_id) != expect:
                raise LedgerError(
                    f"batch {batch_id} changed since the review workbook was exported; "
                    "export it again and re-enter the decisions"
                )
        state = quota_state(conn, period.id).set_index("municipality")
        pending = explanations.pending_overrides(conn, batch_id)
        over = dict(zip(pending["household_id"], pending["municipality"], strict=True))
        reasons = {**dict(zip(pending["household_id"], pending["reason"], strict=True)), **reasons}
        over.update(_parse_overrides(overrides, state["name"]))
        plan = batch_couplings(
            conn, batch_id, "id", "household_id", "persons", "municipality", "status", "broken"
        )
        unknown = set(over) - set(plan["household_id"])
        if unknown:
            # The ids were typed by the user: say how many, never which (no personal value).
            raise LedgerError(
                f"--override: {_count(len(unknown), 'household')} you gave "
                f"{'is' if len(unknown) == 1 else 'are'} not in batch {batch_id}"
            )
        for h, code in over.items():
            plan.loc[plan["household_id"] == h, ["municipality", "status"]] = [code, "proposed"]
        coupled = plan[plan["status"] == "proposed"].copy()
        done = coupled_households(conn)
        again = [h for h in coupled["household_id"] if h in done]
        if again:
            batches = ", ".join(str(b) for b in sorted({done[h] for h in again}))
            raise LedgerError(
                f"{_count(len(again), 'household')} of batch {batch_id} "
                f"{'was' if len(again) == 1 else 'were'} coupled meanwhile (in batch {batches}); "
                "propose the rest again"
            )
        # Every coupling as it will be approved, judged with the batch's own context.
        context = BatchContext.load(conn, batch_id)
        municipalities, _ = load_scenario(period.scenario, period_total(period))
        broken = context.broken_kinds(municipalities, coupled)
        why_not_given = [h for h in broken if h not in reasons]
        if why_not_given and not batch_reason:
            n = len(why_not_given)
            raise LedgerError(
                f"{_count(n, 'coupling')} of batch {batch_id} "
                f"{'breaks' if n == 1 else 'break'} a hard criterion; approving "
                f"{'it' if n == 1 else 'them'} needs --reason (see `coupler batch show "
                f"{batch_id}`)"
            )
        need = coupled.groupby("municipality")["persons"].sum()
        avail = state["available"].reindex(need.index)
        short = need[need > avail]
        if len(short):
            worst = (need - avail)[short.index].sort_values(ascending=False)
            items = ", ".join(
                f"{c} ({state.at[c, 'name']}): {int(max(avail[c], 0))} left, needs {int(need[c])}"
                for c in worst.index[:5]
            )
            raise LedgerError(
                f"approving batch {batch_id} would exceed the quota of {len(short)} municipalities "
                f"[{items}]; nothing was approved. "
                "Propose the batch again against the remaining quota"
            )
        tx.checkpoint("approve-before")
        updates = [
            {
                "cid": int(r.id),
                "mun": r.municipality,
                "brk": broken.get(r.household_id),
                "why": reasons.get(r.household_id, batch_reason)
                if (r.household_id in over or r.household_id in broken)
                else None,
            }
            for r in coupled.itertuples(index=False)
        ]
        if updates:
            conn.execute(
                t.couplings.update()
                .where(t.couplings.c.id == sa.bindparam("cid"))
                .values(
                    municipality=sa.bindparam("mun"),
                    status="approved",
                    broken=sa.bindparam("brk"),
                    reason=sa.bindparam("why"),
                    decided_at=tx.at,
                    decided_by=tx.who,
                ),
                updates,
            )
        tx.checkpoint("approve")
        charge_rows = [
            {
                "period_id": period.id,
                "municipality": r.municipality,
                "persons": int(r.persons),
                "source": "approve",
                "coupling_id": int(r.id),
                "at": tx.at,
            }
            for r in coupled.itertuples(index=False)
        ]
        if charge_rows:
            conn.execute(t.charges.insert(), charge_rows)
        conn.execute(
            t.batches.update()
            .where(t.batches.c.id == batch_id)
            .values(status="approved", decided_at=tx.at, decided_by=tx.who)
        )
        # Pending overrides are now part of the couplings (and the audit).
        conn.execute(
            explanations.review_overrides.delete().where(
                explanations.review_overrides.c.batch_id == batch_id
            )
        )
        for h, code in over.items():
            tx.audit(
                "override",
                h,
                {"batch": batch_id, "to": code, "breaks": broken.get(h), **context.describe()},
                reasons.get(h, batch_reason),
            )
        for h, kinds in broken.items():
            if h not in over:
                tx.audit(
                    "approve-broken",
                    h,
                    {"batch": batch_id, "broken": kinds},
                    reasons.get(h, batch_reason),
                )
        summary = {
            "batch": batch_id,
            "households": len(coupled),
            "persons": int(coupled["persons"].sum()),
            "uncoupled_households": int((plan["status"] == "uncoupled").sum()),
            "overrides": len(over),
            "broken": len(broken),
            **context.describe(),
        }
        tx.audit("approve", f"batch {batch_id}", summary, reason)
    return summary


def _proposed_batch(
    ledger: Ledger, conn: sa.Connection, batch_id: int | None, verb: str
) -> tuple[sa.Row[Any], sa.Row[Any]]:
    """(open period, locked; the proposed batch ``batch_id`` of it, the latest by default)."""
    period = ledger.open_period(conn, lock=True)
    if batch_id is None:
        batch_id = _latest_batch(conn, period.id, "proposed")
    batch = conn.execute(sa.select(t.batches).where(t.batches.c.id == batch_id)).first()
    if batch is None:
        raise LedgerError(f"no batch {batch_id} in the ledger")
    if batch.period_id != period.id:
        raise LedgerError(f"batch {batch_id} belongs to another period than the open one")
    if batch.status != "proposed":
        raise LedgerError(
            f"batch {batch_id} is {batch.status}; only a proposed batch can be {verb}"
        )
    return period, batch


def withdraw(ledger: Ledger, batch_id: int | None = None, *, reason: str | None = None) -> int:
    """Withdraw a proposed batch (the latest by default): it can no longer be approved.

    Its households may be proposed again. Returns the batch id.
    """
    with ledger.write("batch withdraw") as tx:
        conn = tx.conn
        _, batch = _proposed_batch(ledger, conn, batch_id, "withdrawn")
        batch_id = int(batch.id)
        conn.execute(
            t.batches.update()
            .where(t.batches.c.id == batch_id)
            .values(status="withdrawn", decided_at=tx.at, decided_by=tx.who)
        )
        conn.execute(
            t.couplings.update()
            .where(t.couplings.c.batch_id == batch_id)
            .values(status="withdrawn")
        )
        tx.audit("withdraw", f"batch {batch_id}", {"households": batch.households}, reason)
    return int(batch_id)


def progress_table(
    ledger: Ledger, period: str | None = None
) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """Quota progress per municipality and per province, as provinces report it."""
    with ledger.read() as conn:
        p = ledger.period(conn, period)
        q = quota_state(conn, p.id, reserve=p.status == "open")
    m = pd.DataFrame(
        {
            "period": p.name,
            "code": q["municipality"],
            "municipality": q["name"],
            "province": q["province"],
            "quota": q["quota"],
            "backlog": q["backlog"],
            "target": q["target"],
            "coupled": q["coupled"],
            "reserved": q["reserved"].round(2),
            "remaining": q["target"] - q["coupled"],
        }
    )
    m["fill"] = (m["coupled"] / m["target"].where(m["target"] > 0)).round(4)
    prov = m.groupby("province", sort=True)[
        ["quota", "backlog", "target", "coupled", "reserved", "remaining"]
    ].sum()
    prov["municipalities_behind"] = (
        m[m["remaining"] > 0].groupby("province").size().reindex(prov.index).fillna(0).astype(int)
    )
    prov["fill"] = (prov["coupled"] / prov["target"].where(prov["target"] > 0)).round(4)
    prov = prov.reset_index()
    prov.insert(0, "period", p.name)
    return p.name, m, prov


def write_export(
    path: Path, municipalities: pd.DataFrame, provinces: pd.DataFrame, level: str
) -> None:
    """Write the progress table atomically: CSV (one level) or Excel (both sheets)."""
    if path.suffix.lower() == ".xlsx":
        sheets = {"municipalities": municipalities, "provinces": provinces}
        write_file(path, lambda tmp: write_xlsx(sheets, tmp))
    else:
        write_file(path, provinces if level == "province" else municipalities)
