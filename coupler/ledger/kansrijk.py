"""Kansrijke Koppeling: provisional couplings before the permit (DOMAIN.md section 5).

Who counts as kansrijk is policy (the ``[kansrijk]`` table, :class:`~coupler.policy.KansrijkRules`):
a case is kansrijk when its nationality is on the policy's list ("evident kansrijk" on country
policy; a grant rate alone is not enough), its grant probability ``p`` (the ``grant_probability``
column, else the policy's table by ``nationality``) reaches the threshold, and no
contra-indication column (article 1F, national security, public order) says yes. Nationality is
used for this screening only: it is not passed to the optimiser, never enters a score and is not
stored in the ledger.

A provisional coupling is planned like a batch (the household's full size must fit the remaining
quota), but it **reserves** only its expected persons, ``p x persons``, at its municipality; every
later ``batch propose`` plans against the remaining quota minus these reservations. The whole
household (every canonical field: size, azc, education, preferences, network, ...) and its
criteria are stored with the policy, so a re-plan uses all of them. A household that changes
before the permit (size, criteria) is recorded with ``coupler kansrijk update``. When the permit
comes (``coupler kansrijk permit``; granted/verleend, refused/geweigerd):

* granted, the municipality still has room and the household's hard criteria still hold there:
  the coupling is confirmed and charged in full;
* granted otherwise: the reservation is released and the household is re-planned, as a proposed
  batch of kind ``replan`` that a regievoerder approves with ``coupler batch approve``;
* refused: the reservation is released.

``coupler kansrijk list`` shows where each provisional coupling stands.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from coupler import schema
from coupler.engine import solve
from coupler.errors import InputError, Problem
from coupler.io import Checker, load_criteria, load_households, read_table
from coupler.ledger import schema as t
from coupler.ledger.batches import open_batch, open_proposal, open_proposed_batch, source_rows
from coupler.ledger.context import BatchContext, frame_from_json, frame_to_json, stored_policy
from coupler.ledger.periods import period_total
from coupler.ledger.store import LedgerError, quota_state
from coupler.model import build_model
from coupler.policy import KansrijkRules, Policy
from coupler.scenario import load_instance, load_scenario
from coupler.schema import CRITERIA_DTYPES, HOUSEHOLD_DTYPES

provisional_context = sa.Table(
    "provisional_context",
    t.metadata,
    sa.Column("provisional_id", sa.Integer, sa.ForeignKey("provisional.id"), primary_key=True),
    sa.Column("household", sa.Text, nullable=False),  # JSON: the canonical household row
    sa.Column("criteria", sa.Text, nullable=False),  # JSON records: its canonical criteria
    sa.Column("policy", sa.Text, nullable=False),  # TOML of the policy it was planned under
    sa.Column("updated_at", sa.String(32)),
    sa.Column("updated_by", sa.String(64)),
)

#: Words of a permit decision, Dutch and English, -> granted | refused.
DECISION_WORDS = {
    "granted": "granted",
    "verleend": "granted",
    "toegekend": "granted",
    "ingewilligd": "granted",
    "refused": "refused",
    "geweigerd": "refused",
    "afgewezen": "refused",
    "rejected": "refused",
}


def _case_columns(rules: KansrijkRules) -> tuple[str, ...]:
    """Columns a Kansrijke Koppeling cases file carries beyond the households table."""
    return ("grant_probability", "nationality", *rules.contra_indications)


def screen(path: str | os.PathLike[str], rules: KansrijkRules) -> pd.DataFrame:
    """Who is kansrijk: household_id, probability (NaN when not needed) and status
    (``kansrijk`` | ``not-kansrijk`` (nationality not on the list) | ``contra-indication`` |
    ``below-threshold``). Errors name row and column, never the nationality."""
    file = os.fspath(path)
    columns = (*schema.HOUSEHOLD_REQUIRED, *schema.HOUSEHOLD_OPTIONAL, *_case_columns(rules))
    c = Checker(file, read_table(path, known=columns), personal=True)
    c.require(["household_id"])
    if not (c.has("grant_probability") or c.has("nationality")):
        c.add("needs a grant_probability or a nationality column for Kansrijke Koppeling")
    c.finish()
    ids = c.text("household_id", required=True)
    given = c.number("grant_probability", low=0, high=1)
    nationality = c.text("nationality")
    contra = {col: c.boolean(col) for col in rules.contra_indications if c.has(col)}
    known = ", ".join(sorted(rules.grant_probability))
    out: list[dict[str, Any]] = []
    for i, (row, h, p, nat) in enumerate(zip(c.rows, ids, given, nationality, strict=True)):
        if h is None:
            continue
        key = None if nat is None else nat.strip().casefold()
        if any(values[i] for values in contra.values()):
            status = "contra-indication"
        elif key is not None and key not in rules.nationalities:
            status = "not-kansrijk"
        else:
            status = "kansrijk"
        if p is None and key is not None:
            p = rules.grant_probability.get(key)
            if p is None and status == "kansrijk":
                # The nationality itself is not echoed (DOMAIN.md section 9).
                c.add(
                    f"nationality has no grant probability in the table (known: {known}); "
                    "give grant_probability",
                    row,
                    "nationality",
                )
                continue
        if p is None and status == "kansrijk":
            c.add("grant_probability or nationality is needed", row, "grant_probability")
            continue
        if status == "kansrijk" and p is not None and p < rules.min_probability:
            status = "below-threshold"
        out.append(
            {"household_id": h, "probability": np.nan if p is None else float(p), "status": status}
        )
    c.finish()
    return pd.DataFrame(out, columns=["household_id", "probability", "status"])


def grant_probabilities(path: str | os.PathLike[str], rules: KansrijkRules) -> pd.Series:
    """Household id -> grant probability (NaN where the case is not kansrijk and none is known)."""
    s = screen(path, rules)
    return pd.Series(s["probability"].to_numpy(), index=s["household_id"], dtype="float64")


def propose_provisional(
    ledger: Any,
    households: str | os.PathLike[str],
    criteria: str | os.PathLike[str] | None,
    *,
    rules: KansrijkRules | None = None,
    policy: Policy | None = None,
) -> pd.DataFrame:
    """Plan provisional couplings for cases in procedure and reserve their expected quota.

    ``rules`` default to ``policy.kansrijk``. Returns one row per case: household_id, persons,
    probability, municipality (None when not kansrijk or no room), reserved, status
    (``active`` | ``no-room`` | ``below-threshold`` | ``not-kansrijk`` | ``contra-indication``).
    """
    policy = policy or Policy()
    rules = rules or policy.kansrijk
    opening = open_proposal(ledger)
    period, state = opening.period, opening.state
    total = period_total(period)
    municipalities, _ = load_scenario(period.scenario, total)
    # The cases file also carries the columns grant_probabilities reads.
    hh = load_households(households, municipalities, ignore_columns=_case_columns(rules))
    cr = load_criteria(criteria, hh, municipalities) if criteria is not None else None
    screened = screen(households, rules).set_index("household_id")
    opening.refuse_taken(households, [str(h) for h in hh["household_id"]])
    status = hh["household_id"].map(screened["status"]).to_numpy(dtype=object)
    keep = status == "kansrijk"
    report = pd.DataFrame(
        {
            "household_id": hh["household_id"].astype(str),
            "persons": hh["size"].astype("int64"),
            "probability": hh["household_id"].map(screened["probability"]).to_numpy(float),
            "municipality": pd.Series([None] * len(hh), dtype="object"),
            "reserved": 0.0,
            "status": np.where(keep, "no-room", status),
        }
    )
    if keep.any():
        sub = hh[keep].reset_index(drop=True)
        sub_cr = cr[cr["household_id"].isin(sub["household_id"])] if cr is not None else None
        inst = load_instance(sub, sub_cr, scenario=period.scenario, total=total)
        remaining = pd.Series(state["remaining"].to_numpy(), index=state["municipality"]).reindex(
            inst.codes
        )
        if remaining.isna().any():
            raise InputError("the scenario's municipalities differ from the period's")
        model = build_model(inst.with_remaining(remaining.to_numpy(dtype=np.int64)), policy)
        result = solve(model).require_plan()
        where = result.plan.set_index("household_id")["municipality"]
        m = report["household_id"].map(where)
        placed = keep & m.notna().to_numpy()
        report.loc[placed, "municipality"] = m[placed]
        report.loc[placed, "status"] = "active"
        report.loc[placed, "reserved"] = (report["probability"] * report["persons"])[placed].round(
            6
        )
        crit = result.criteria
        stored_cr = inst.criteria
    policy_text = policy.to_toml()
    with ledger.write("kansrijk propose") as tx:
        conn = tx.conn
        if ledger.open_period(conn, lock=True).id != period.id:
            raise InputError("the open period changed meanwhile; run the command again")
        for r in report[report["status"] == "active"].itertuples(index=False):
            pid = conn.execute(
                t.provisional.insert().values(
                    household_id=r.household_id,
                    persons=int(r.persons),
                    probability=float(r.probability),
                    reserved=float(r.reserved),
                    municipality=r.municipality,
                    status="active",
                    created_at=tx.at,
                    created_by=tx.who,
                )
            ).inserted_primary_key[0]  # type: ignore[index, unused-ignore]
            conn.execute(
                provisional_context.insert().values(
                    provisional_id=pid,
                    household=frame_to_json(hh[hh["household_id"] == r.household_id]),
                    criteria=frame_to_json(stored_cr[stored_cr["household_id"] == r.household_id]),
                    policy=policy_text,
                )
            )
            rows = [
                {
                    "household_id": r.household_id,
                    "kind": c.kind,
                    "municipality": c.criterion_municipality,
                    "hard": bool(c.hard),
                    "provisional_id": pid,
                    "batch_id": None,
                }
                for c in crit[crit["household_id"] == r.household_id].itertuples(index=False)
            ]
            if rows:
                conn.execute(t.criteria.insert(), rows)
            tx.audit(
                "provisional",
                r.household_id,
                {
                    "municipality": r.municipality,
                    "probability": r.probability,
                    "reserved": r.reserved,
                },
            )
        tx.checkpoint("kansrijk")
        tx.audit("kansrijk-propose", period.name, report["status"].value_counts().to_dict())
    return report


def _stored(conn: sa.Connection, ids: list[int]) -> dict[int, sa.Row[Any]]:
    return {
        r.provisional_id: r
        for r in conn.execute(
            sa.select(provisional_context).where(provisional_context.c.provisional_id.in_(ids))
        )
    }


def _frames(stored: list[sa.Row[Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored households and criteria of some provisional couplings, canonical."""
    hh = pd.concat(
        [frame_from_json(s.household, HOUSEHOLD_DTYPES) for s in stored], ignore_index=True
    )
    cr = pd.concat(
        [frame_from_json(s.criteria, CRITERIA_DTYPES) for s in stored], ignore_index=True
    )
    return hh, cr


