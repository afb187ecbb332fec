"""Omkoppeling: re-coupling approved households near a new job (DOMAIN.md section 6).

A batch of requests is read from one table (columns below), each request is checked against every
rule with a pass/fail and a reason, and the eligible ones are placed **jointly** within
``radius_km`` of the job: a small assignment MIP (solved by coupler's MIP backend) that moves as
many persons as the quotas allow, keeping the household's other hard criteria (medical, family,
study) where it can, nearest to the job first. Distances, radius and criteria are those of the
batch that coupled the household (:class:`~coupler.ledger.context.BatchContext`).

Nothing moves at once: each move is a **proposal** with its rule verdicts and the verdict on every
other hard criterion at the new municipality. A regievoerder approves it
(``coupler omkoppel approve ID``; a reason is required when the move breaks a criterion) or
rejects it (``coupler omkoppel reject ID --reason``). An approved move releases the household's
persons at the old municipality and charges them at the new one, in the open period; every other
coupling stays as it is. ``--dry-run`` shows the proposals without writing anything.

Requests file, one row per request (yes/no columns accept the words of ``coupler.schema``)::

    request_id                   unique id of the request
    household_id                 pseudonymous id of a household with an approved coupling
    job_municipality             municipality of the job (code or CBS name)
    job_type                     kind of work, e.g. "welding", "cleaning"
    matches_education            yes/no: the job matches the person's education exactly
    matches_experience           yes/no: the job matches earlier work exactly
    available_in_current_region  yes/no: such jobs can be found in the current region
    contract_signed              yes/no
    monthly_salary               euros per month, on the basis of the configured bijstandsnorm
    contract_months              duration of the contract in months
    contract_year                year the contract starts (selects the bijstandsnorm)
    payslip_seen                 yes/no: COA has seen the latest payslip
    reba_paid                    yes/no: the person pays the reception contribution (Reba)
    housing_offered              yes/no: the household has been offered housing
    inburgering_started          yes/no: civic integration has started

When the ledger has housing events for the household (coupler.ledger.housing), its dates decide
``housing_offered`` and ``inburgering_started`` instead of these two columns.

The rules' parameters live in :class:`OmkoppelRules` (a TOML ``[omkoppeling]`` table).

The rules' parameters live in the policy's ``[omkoppeling]`` table
(:class:`~coupler.policy.OmkoppelRules`): gate, radius, contract months, bijstandsnorm per year and
the excluded job types (Dutch and English).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sqlalchemy as sa

from coupler.criteria import hard_criteria
from coupler.engine.backends import get_backend
from coupler.engine.base import MipProblem
from coupler.errors import InputError, Problem
from coupler.io import Checker, Places, read_table
from coupler.ledger.context import BatchContext
from coupler.ledger.periods import period_total
from coupler.ledger.store import LedgerError, quota_state
from coupler.policy import OmkoppelRules
from coupler.scenario import load_scenario

#: Rules in the order they are reported.
RULES = (
    "timing",
    "job_match",
    "scarce_in_region",
    "contract_signed",
    "salary",
    "contract_duration",
    "payslip_seen",
    "reba_paid",
    "job_type",
)

REQUEST_COLUMNS = (
    "request_id",
    "household_id",
    "job_municipality",
    "job_type",
    "matches_education",
    "matches_experience",
    "available_in_current_region",
    "contract_signed",
    "monthly_salary",
    "contract_months",
    "contract_year",
    "payslip_seen",
    "reba_paid",
    "housing_offered",
    "inburgering_started",
)
_BOOLEAN = (
    "matches_education",
    "matches_experience",
    "available_in_current_region",
    "contract_signed",
    "payslip_seen",
    "reba_paid",
    "housing_offered",
    "inburgering_started",
)


def load_requests(
    path: str | os.PathLike[str],
    municipalities: pd.DataFrame,
    rules: OmkoppelRules,
    coupled: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Read and validate an omkoppeling requests file (columns: module docstring).

    ``coupled`` maps household ids with an approved coupling to anything; a request for another
    household is an error. Returns one row per request with a ``row`` column (spreadsheet row).
    """
    file = os.fspath(path)
    table = read_table(path, known=REQUEST_COLUMNS)
    c = Checker(file, table, personal=True)
    c.require(REQUEST_COLUMNS)
    if c.problems:
        c.finish()
    places = Places(municipalities)
    ids = c.text("request_id", required=True)
    # The requests file is personal: messages name row and column, never a cell.
    c.unique(ids, "request_id", lambda k: "duplicate request_id")
    households = c.text("household_id", required=True)
    c.unique(households, "household_id", lambda k: "a second request for the same household")
    if coupled is not None:
        for row, h in zip(c.rows, households, strict=True):
            if h is not None and h not in coupled:
                c.add("the household has no approved coupling in the ledger", row, "household_id")
    columns: dict[str, list[Any]] = {
        "row": list(c.rows),
        "request_id": ids,
        "household_id": households,
        "job_municipality": c.municipality("job_municipality", places, required=True),
        "job_type": [
            None if v is None else v.casefold() for v in c.text("job_type", required=True)
        ],
        "monthly_salary": c.number("monthly_salary", low=0, required=True),
        "contract_months": c.number("contract_months", low=0, required=True),
        "contract_year": c.number("contract_year", whole=True, low=2000, high=2100, required=True),
    }
    for col in _BOOLEAN:
        values = c.boolean(col)
        for row, v, text in zip(c.rows, values, c.cells(col), strict=True):
            if v is None and not text:
                c.add(f"{col} must be yes or no; it is empty", row, col)
        columns[col] = values
    known = ", ".join(str(y) for y in sorted(rules.bijstandsnorm))
    for row, year in zip(c.rows, columns["contract_year"], strict=True):
        if year is not None and year not in rules.bijstandsnorm:
            c.add(
                f"no bijstandsnorm configured for this contract_year (configured: {known})",
                row,
                "contract_year",
            )
    c.finish()
    return pd.DataFrame(columns)


