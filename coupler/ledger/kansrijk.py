"""Kansrijke Koppeling: provisional couplings before the permit (DOMAIN.md section 5).

A case still in procedure carries a grant probability ``p``: from a ``grant_probability`` column
in the households file or, where that is empty, from a configurable table by ``nationality``
(illustrative defaults from DOMAIN.md: 2023 grant rates Syria 0.82, Yemen 0.87, Turkey 0.68).
Nationality is used for this probability only: it is not passed to the optimiser, never enters a
score and is not stored in the ledger.

A provisional coupling is planned like a batch (the household's full size must fit the remaining
quota), but it **reserves** only its expected persons, ``p x persons``, at its municipality; every
later ``batch propose`` plans against the remaining quota minus these reservations. When the
permit comes (``coupler kansrijk permit``):

* granted and the municipality still has room: the coupling is confirmed and charged in full;
* granted but no room any more: the reservation is released and the household is re-planned, as
  a proposed batch of kind ``replan`` that a regievoerder approves with ``coupler batch approve``;
* refused: the reservation is released.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from coupler import schema
from coupler.errors import InputError, PolicyError, Problem
from coupler.io import Checker, load_criteria, load_households, read_table
from coupler.ledger.solving import solve_batch as solve
from coupler.model import build_model
from coupler.policy import Policy
from coupler.scenario import load_instance, load_scenario

#: The columns a cases file carries beyond the households table.
_CASE_COLUMNS = ("grant_probability", "nationality")

#: 2023 grant rates (DOMAIN.md section 5), lower-case nationality -> probability. Illustrative.
DEFAULT_GRANT_PROBABILITY: Mapping[str, float] = {"syria": 0.82, "yemen": 0.87, "turkey": 0.68}


@dataclass(frozen=True)
class KansrijkRules:
    """Grant probabilities by nationality and the threshold for "evident kansrijk"."""

    grant_probability: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_GRANT_PROBABILITY)
    )
    min_probability: float = 0.5

    def __post_init__(self) -> None:
        bad = [
            f"kansrijk grant_probability {k} must be in [0, 1]; got {v!r}"
            for k, v in self.grant_probability.items()
            if not 0 <= v <= 1
        ]
        if not 0 <= self.min_probability <= 1:
            bad.append(f"kansrijk min_probability must be in [0, 1]; got {self.min_probability!r}")
        if bad:
            raise PolicyError([Problem("<kansrijk rules>", m) for m in bad])
        object.__setattr__(
            self,
            "grant_probability",
            {k.strip().casefold(): float(v) for k, v in self.grant_probability.items()},
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KansrijkRules:
        """Read the ``[kansrijk]`` table of a TOML file::

        [kansrijk]
        min_probability = 0.6
        [kansrijk.grant_probability]
        syria = 0.82
        yemen = 0.87
        eritrea = 0.75
        """
        name = Path(path).name
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("kansrijk", {})
        except FileNotFoundError:
            raise PolicyError(Problem(name, "file not found")) from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(Problem(name, f"is not valid TOML: {exc}")) from None
        unknown = sorted(set(raw) - {"grant_probability", "min_probability"})
        if unknown:
            raise PolicyError(Problem(name, f"unknown key [kansrijk] {unknown[0]}"))
        try:
            kwargs: dict[str, Any] = {}
            if "grant_probability" in raw:
                kwargs["grant_probability"] = {
                    str(k): float(v) for k, v in raw["grant_probability"].items()
                }
            if "min_probability" in raw:
                kwargs["min_probability"] = float(raw["min_probability"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise PolicyError(
                Problem(name, f"[kansrijk] has a value of the wrong type: {exc}")
            ) from None
        try:
            return cls(**kwargs)
        except PolicyError as exc:
            raise PolicyError([Problem(name, p.message) for p in exc.problems]) from None


def grant_probabilities(path: str | os.PathLike[str], rules: KansrijkRules) -> pd.Series:
    """Household id -> grant probability from ``grant_probability`` or else ``nationality``."""
    file = os.fspath(path)
    columns = (*schema.HOUSEHOLD_REQUIRED, *schema.HOUSEHOLD_OPTIONAL, *_CASE_COLUMNS)
    c = Checker(file, read_table(path, known=columns), personal=True)
    c.require(["household_id"])
    if not (c.has("grant_probability") or c.has("nationality")):
        c.add("needs a grant_probability or a nationality column for Kansrijke Koppeling")
    c.finish()
    ids = c.text("household_id", required=True)
    given = c.number("grant_probability", low=0, high=1)
    nationality = c.text("nationality")
    known = ", ".join(sorted(rules.grant_probability))
    out: dict[str, float] = {}
    for row, h, p, nat in zip(c.rows, ids, given, nationality, strict=True):
        if h is None:
            continue
        if p is None and nat is not None:
            p = rules.grant_probability.get(nat.strip().casefold())
            if p is None:
                # The nationality itself is not echoed (DOMAIN.md section 9).
                c.add(
                    f"nationality has no grant probability in the table (known: {known}); "
                    "give grant_probability",
                    row,
                    "nationality",
                )
                continue
        if p is None:
            c.add("grant_probability or nationality is needed", row, "grant_probability")
            continue
        out[h] = float(p)
    c.finish()
    return pd.Series(out, dtype="float64")


def propose_provisional(
    ledger: Any,
    households: str | os.PathLike[str],
    criteria: str | os.PathLike[str] | None,
    *,
    rules: KansrijkRules | None = None,
    policy: Policy | None = None,
) -> pd.DataFrame:
    """Plan provisional couplings for cases in procedure and reserve their expected quota.

    Returns one row per case: household_id, persons, probability, municipality (None when not
    kansrijk or no room), reserved, status (``active`` | ``below-threshold`` | ``no-room``).
    """
    from coupler.ledger import schema as t
    from coupler.ledger.batches import active_provisional, coupled_households
    from coupler.ledger.store import quota_state

    rules = rules or KansrijkRules()
    policy = policy or Policy()
    with ledger.read() as conn:
        period = ledger.open_period(conn)
        state = quota_state(conn, period.id)
        done = coupled_households(conn)
        active = active_provisional(conn)
    municipalities, _ = load_scenario(period.scenario, period.total)
    # The cases file also carries the columns grant_probabilities reads.
    hh = load_households(households, municipalities, ignore_columns=_CASE_COLUMNS)
    cr = load_criteria(criteria, hh, municipalities) if criteria is not None else None
    prob = grant_probabilities(households, rules)
    clash = [
        Problem(
            str(households),
            f"household '{h}' is already coupled or provisionally coupled",
            column="household_id",
        )
        for h in hh["household_id"]
        if h in done or h in active
    ]
    if clash:
        raise InputError(clash)
    p = hh["household_id"].map(prob).to_numpy(dtype=np.float64)
    keep = p >= rules.min_probability
    report = pd.DataFrame(
        {
            "household_id": hh["household_id"].astype(str),
            "persons": hh["size"].astype("int64"),
            "probability": p,
            "municipality": pd.Series([None] * len(hh), dtype="object"),
            "reserved": 0.0,
            "status": np.where(keep, "no-room", "below-threshold"),
        }
    )
    if keep.any():
        sub = hh[keep].reset_index(drop=True)
        sub_cr = cr[cr["household_id"].isin(sub["household_id"])] if cr is not None else None
        inst = load_instance(sub, sub_cr, scenario=period.scenario, total=period.total)
        remaining = pd.Series(state["remaining"].to_numpy(), index=state["municipality"]).reindex(
            inst.codes
        )
        if remaining.isna().any():
            raise InputError("the scenario's municipalities differ from the period's")
        result = solve(build_model(inst.with_remaining(remaining.to_numpy(dtype=np.int64)), policy))
        where = result.plan.set_index("household_id")["municipality"]
        m = report["household_id"].map(where)
        placed = keep & m.notna().to_numpy()
        report.loc[placed, "municipality"] = m[placed]
        report.loc[placed, "status"] = "active"
        report.loc[placed, "reserved"] = (report["probability"] * report["persons"])[placed].round(
            6
        )
        crit = result.criteria
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
            ).inserted_primary_key[0]
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


def permit(
    ledger: Any, decisions: str | os.PathLike[str], *, policy: Policy | None = None
) -> pd.DataFrame:
    """Settle provisional couplings when the IND decides: confirm, re-plan or release.

    ``decisions`` is a table with ``household_id`` and ``decision`` (granted | refused).
    Returns one row per decision: household_id, decision, outcome (confirmed | replan | refused),
    municipality and, for re-planned households, the batch holding the new proposal.
    """
    from coupler.ledger import schema as t
    from coupler.ledger.batches import _insert_plan
    from coupler.ledger.store import LedgerError, quota_state

    policy = policy or Policy()
    file = os.fspath(decisions)
    c = Checker(file, read_table(decisions, known=("household_id", "decision")), personal=True)
    c.require(["household_id", "decision"])
    c.finish()
    ids = c.text("household_id", required=True)
    c.unique(ids, "household_id", lambda k: f"a second decision for household '{k}'")
    verdict = c.choice("decision", ("granted", "refused"), required=True)
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
            c.add(f"household '{h}' has no active provisional coupling", row, "household_id")
    c.finish()
    digest = hashlib.sha256(Path(decisions).read_bytes()).hexdigest()
    with ledger.write("kansrijk permit") as tx:
        conn = tx.conn
        period = ledger.open_period(conn, lock=True)
        state = quota_state(conn, period.id).set_index("municipality")
        # Room for a confirmation: what approvals may charge, minus the other reservations there.
        room = state["available"] - state["reserved"]
        report = []
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
            elif room[pv.municipality] >= pv.persons - 1e-9:
                room[pv.municipality] -= pv.persons
                confirmed.append((pv, pv.municipality))
            else:
                replan.append(pv)
        if confirmed:
            bid = conn.execute(
                t.batches.insert().values(
                    period_id=period.id,
                    kind="kansrijk",
                    checksum=f"confirm:{digest}",
                    status="approved",
                    households=len(confirmed),
                    persons=sum(int(p.persons) for p, _ in confirmed),
                    created_at=tx.at,
                    created_by=tx.who,
                    decided_at=tx.at,
                    decided_by=tx.who,
                )
            ).inserted_primary_key[0]
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
                ).inserted_primary_key[0]
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
        if replan:
            ids_r = [p.household_id for p in replan]
            crit = pd.DataFrame(
                conn.execute(
                    sa.select(
                        t.criteria.c.household_id, t.criteria.c.kind, t.criteria.c.municipality
                    ).where(
                        t.criteria.c.provisional_id.in_([p.id for p in replan]) & t.criteria.c.hard
                    )
                ).all(),
                columns=["household_id", "kind", "municipality"],
            )
            hh = pd.DataFrame(
                {
                    "household_id": pd.array(ids_r, dtype="string"),
                    "size": [int(p.persons) for p in replan],
                }
            )
            cr = pd.DataFrame(
                {
                    "household_id": pd.array(crit["household_id"], dtype="string"),
                    "kind": pd.array(crit["kind"], dtype="string"),
                    "municipality": pd.array(crit["municipality"], dtype="string"),
                    # Stored criteria were hard when planned: they stay hard.
                    "hours_per_week": pd.array([40.0] * len(crit), dtype="Float64"),
                    "contract_signed": pd.array([True] * len(crit), dtype="boolean"),
                    "payslip_seen": pd.array([True] * len(crit), dtype="boolean"),
                }
            )
            inst = load_instance(hh, cr, scenario=period.scenario, total=period.total)
            rem = np.floor(room.clip(lower=0) + 1e-9).reindex(inst.codes)
            if rem.isna().any():
                raise LedgerError("the scenario's municipalities differ from the period's")
            result = solve(build_model(inst.with_remaining(rem.to_numpy(dtype=np.int64)), policy))
            bid = conn.execute(
                t.batches.insert().values(
                    period_id=period.id,
                    kind="replan",
                    checksum=f"replan:{digest}",
                    status="proposed",
                    households=len(replan),
                    persons=sum(int(p.persons) for p in replan),
                    summary=pd.Series(result.to_json()).to_json(),
                    created_at=tx.at,
                    created_by=tx.who,
                )
            ).inserted_primary_key[0]
            _insert_plan(tx, bid, result)
            where = result.plan.set_index("household_id")["municipality"]
            for pv in replan:
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