def _standing(
    conn: sa.Connection, period: Any, rows: list[sa.Row[Any]], stored: dict[int, sa.Row[Any]]
) -> pd.DataFrame:
    """Per active provisional coupling: room for the whole household at its municipality (its
    own reservation counted back) and the hard criteria its stored policy would break there."""
    if not rows:
        return pd.DataFrame(columns=["id", "room", "breaks"])
    state = quota_state(conn, period.id).set_index("municipality")
    room = state["available"] - state["reserved"]
    municipalities, _ = load_scenario(period.scenario, period_total(period))
    out = []
    for r in rows:
        s = stored.get(r.id)
        breaks = ""
        if s is not None:
            ctx = BatchContext(
                stored_policy(s.policy),
                (),
                None,
                None,
                None,
                frame_from_json(s.criteria, CRITERIA_DTYPES),
            )
            plan = pd.DataFrame(
                {
                    "household_id": [r.household_id],
                    "persons": [r.persons],
                    "municipality": [r.municipality],
                }
            )
            breaks = ctx.broken_kinds(municipalities, plan).get(r.household_id, "")
        fits = bool(room[r.municipality] + r.reserved >= r.persons - 1e-9)
        out.append({"id": r.id, "room": fits, "breaks": breaks})
    return pd.DataFrame(out)