def check_request(r: Mapping[str, Any], rules: OmkoppelRules) -> dict[str, tuple[bool, str]]:
    """Every rule of DOMAIN.md section 6 for one request: rule -> (passed, reason)."""
    out: dict[str, tuple[bool, str]] = {}
    housing, inburgering = bool(r["housing_offered"]), bool(r["inburgering_started"])
    state = (
        f"housing {'offered' if housing else 'not offered'}, "
        f"inburgering {'started' if inburgering else 'not started'}"
        f" per the {r.get('timing_source') or 'request file'}"
    )
    if rules.gate == "and":
        ok = not housing and not inburgering
        need = "gate 'and': allowed only before housing is offered and before inburgering starts"
    else:
        ok = not housing or not inburgering
        need = "gate 'or': allowed while housing is not offered or inburgering has not started"
    out["timing"] = (ok, f"{state} ({need})")
    edu, exp = bool(r["matches_education"]), bool(r["matches_experience"])
    out["job_match"] = (
        edu or exp,
        "job matches " + ("education" if edu else "earlier work")
        if edu or exp
        else "job matches neither the education nor earlier work",
    )
    elsewhere = bool(r["available_in_current_region"])
    out["scarce_in_region"] = (
        not elsewhere,
        "such jobs can be found in the current region"
        if elsewhere
        else "such jobs are not to be found in the current region",
    )
    out["contract_signed"] = (
        bool(r["contract_signed"]),
        "contract signed" if r["contract_signed"] else "no signed contract",
    )
    year = int(r["contract_year"])
    norm = rules.bijstandsnorm[year]
    ok = float(r["monthly_salary"]) >= norm
    out["salary"] = (
        ok,
        f"salary {'at least' if ok else 'below'} the bijstandsnorm {year} "
        f"(EUR {norm:,.2f} per month)",
    )
    months = float(r["contract_months"])
    ok = months >= rules.min_contract_months
    out["contract_duration"] = (
        ok,
        f"contract runs {months:g} months ({'>=' if ok else '<'} {rules.min_contract_months:g})",
    )
    out["payslip_seen"] = (
        bool(r["payslip_seen"]),
        "COA has seen the latest payslip"
        if r["payslip_seen"]
        else "COA has not seen the latest payslip",
    )
    out["reba_paid"] = (
        bool(r["reba_paid"]),
        "pays the reception contribution (Reba)" if r["reba_paid"] else "does not pay the Reba",
    )
    excluded = rules.excluded(str(r["job_type"]))
    out["job_type"] = (
        excluded is None,
        f"job type is excluded (matches '{excluded}' in the policy's list)"
        if excluded
        else "job type is not on the policy's excluded list",
    )
    return out


