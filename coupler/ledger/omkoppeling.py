"""Omkoppeling: re-coupling approved households near a new job (DOMAIN.md section 6).

A batch of requests is read from one table (columns below), each request is checked against every
rule with a pass/fail and a reason, and the eligible ones are re-coupled **jointly** within
``radius_km`` of the job: a small assignment MIP (solved by coupler's MIP backend) that moves as
many persons as the quotas allow, nearest to the job first. A move releases the household's persons
at the old municipality and charges them at the new one, in the open period; every other coupling
stays as it is.

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

The rules' parameters live in :class:`OmkoppelRules` (a TOML ``[omkoppeling]`` table).
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sqlalchemy as sa

from coupler.engine.backends import get_backend
from coupler.engine.base import MipProblem
from coupler.errors import InputError, PolicyError, Problem
from coupler.geo import haversine_km
from coupler.io import Checker, Places, read_table

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

#: ILLUSTRATIVE bijstandsnorm (social-assistance norm, single adult 21+, net euros per month incl.
#: holiday allowance, rounded). Replace with the official figures of the year in a rules file;
#: they change every January and July.
ILLUSTRATIVE_BIJSTANDSNORM: Mapping[int, float] = {2024: 1_340.0, 2025: 1_400.0, 2026: 1_440.0}


@dataclass(frozen=True)
class OmkoppelRules:
    """Parameters of the omkoppeling rules (DOMAIN.md section 6).

    ``gate``: ``"and"`` allows omkoppeling only before housing is offered **and** before
    inburgering has started (neither happened yet); ``"or"`` allows it while at least one of the
    two has not happened yet.
    """

    gate: str = "and"
    radius_km: float = 50.0
    min_contract_months: float = 6.0
    excluded_job_types: tuple[str, ...] = ("cleaning", "distribution")
    bijstandsnorm: Mapping[int, float] = field(
        default_factory=lambda: dict(ILLUSTRATIVE_BIJSTANDSNORM)
    )

    def __post_init__(self) -> None:
        p: list[str] = []
        if self.gate not in ("and", "or"):
            p.append(f"omkoppeling gate must be 'and' or 'or'; got {self.gate!r}")
        if not (self.radius_km > 0 and math.isfinite(self.radius_km)):
            p.append(f"omkoppeling radius_km must be > 0; got {self.radius_km!r}")
        if not self.min_contract_months >= 0:
            p.append(
                f"omkoppeling min_contract_months must be >= 0; got {self.min_contract_months!r}"
            )
        for year, amount in self.bijstandsnorm.items():
            if not (isinstance(year, int) and amount > 0):
                p.append(
                    f"omkoppeling bijstandsnorm {year} must be a year with an amount > 0; "
                    f"got {amount!r}"
                )
        if p:
            raise PolicyError([Problem("<omkoppeling rules>", m) for m in p])
        object.__setattr__(
            self, "excluded_job_types", tuple(j.strip().casefold() for j in self.excluded_job_types)
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> OmkoppelRules:
        """Read the ``[omkoppeling]`` table of a TOML file; other tables are ignored.

        Example::

            [omkoppeling]
            gate = "or"
            radius_km = 50
            min_contract_months = 6
            excluded_job_types = ["cleaning", "distribution", "temp agency"]
            [omkoppeling.bijstandsnorm]
            2025 = 1401.50
        """
        name = Path(path).name
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PolicyError(Problem(name, "file not found")) from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(Problem(name, f"is not valid TOML: {exc}")) from None
        table = raw.get("omkoppeling", {})
        known = {f.name for f in fields(cls)}
        bad = sorted(set(table) - known)
        if bad:
            raise PolicyError(
                Problem(
                    name, f"unknown key [omkoppeling] {bad[0]}; known: {', '.join(sorted(known))}"
                )
            )
        kwargs: dict[str, Any] = {}
        try:
            if "gate" in table:
                kwargs["gate"] = str(table["gate"])
            for key in ("radius_km", "min_contract_months"):
                if key in table:
                    kwargs[key] = float(table[key])
            if "excluded_job_types" in table:
                kwargs["excluded_job_types"] = tuple(str(j) for j in table["excluded_job_types"])
            if "bijstandsnorm" in table:
                kwargs["bijstandsnorm"] = {
                    int(y): float(v) for y, v in table["bijstandsnorm"].items()
                }
        except (TypeError, ValueError, AttributeError) as exc:
            raise PolicyError(
                Problem(name, f"[omkoppeling] has a value of the wrong type: {exc}")
            ) from None
        try:
            return cls(**kwargs)
        except PolicyError as exc:
            raise PolicyError([Problem(name, p.message) for p in exc.problems]) from None


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
    c.unique(ids, "request_id", lambda k: f"duplicate request_id '{k}'")
    households = c.text("household_id", required=True)
    c.unique(households, "household_id", lambda k: f"a second request for household '{k}'")
    if coupled is not None:
        for row, h in zip(c.rows, households, strict=True):
            if h is not None and h not in coupled:
                c.add(
                    f"household '{h}' has no approved coupling in the ledger", row, "household_id"
                )
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
                f"no bijstandsnorm configured for {year} (configured: {known})",
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
    excluded = str(r["job_type"]).casefold() in rules.excluded_job_types
    out["job_type"] = (
        not excluded,
        f"job type '{r['job_type']}' is excluded" if excluded else "job type is not excluded",
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
    state: pd.DataFrame,
    radius_km: float,
    *,
    backend: str = "highs",
) -> list[Move]:
    """Jointly re-couple ``eligible`` households (household_id, persons, old, job) near their jobs.

    ``state`` has per municipality: municipality (code), lat, lon and ``capacity`` (persons that
    may still be charged). A household whose old municipality already lies within the radius
    stays. The others move to a municipality within ``radius_km`` of the job; capacity counts the
    persons moving out, so two households may swap. Moving persons comes first, then nearness to
    the job. A household with no room stays where it is (``new`` None).
    """
    codes = state["municipality"].astype(str).to_numpy()
    index = {c: i for i, c in enumerate(codes)}
    lat, lon = state["lat"].to_numpy(float), state["lon"].to_numpy(float)
    cap = state["capacity"].to_numpy(dtype=np.float64)
    e = eligible.reset_index(drop=True)
    job = e["job"].map(index).to_numpy(dtype=np.int64)
    old = e["old"].map(index).to_numpy(dtype=np.int64)
    persons = e["persons"].to_numpy(dtype=np.float64)
    d_old = haversine_km(lat[job], lon[job], lat[old], lon[old])
    moves: list[Move | None] = [None] * len(e)
    for i in np.flatnonzero(d_old <= radius_km + 1e-9):
        moves[i] = Move(e.at[i, "household_id"], e.at[i, "old"], e.at[i, "old"], float(d_old[i]))
    todo = np.flatnonzero(d_old > radius_km + 1e-9)
    if len(todo):
        dist = haversine_km(
            lat[job[todo]][:, None], lon[job[todo]][:, None], lat[None, :], lon[None, :]
        )
        hh, mm = np.nonzero(dist <= radius_km + 1e-9)
        n_x, n_s = len(hh), len(todo)
        weight = n_s + 1.0  # one person moved outweighs all distance terms together
        c = np.concatenate([weight * persons[todo][hh] - dist[hh, mm] / radius_km, np.zeros(n_s)])
        # One row per household: its pairs plus its stay column sum to 1.
        assign = sp.csr_matrix(
            (np.ones(n_x + n_s), (np.concatenate([hh, np.arange(n_s)]), np.arange(n_x + n_s))),
            shape=(n_s, n_x + n_s),
        )
        # Capacity: persons moving in + persons staying at m <= capacity + persons of movers from m.
        out_of = old[todo]
        capacity = sp.csr_matrix(
            (
                np.concatenate([persons[todo][hh], persons[todo]]),
                (np.concatenate([mm, out_of]), np.arange(n_x + n_s)),
            ),
            shape=(len(codes), n_x + n_s),
        )
        released = np.bincount(out_of, weights=persons[todo], minlength=len(codes))
        A = sp.vstack([assign, capacity]).tocsr()
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
                    e.at[i, "household_id"], e.at[i, "old"], codes[m], float(dist[k, m])
                )
            else:
                moves[i] = Move(e.at[i, "household_id"], e.at[i, "old"], None, None)
    return [m for m in moves if m is not None]


def omkoppel(
    ledger: Any, requests: str | os.PathLike[str], rules: OmkoppelRules | None = None
) -> pd.DataFrame:
    """Check and decide a batch of omkoppeling requests in one ledger transaction.

    Returns the decision report: one row per request with ``eligible``, ``decision``
    (``recoupled`` | ``stays`` | ``no-room`` | ``rejected``), old and new municipality, the distance
    to the job and, per rule, ``<rule>`` (pass/fail) and ``<rule>_reason``.
    """
    from coupler.ledger import schema as t
    from coupler.ledger.store import LedgerError, quota_state
    from coupler.scenario import load_scenario

    rules = rules or OmkoppelRules()
    with ledger.read() as conn:
        period = ledger.open_period(conn)
    municipalities, _ = load_scenario(period.scenario, period.total)
    with ledger.write("omkoppel") as tx:
        conn = tx.conn
        period = ledger.open_period(conn, lock=True)
        rows = conn.execute(
            sa.select(
                t.couplings.c.id,
                t.couplings.c.household_id,
                t.couplings.c.persons,
                t.couplings.c.municipality,
            ).where(t.couplings.c.status == "approved")
        ).all()
        coupled = {r.household_id: r for r in rows}
        req = load_requests(requests, municipalities, rules, coupled)
        done = {
            r
            for (r,) in conn.execute(
                sa.select(t.omkoppelingen.c.request_id).where(
                    t.omkoppelingen.c.request_id.in_(req["request_id"].tolist())
                )
            ).all()
        }
        if done:
            raise LedgerError(
                f"request '{sorted(done)[0]}' was already decided; requests are decided once"
            )
        checks = [check_request(r, rules) for r in req.to_dict("records")]
        req["eligible"] = [all(ok for ok, _ in ch.values()) for ch in checks]
        req["persons"] = [int(coupled[h].persons) for h in req["household_id"]]
        req["old"] = [str(coupled[h].municipality) for h in req["household_id"]]
        state = quota_state(conn, period.id)
        state["capacity"] = np.floor(state["available"] - state["reserved"] + 1e-9).clip(lower=0)
        elig = req[req["eligible"]].rename(columns={"job_municipality": "job"})
        moves = (
            {m.household_id: m for m in recouple(elig, state, rules.radius_km)} if len(elig) else {}
        )
        tx.checkpoint("omkoppel")
        report = []
        for r, ch in zip(req.to_dict("records"), checks, strict=True):
            move = moves.get(r["household_id"])
            if not r["eligible"]:
                decision, new, km = "rejected", None, None
            elif move is None or move.new is None:
                decision, new, km = "no-room", None, None
            elif move.new == move.old:
                decision, new, km = "stays", move.old, move.distance_km
            else:
                decision, new, km = "recoupled", move.new, move.distance_km
            cid = int(coupled[r["household_id"]].id)
            if decision == "recoupled":
                conn.execute(
                    t.couplings.update().where(t.couplings.c.id == cid).values(municipality=new)
                )
                conn.execute(
                    t.charges.insert(),
                    [
                        {
                            "period_id": period.id,
                            "municipality": r["old"],
                            "persons": -r["persons"],
                            "source": "omkoppel",
                            "coupling_id": cid,
                            "at": tx.at,
                        },
                        {
                            "period_id": period.id,
                            "municipality": new,
                            "persons": r["persons"],
                            "source": "omkoppel",
                            "coupling_id": cid,
                            "at": tx.at,
                        },
                    ],
                )
            rules_json = {k: {"passed": ok, "reason": why} for k, (ok, why) in ch.items()}
            conn.execute(
                t.omkoppelingen.insert().values(
                    period_id=period.id,
                    request_id=r["request_id"],
                    household_id=r["household_id"],
                    coupling_id=cid,
                    eligible=bool(r["eligible"]),
                    rules=json.dumps(rules_json),
                    decision=decision,
                    old_municipality=r["old"],
                    new_municipality=new,
                    job_municipality=r["job_municipality"],
                    distance_km=km,
                    at=tx.at,
                    by=tx.who,
                )
            )
            failed = [k for k, (ok, _) in ch.items() if not ok]
            tx.audit(
                f"omkoppel-{decision}",
                r["household_id"],
                {"request": r["request_id"], "from": r["old"], "to": new, "failed": failed},
            )
            line = {
                "request_id": r["request_id"],
                "household_id": r["household_id"],
                "eligible": bool(r["eligible"]),
                "decision": decision,
                "old_municipality": r["old"],
                "new_municipality": new,
                "job_municipality": r["job_municipality"],
                "distance_km": None if km is None else round(km, 1),
                "persons": r["persons"],
            }
            for k, (ok, why) in ch.items():
                line[k] = "pass" if ok else "fail"
                line[f"{k}_reason"] = why
            report.append(line)
    return pd.DataFrame(report)