def list_provisional(ledger: Any) -> pd.DataFrame:
    """Every provisional coupling and where it stands: status, municipality, reservation and,
    for active ones, whether the whole household still fits there and its criteria still hold
    (``stands``: what a granted permit would do now)."""
    with ledger.read() as conn:
        rows = list(conn.execute(sa.select(t.provisional).order_by(t.provisional.c.id)))
        stored = _stored(conn, [r.id for r in rows])
        active = [r for r in rows if r.status == "active"]
        standing = (
            _standing(conn, ledger.open_period(conn), active, stored).set_index("id")
            if active
            else pd.DataFrame(columns=["room", "breaks"])
        )
    out = []
    for r in rows:
        s = stored.get(r.id)
        line = {
            "id": r.id,
            "household_id": r.household_id,
            "persons": r.persons,
            "probability": r.probability,
            "reserved": r.reserved,
            "municipality": r.municipality,
            "status": r.status,
            "created_at": r.created_at,
            "updated_at": None if s is None else s.updated_at,
            "decided_at": r.decided_at,
            "stands": r.status,
        }
        if r.status == "active":
            room, breaks = standing.at[r.id, "room"], standing.at[r.id, "breaks"]
            line["stands"] = (
                "confirmable: room and criteria hold"
                if room and not breaks
                else "would be re-planned: "
                + "; ".join(
                    ([] if room else ["no room left"]) + ([f"breaks {breaks}"] if breaks else [])
                )
            )
        out.append(line)
    return pd.DataFrame(
        out,
        columns=[
            "id",
            "household_id",
            "persons",
            "probability",
            "reserved",
            "municipality",
            "status",
            "created_at",
            "updated_at",
            "decided_at",
            "stands",
        ],
    )