@dataclass(frozen=True)
class Move:
    """Where an eligible household goes: ``new`` municipality (None: no room within the radius)."""

    household_id: str
    old: str
    new: str | None
    distance_km: float | None


def recouple(
    eligible: pd.DataFrame,
    codes: np.ndarray,
    capacity: np.ndarray,
    job_km: np.ndarray,
    breaks: np.ndarray,
    radius_km: float | np.ndarray,
    *,
    backend: str = "highs",
) -> list[Move]:
    """Jointly place ``eligible`` households (household_id, persons, old) near their jobs.

    ``job_km[i, m]`` is the distance from household i's job to municipality m (in the household's
    batch's distances), ``breaks[i, m]`` whether m breaks one of its other hard criteria, and
    ``capacity[m]`` the persons m may still take. ``radius_km`` is one radius or one per
    household. A household whose old municipality lies within the radius of the job and breaks
    nothing stays. The others move to a municipality within its radius of the job; capacity counts the persons moving out, so two households may swap.
    In order: most persons moved, fewest households breaking another criterion, nearest to the
    job. A household with no room stays where it is (``new`` None).
    """
    index = {c: i for i, c in enumerate(codes)}
    cap = np.asarray(capacity, dtype=np.float64)
    e = eligible.reset_index(drop=True)
    old = e["old"].map(index).to_numpy(dtype=np.int64)
    persons = e["persons"].to_numpy(dtype=np.float64)
    rows = np.arange(len(e))
    radius = np.broadcast_to(np.asarray(radius_km, dtype=np.float64), (len(e),))
    d_old = job_km[rows, old]
    moves: list[Move | None] = [None] * len(e)
    stay = (d_old <= radius + 1e-9) & ~breaks[rows, old]
    for i in np.flatnonzero(stay):
        moves[i] = Move(e.at[i, "household_id"], e.at[i, "old"], e.at[i, "old"], float(d_old[i]))
    todo = np.flatnonzero(~stay)
    if len(todo):
        dist = job_km[todo]
        r = radius[todo]
        hh, mm = np.nonzero(dist <= r[:, None] + 1e-9)
        n_x, n_s = len(hh), len(todo)
        # Lexicographic weights: distance terms sum to < 1 per household, so one avoided break
        # (n_s + 1) outweighs them all, and one person moved outweighs every break.
        b = n_s + 1.0
        w = b * (n_s + 1.0)
        c = np.concatenate(
            [
                w * persons[todo][hh] - b * breaks[todo][hh, mm] - dist[hh, mm] / r[hh] / n_s,
                np.zeros(n_s),
            ]
        )
        # One row per household: its pairs plus its stay column sum to 1.
        assign = sp.csr_matrix(
            (np.ones(n_x + n_s), (np.concatenate([hh, np.arange(n_s)]), np.arange(n_x + n_s))),
            shape=(n_s, n_x + n_s),
        )
        # Capacity: persons moving in + persons staying at m <= capacity + persons of movers from m.
        out_of = old[todo]
        capacity_rows = sp.csr_matrix(
            (
                np.concatenate([persons[todo][hh], persons[todo]]),
                (np.concatenate([mm, out_of]), np.arange(n_x + n_s)),
            ),
            shape=(len(codes), n_x + n_s),
        )
        released = np.bincount(out_of, weights=persons[todo], minlength=len(codes))
        A = sp.vstack([assign, capacity_rows]).tocsr()
        problem = MipProblem(
            c=c,
            A=A,
            row_lo=np.concatenate([np.ones(n_s), np.full(len(codes), -np.inf)]),
            row_hi=np.concatenate([np.ones(n_s), np.maximum(cap, 0) + released]),
            col_lo=np.zeros(n_x + n_s),
            col_hi=np.ones(n_x + n_s),
            integer=np.ones(n_x + n_s, dtype=bool),
        )
        sol = get_backend(backend).solve(problem, time_limit=30.0, gap=0.0, seed=0)
        if sol.x is None:  # cannot happen: staying put is always feasible
            raise InputError("the omkoppeling assignment found no solution")
        x = sol.x[:n_x] > 0.5
        for k, i in enumerate(todo):
            chosen = mm[x & (hh == k)]
            if len(chosen):
                m = int(chosen[0])
                moves[i] = Move(
                    e.at[i, "household_id"], e.at[i, "old"], str(codes[m]), float(dist[k, m])
                )
            else:
                moves[i] = Move(e.at[i, "household_id"], e.at[i, "old"], None, None)
    return [m for m in moves if m is not None]