def update_provisional(
    ledger: Any,
    households: str | os.PathLike[str],
    criteria: str | os.PathLike[str] | None = None,
    *,
    reason: str | None = None,
) -> pd.DataFrame:
    """Record changed households (size, any field) and, with ``criteria``, their new criteria
    before the permit. The reservation follows the new size (p x persons). Returns
    household_id, persons_before, persons, criteria_before, criteria."""
    with ledger.read() as conn:
        period = ledger.open_period(conn)
    municipalities, _ = load_scenario(period.scenario, period_total(period))
    hh = load_households(households, municipalities, ignore_columns=_case_columns(KansrijkRules()))
    cr = load_criteria(criteria, hh, municipalities) if criteria is not None else None
    with ledger.write("kansrijk update") as tx:
        conn = tx.conn
        active = {
            r.household_id: r
            for r in conn.execute(
                sa.select(t.provisional).where(t.provisional.c.status == "active")
            )
        }
        ids = [str(h) for h in hh["household_id"]]
        unknown = [i for i, h in enumerate(ids) if h not in active]
        if unknown:
            rows = source_rows(households, len(ids))
            raise InputError(
                [
                    Problem(
                        str(households),
                        "this household has no active provisional coupling",
                        row=rows[i],
                        column="household_id",
                    )
                    for i in unknown
                ]
            )
        stored = _stored(conn, [active[h].id for h in hh["household_id"]])
        out = []
        for h in hh["household_id"]:
            pv = active[h]
            before = stored.get(pv.id)
            old_cr = (
                frame_from_json(before.criteria, CRITERIA_DTYPES)
                if before is not None
                else frame_from_json("[]", CRITERIA_DTYPES)
            )
            new_cr = cr[cr["household_id"] == h] if cr is not None else old_cr
            row = hh[hh["household_id"] == h]
            persons = int(row["size"].iloc[0])
            reserved = round(float(pv.probability) * persons, 6)
            conn.execute(
                t.provisional.update()
                .where(t.provisional.c.id == pv.id)
                .values(persons=persons, reserved=reserved)
            )
            values = {
                "household": frame_to_json(row),
                "criteria": frame_to_json(new_cr),
                "updated_at": tx.at,
                "updated_by": tx.who,
            }
            if before is None:
                conn.execute(
                    provisional_context.insert().values(
                        provisional_id=pv.id, policy=Policy().to_toml(), **values
                    )
                )
            else:
                conn.execute(
                    provisional_context.update()
                    .where(provisional_context.c.provisional_id == pv.id)
                    .values(**values)
                )
            change = {
                "household_id": h,
                "persons_before": int(pv.persons),
                "persons": persons,
                "criteria_before": len(old_cr),
                "criteria": len(new_cr),
            }
            tx.audit(
                "provisional-update",
                h,
                {k: v for k, v in change.items() if k != "household_id"},
                reason,
            )
            out.append(change)
    return pd.DataFrame(out)


def permit(
    ledger: Any, decisions: str | os.PathLike[str], *, policy: Policy | None = None
) -> pd.DataFrame:
    """Settle provisional couplings when the IND decides: confirm, re-plan or release.

    ``decisions`` is a table with ``household_id`` and ``decision`` (granted | refused, or in
    Dutch verleend | geweigerd). A granted coupling is confirmed when its municipality still has
    room for the whole household and its hard criteria still hold there (under the policy it was
    planned with); otherwise it is re-planned from its stored household and criteria. ``policy``
    only serves couplings stored without one. Returns one row per decision: household_id,
    decision, outcome (confirmed | replan | refused), municipality and, for re-planned
    households, the batch holding the new proposal.
    """
    file = os.fspath(decisions)
    c = Checker(file, read_table(decisions, known=("household_id", "decision")), personal=True)
    c.require(["household_id", "decision"])
    c.finish()
    ids = c.text("household_id", required=True)
    c.unique(ids, "household_id", lambda k: "a second decision for the same household")
    words = c.choice("decision", tuple(DECISION_WORDS), required=True)
    verdict = [None if w is None else DECISION_WORDS[w] for w in words]
    with ledger.read() as conn:
        active = {
            r.household_id: r
            for r in conn.execute(
                sa.select(t.provisional).where(t.provisional.c.status == "active")
            )
        }
        period = ledger.open_period(conn)
    for row, h in zip(c.rows, ids, strict=True):
        if h is not None and h not in active:
            c.add("this household has no active provisional coupling", row, "household_id")
    c.finish()
    digest = hashlib.sha256(Path(decisions).read_bytes()).hexdigest()
    fallback = (policy or Policy()).to_toml()
    with ledger.write("kansrijk permit") as tx:
        conn = tx.conn
        period = ledger.open_period(conn, lock=True)
        state = quota_state(conn, period.id).set_index("municipality")
        stored = _stored(conn, [active[h].id for h in ids if h is not None])
        standing = _standing(
            conn, period, [active[h] for h in ids if h is not None], stored
        ).set_index("id")
        # Room for a confirmation: what approvals may charge, minus the other reservations there.
        room = state["available"] - state["reserved"]
        report: list[dict[str, Any]] = []
        confirmed: list[tuple[Any, str]] = []
        replan: list[Any] = []
        for h, v in zip(ids, verdict, strict=True):
            pv = active[h]
            room[pv.municipality] += pv.reserved  # its own reservation is released either way
            if v == "refused":
                conn.execute(
                    t.provisional.update()
                    .where(t.provisional.c.id == pv.id)
                    .values(status="refused", decided_at=tx.at)
                )
                report.append(
                    {"household_id": h, "decision": v, "outcome": "refused", "municipality": None}
                )
            elif room[pv.municipality] >= pv.persons - 1e-9 and not standing.at[pv.id, "breaks"]:
                room[pv.municipality] -= pv.persons
                confirmed.append((pv, pv.municipality))
            else:
                replan.append(pv)

        def frames(pvs: list[Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
            have = [stored[p.id] for p in pvs if p.id in stored]
            hh, cr = (
                _frames(have)
                if have
                else (
                    frame_from_json("[]", HOUSEHOLD_DTYPES),
                    frame_from_json("[]", CRITERIA_DTYPES),
                )
            )
            bare = [p for p in pvs if p.id not in stored]  # stored before contexts existed
            if bare:
                extra = frame_from_json(
                    json.dumps(
                        [{"household_id": p.household_id, "size": int(p.persons)} for p in bare]
                    ),
                    HOUSEHOLD_DTYPES,
                )
                hh = pd.concat([hh, extra], ignore_index=True)
            # The household's current size is the provisional row's (kansrijk update keeps both).
            size = {p.household_id: int(p.persons) for p in pvs}
            hh["size"] = hh["household_id"].map(size).astype("int64")
            return hh, cr

        def policy_of(pv: Any) -> str:
            s = stored.get(pv.id)
            return fallback if s is None else str(s.policy)

        if confirmed:
            pvs = [p for p, _ in confirmed]
            bid = open_batch(
                tx,
                period.id,
                kind="kansrijk",
                checksum=f"confirm:{digest[:56]}",  # batches.checksum is String(64)
                status="approved",
                households=len(confirmed),
                persons=sum(int(p.persons) for p in pvs),
            )
            hh, cr = frames(pvs)
            inst = load_instance(hh, cr, scenario=period.scenario, total=period_total(period))
            BatchContext.of(inst, stored_policy(policy_of(pvs[0]))).save(conn, bid)
            for pv, mun in confirmed:
                cid = conn.execute(
                    t.couplings.insert().values(
                        batch_id=bid,
                        household_id=pv.household_id,
                        persons=int(pv.persons),
                        proposed=mun,
                        municipality=mun,
                        status="approved",
                        decided_at=tx.at,
                        decided_by=tx.who,
                    )
                ).inserted_primary_key[0]  # type: ignore[index, unused-ignore]
                conn.execute(
                    t.charges.insert().values(
                        period_id=period.id,
                        municipality=mun,
                        persons=int(pv.persons),
                        source="kansrijk",
                        coupling_id=cid,
                        at=tx.at,
                    )
                )
                conn.execute(
                    t.provisional.update()
                    .where(t.provisional.c.id == pv.id)
                    .values(status="confirmed", coupling_id=cid, decided_at=tx.at)
                )
                conn.execute(
                    t.criteria.update()
                    .where(t.criteria.c.provisional_id == pv.id)
                    .values(batch_id=bid)
                )
                report.append(
                    {
                        "household_id": pv.household_id,
                        "decision": "granted",
                        "outcome": "confirmed",
                        "municipality": mun,
                    }
                )
        # One re-plan batch per policy the households were planned under.
        groups: dict[str, list[Any]] = {}
        for pv in replan:
            groups.setdefault(policy_of(pv), []).append(pv)
        for n, (text, pvs) in enumerate(groups.items()):
            pol = stored_policy(text)
            hh, cr = frames(pvs)
            inst = load_instance(hh, cr, scenario=period.scenario, total=period_total(period))
            rem = np.floor(room.clip(lower=0) + 1e-9).reindex(inst.codes)
            if rem.isna().any():
                raise LedgerError("the scenario's municipalities differ from the period's")
            model = build_model(inst.with_remaining(rem.to_numpy(dtype=np.int64)), pol)
            result = solve(model).require_plan()
            bid = open_proposed_batch(
                tx,
                period.id,
                result,
                BatchContext.of(inst, pol),
                kind="replan",
                checksum=f"replan:{digest[:48]}:{n}",
            )
            where = result.plan.set_index("household_id")["municipality"]
            for pv in pvs:
                conn.execute(
                    t.provisional.update()
                    .where(t.provisional.c.id == pv.id)
                    .values(status="replanned", decided_at=tx.at)
                )
                mun = where.get(pv.household_id)
                report.append(
                    {
                        "household_id": pv.household_id,
                        "decision": "granted",
                        "outcome": "replan",
                        "municipality": None if pd.isna(mun) else mun,
                        "batch": bid,
                        "why": "; ".join(
                            ([] if standing.at[pv.id, "room"] else ["no room left"])
                            + (
                                [f"breaks {standing.at[pv.id, 'breaks']}"]
                                if standing.at[pv.id, "breaks"]
                                else []
                            )
                        )
                        or "no room left",
                    }
                )
        tx.checkpoint("permit")
        for r in report:
            tx.audit(
                f"permit-{r['outcome']}",
                r["household_id"],
                {"municipality": r["municipality"], "batch": r.get("batch")},
            )
    return pd.DataFrame(report)