def _criteria_verdicts(
    context: BatchContext, municipalities: pd.DataFrame, household: pd.DataFrame
) -> tuple[np.ndarray, list[tuple[str, str, np.ndarray]], np.ndarray]:
    """(distances, [(kind, code, km to every municipality)] of the household's other binding
    hard criteria, radius-break mask over municipalities) under the batch's context.

    Work criteria are left out: the new job replaces the job the household had.
    """
    inst = context.instance(municipalities, household)
    policy = context.effective_policy
    hard = hard_criteria(inst, policy)
    t = hard.table
    rows = t[t["hard"] & ~t["yielded"] & (t["kind"] != "work")]
    D = inst.distance_km
    out = [
        (str(k), str(inst.codes[m]), D[m])
        for k, m in zip(rows["kind"], rows["municipality"], strict=True)
    ]
    breaks = np.zeros(inst.n_municipalities, dtype=bool)
    for _, _, km in out:
        breaks |= km > policy.hard.radius_km + 1e-9
    return D, out, breaks


def omkoppel(
    ledger: Any,
    requests: str | os.PathLike[str],
    rules: OmkoppelRules | None = None,
    *,
    dry_run: bool = False,
) -> pd.DataFrame:
    """Check a batch of omkoppeling requests and propose the eligible moves.

    Returns the report: one row per request with ``proposal`` (its id, None on a dry run or when
    nothing is proposed), ``eligible``, ``decision`` (``proposed`` | ``stays`` | ``no-room`` |
    ``rejected``), old and new municipality, the distance to the job, ``breaks`` (kinds of the
    household's other hard criteria the move would break, ';'-joined) with ``criteria`` (a
    verdict per criterion) and, per rule, ``<rule>`` (pass/fail) and ``<rule>_reason``.
    Nothing moves until :func:`decide` approves a proposal.
    """
    from coupler.ledger import schema as t
    from coupler.ledger.housing import ledger_timing

    rules = rules or OmkoppelRules()
    with ledger.read() as conn:
        period = ledger.open_period(conn)
    municipalities, _ = load_scenario(period.scenario, period_total(period))
    codes = municipalities["code"].astype(str).to_numpy()
    names = dict(zip(codes, municipalities["name"].astype(str), strict=True))
    index = {c: i for i, c in enumerate(codes)}

    def run(conn: sa.Connection, tx: Any) -> pd.DataFrame:
        rows = conn.execute(
            sa.select(
                t.couplings.c.id,
                t.couplings.c.batch_id,
                t.couplings.c.household_id,
                t.couplings.c.persons,
                t.couplings.c.municipality,
            ).where(t.couplings.c.status == "approved")
        ).all()
        coupled = {r.household_id: r for r in rows}
        req = load_requests(requests, municipalities, rules, coupled)
        # The ledger's housing dates, when recorded, outrank the request file's yes/no.
        known = ledger_timing(conn, [coupled[h].id for h in req["household_id"]])
        timing = [known.get(int(coupled[h].id)) for h in req["household_id"]]
        req["timing_source"] = ["ledger" if k else "request file" for k in timing]
        for j, col in enumerate(("housing_offered", "inburgering_started")):
            req[col] = [k[j] if k else v for k, v in zip(timing, req[col], strict=True)]
        done = {
            r
            for (r,) in conn.execute(
                sa.select(t.omkoppelingen.c.request_id).where(
                    t.omkoppelingen.c.request_id.in_(req["request_id"].tolist())
                )
            ).all()
        }
        pending = dict(
            conn.execute(
                sa.select(t.omkoppelingen.c.household_id, t.omkoppelingen.c.id).where(
                    t.omkoppelingen.c.decision == "proposed"
                )
            ).all()
        )
        # Rows and proposal numbers, never a request or household id (personal cells).
        file = os.fspath(requests)
        refused = [
            Problem(
                file,
                "this request was already decided; requests are decided once",
                row,
                "request_id",
            )
            for row, rid in zip(req["row"], req["request_id"], strict=True)
            if rid in done
        ] + [
            Problem(
                file,
                f"the household has omkoppeling proposal {pending[h]} awaiting a decision; "
                "approve or reject it first",
                row,
                "household_id",
            )
            for row, h in zip(req["row"], req["household_id"], strict=True)
            if h in pending
        ]
        if refused:
            raise InputError(sorted(refused, key=lambda p: p.row or 0))
        checks = [check_request(r, rules) for r in req.to_dict("records")]
        req["eligible"] = [all(ok for ok, _ in ch.values()) for ch in checks]
        req["persons"] = [int(coupled[h].persons) for h in req["household_id"]]
        req["old"] = [str(coupled[h].municipality) for h in req["household_id"]]
        contexts: dict[int, BatchContext] = {}
        job_km = np.zeros((len(req), len(codes)))
        breaks = np.zeros((len(req), len(codes)), dtype=bool)
        radius = np.zeros(len(req))
        verdicts: list[list[tuple[str, str, np.ndarray]]] = []
        for i, r in enumerate(req.to_dict("records")):
            c = coupled[r["household_id"]]
            if c.batch_id not in contexts:
                contexts[c.batch_id] = BatchContext.load(conn, c.batch_id)
            hh = pd.DataFrame({"household_id": [r["household_id"]], "size": [r["persons"]]})
            D, binding, brk = _criteria_verdicts(contexts[c.batch_id], municipalities, hh)
            job_km[i] = D[index[r["job_municipality"]]]
            breaks[i] = brk
            hard_radius = contexts[c.batch_id].effective_policy.hard.radius_km
            radius[i] = rules.radius_km or hard_radius
            verdicts.append(binding)
        state = quota_state(conn, period.id).set_index("municipality").reindex(codes)
        capacity = np.floor(state["available"] - state["reserved"] + 1e-9).clip(lower=0)
        elig = np.flatnonzero(req["eligible"].to_numpy(dtype=bool))
        moves = (
            {
                m.household_id: m
                for m in recouple(
                    req.iloc[elig],
                    codes,
                    capacity.to_numpy(),
                    job_km[elig],
                    breaks[elig],
                    radius[elig],
                )
            }
            if len(elig)
            else {}
        )
        report = []
        for i, (r, ch) in enumerate(zip(req.to_dict("records"), checks, strict=True)):
            move = moves.get(r["household_id"])
            if not r["eligible"]:
                decision, new, km = "rejected", None, None
            elif move is None or move.new is None:
                decision, new, km = "no-room", None, None
            elif move.new == move.old:
                decision, new, km = "stays", move.old, move.distance_km
            else:
                decision, new, km = "proposed", move.new, move.distance_km
            crit_radius = contexts[
                coupled[r["household_id"]].batch_id
            ].effective_policy.hard.radius_km
            crit: dict[str, dict[str, Any]] = {}
            broken: list[str] = []
            if new is not None:
                for kind, code, dist in verdicts[i]:
                    d = float(dist[index[new]])
                    ok = d <= crit_radius + 1e-9
                    crit[f"{kind}:{code}"] = {
                        "passed": ok,
                        "reason": f"{kind} {names[code]} is {d:.1f} km from {names[new]} "
                        f"({'within' if ok else 'beyond'} {crit_radius:g} km)",
                    }
                    if not ok:
                        broken.append(kind)
            detail: dict[str, Any] = {
                k: {"passed": ok, "reason": why} for k, (ok, why) in ch.items()
            }
            detail["criteria"] = crit
            proposal = None
            if tx is not None:
                proposal = conn.execute(
                    t.omkoppelingen.insert().values(
                        period_id=period.id,
                        request_id=r["request_id"],
                        household_id=r["household_id"],
                        coupling_id=int(coupled[r["household_id"]].id),
                        eligible=bool(r["eligible"]),
                        rules=json.dumps(detail, allow_nan=False),
                        decision=decision,
                        old_municipality=r["old"],
                        new_municipality=new,
                        job_municipality=r["job_municipality"],
                        distance_km=km,
                        at=tx.at,
                        by=tx.who,
                    )
                ).inserted_primary_key[0]  # type: ignore[index, unused-ignore]
                tx.audit(
                    f"omkoppel-{decision}",
                    r["household_id"],
                    {
                        "request": r["request_id"],
                        "proposal": proposal,
                        "from": r["old"],
                        "to": new,
                        "failed": [k for k, (ok, _) in ch.items() if not ok],
                        "breaks": ";".join(broken) or None,
                    },
                )
            line = {
                "proposal": proposal if decision == "proposed" else None,
                "request_id": r["request_id"],
                "household_id": r["household_id"],
                "eligible": bool(r["eligible"]),
                "decision": decision,
                "old_municipality": r["old"],
                "new_municipality": new,
                "job_municipality": r["job_municipality"],
                "distance_km": None if km is None else round(km, 1),
                "persons": r["persons"],
                "breaks": ";".join(broken),
                "criteria": "; ".join(v["reason"] for v in crit.values()),
            }
            for k, (passed, why) in ch.items():
                line[k] = "pass" if passed else "fail"
                line[f"{k}_reason"] = why
            report.append(line)
        out = pd.DataFrame(report)
        out["proposal"] = out["proposal"].astype("Int64")
        return out

    if dry_run:
        with ledger.read() as conn:
            return run(conn, None)
    with ledger.write("omkoppel") as tx:
        ledger.open_period(tx.conn, lock=True)
        report = run(tx.conn, tx)
        tx.checkpoint("omkoppel")
    return report


def decide(
    ledger: Any,
    proposals: list[int],
    *,
    approve: bool,
    reason: str | None = None,
    dry_run: bool = False,
) -> pd.DataFrame:
    """Approve or reject omkoppeling proposals in one transaction.

    Rejecting needs a ``reason``; approving needs one when the move breaks another hard
    criterion of the household. An approved move is re-checked (the coupling is still where it
    was, the new municipality still has room), then the coupling moves, the quota is released at
    the old municipality and charged at the new one, and the broken kinds and the reason are
    stored on the coupling. Returns one row per proposal: proposal, household_id, decision,
    old and new municipality, breaks.
    """
    from coupler.ledger import schema as t

    why = (reason or "").strip() or None
    if not approve and why is None:
        raise LedgerError("rejecting an omkoppeling needs --reason")

    def run(conn: sa.Connection, tx: Any) -> pd.DataFrame:
        period = ledger.open_period(conn, lock=tx is not None)
        rows = {
            r.id: r
            for r in conn.execute(
                sa.select(t.omkoppelingen).where(t.omkoppelingen.c.id.in_(proposals))
            )
        }
        missing = [p for p in proposals if p not in rows]
        if missing:
            raise LedgerError(f"no omkoppeling proposal {missing[0]} in the ledger")
        state = quota_state(conn, period.id).set_index("municipality")
        room = np.floor(state["available"] - state["reserved"] + 1e-9)
        out = []
        for pid in proposals:
            r = rows[pid]
            if r.decision != "proposed":
                raise LedgerError(f"omkoppeling {pid} is {r.decision}; only a proposal is decided")
            detail = json.loads(r.rules)
            broken = [
                k.split(":")[0] for k, v in detail.get("criteria", {}).items() if not v["passed"]
            ]
            if approve and broken and why is None:
                raise LedgerError(
                    f"omkoppeling {pid} breaks the household's {', '.join(broken)} criterion; "
                    "approving it needs --reason"
                )
            coupling = conn.execute(
                sa.select(t.couplings).where(t.couplings.c.id == r.coupling_id)
            ).one()
            decision = "recoupled" if approve else "declined"
            if approve:
                if coupling.status != "approved" or coupling.municipality != r.old_municipality:
                    raise LedgerError(
                        f"omkoppeling {pid}: the household's coupling changed since the proposal; "
                        "reject it and request again"
                    )
                if room[r.new_municipality] < coupling.persons:
                    raise LedgerError(
                        f"omkoppeling {pid}: {r.new_municipality} has no room left for the "
                        "household; nothing was changed"
                    )
                room[r.new_municipality] -= coupling.persons
                room[r.old_municipality] += coupling.persons
            if tx is not None:
                if approve:
                    conn.execute(
                        t.couplings.update()
                        .where(t.couplings.c.id == coupling.id)
                        .values(
                            municipality=r.new_municipality,
                            broken=";".join(broken) or None,
                            reason=why if broken else coupling.reason,
                        )
                    )
                    conn.execute(
                        t.charges.insert(),
                        [
                            {
                                "period_id": period.id,
                                "municipality": r.old_municipality,
                                "persons": -int(coupling.persons),
                                "source": "omkoppel",
                                "coupling_id": coupling.id,
                                "at": tx.at,
                            },
                            {
                                "period_id": period.id,
                                "municipality": r.new_municipality,
                                "persons": int(coupling.persons),
                                "source": "omkoppel",
                                "coupling_id": coupling.id,
                                "at": tx.at,
                            },
                        ],
                    )
                conn.execute(
                    t.omkoppelingen.update()
                    .where(t.omkoppelingen.c.id == pid)
                    .values(decision=decision)
                )
                tx.audit(
                    f"omkoppel-{'approve' if approve else 'reject'}",
                    r.household_id,
                    {
                        "proposal": pid,
                        "from": r.old_municipality,
                        "to": r.new_municipality,
                        "breaks": ";".join(broken) or None,
                    },
                    why,
                )
            out.append(
                {
                    "proposal": pid,
                    "household_id": r.household_id,
                    "decision": decision,
                    "old_municipality": r.old_municipality,
                    "new_municipality": r.new_municipality,
                    "breaks": ";".join(broken),
                }
            )
        return pd.DataFrame(out)

    if dry_run:
        with ledger.read() as conn:
            return run(conn, None)
    with ledger.write("omkoppel approve" if approve else "omkoppel reject") as tx:
        report = run(tx.conn, tx)
        tx.checkpoint("omkoppel-decide")
    return report
