"""After the coupling: housing follow-up, realised taakstelling and the overdue list.

A municipality reports, per coupled household, four kinds of event (DOMAIN.md section 1)::

    offered      a dwelling was offered (date)
    housed       the household moved in (date): the coupling is realised
    refused      the municipality refuses the coupling (date, reason): back to the regievoerder
    inburgering  civic integration started (date)

Events live in the table ``housing_events`` (defined here on :data:`coupler.ledger.schema.metadata`)
and are checked against the coupling before anything is written:

- the household has an approved coupling, to the municipality that reports;
- no date before the coupling date, none after today;
- ``housed`` only after an offer (on or after the offer's date), never twice;
- ``offered`` and ``inburgering`` at most once, ``refused`` at most once;
- nothing after a refusal, no refusal after housing.

Events arrive one at a time (:func:`record_event`, ``coupler housing record``) or in bulk from the
file a municipality sends (:func:`import_events`, ``coupler housing import FILE``: columns
``household_id, municipality, event, date[, reason]``, CSV or xlsx, dates as ``2025-03-14`` or
``14-03-2025``). A file is applied whole or not at all; every problem names the file, row and
column and never echoes a personal value. Each event is audited with the user.

Policy (:class:`HousingRules`, a TOML ``[housing]`` table)::

    [housing]
    offer_weeks = 10          # a coupling without a dwelling offer after this term is overdue
    count_at = "coupling"     # the period's backlog counts persons at "coupling" or at "housing"

Data functions for a municipality view (the web application's ``gemeente:`` page). Each takes a
:class:`~coupler.ledger.store.Ledger` and an optional ``municipality`` code that filters **in the
SQL query**, so a municipality's rows are the only ones read::

    municipality_couplings(ledger, municipality: str | None = None, *,
                           rules: HousingRules | None = None) -> pd.DataFrame
        one row per approved coupling: coupling_id, household_id, municipality, persons,
        adults, children (None: the ledger does not hold the household's composition),
        hard_criteria ("work:GM0772;family:GM0363" or ""), coupled_on, offered_on, housed_on,
        refused_on, refusal_reason, inburgering_on, state (coupled | offered | housed | refused),
        expected_arrival (housed date, else offer date, else coupling date + offer term)
    realised_taakstelling(ledger, period: str | None = None, *, level: str = "municipality",
                          municipality: str | None = None, rules: HousingRules | None = None,
                          as_of: date | None = None) -> pd.DataFrame
        per municipality | province | labour_market_region: quota, backlog, target, coupled,
        housed (persons housed within the period's dates, up to as_of), remaining
        (target - counted, at least 0), carry (target - counted: the next backlog)
    overdue(ledger, *, municipality: str | None = None, rules: HousingRules | None = None,
            as_of: date | None = None) -> pd.DataFrame
        approved couplings that by as_of had neither a dwelling offer (nor housing) nor a
        refusal, more than offer_weeks after the coupling date: municipality, name,
        coupling_id, household_id, persons, coupled_on, days_waiting; longest waiting first
        within each municipality
    record_event(ledger, household_id: str, municipality: str, event: str, date: date, *,
                 reason: str | None = None, today: date | None = None) -> dict[str, int]
        records offered | housed | inburgering | refused; the household must be coupled to
        ``municipality`` (pass the logged-in municipality: a user can change only its own
        couplings), else InputError and nothing is written; audited as ``ledger.user``

Dates of a period: ``2025-H1`` runs 1 January to 30 June 2025, ``2025-H2`` 1 July to
31 December. Realised persons of a period are those housed within its dates, whatever period
their coupling was charged to (a coupling of June housed in August counts for H2).

Not handled here: a refusal does not release the quota charged at coupling (the regievoerder
re-couples, e.g. by an omkoppeling), and the ledger keeps no household composition.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from coupler.errors import InputError, PolicyError, Problem
from coupler.io import Checker, Places, read_table
from coupler.io.rules import read_rules, read_toml
from coupler.ledger import schema as t
from coupler.ledger.store import Ledger, LedgerError, quota_state, select_frame

#: The events a municipality reports, in the order they happen on one day.
EVENTS = ("offered", "housed", "inburgering", "refused")
COUNT_AT = ("coupling", "housing")
IMPORT_COLUMNS = ("household_id", "municipality", "event", "date")

housing_events = sa.Table(
    "housing_events",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("coupling_id", sa.Integer, sa.ForeignKey("couplings.id"), nullable=False),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("municipality", sa.String(8), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),  # offered | housed | refused | inburgering
    sa.Column("date", sa.String(10), nullable=False),  # ISO date of the event
    sa.Column("reason", sa.Text),  # why a municipality refused
    sa.Column("source", sa.String(16), nullable=False),  # record | import
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.UniqueConstraint("coupling_id", "event", name="uq_housing_event"),
)
sa.Index("ix_housing_events_municipality", housing_events.c.municipality)


@dataclass(frozen=True)
class HousingRules:
    """The housing follow-up's policy: the offer term and when quota counts as used."""

    offer_weeks: float = 10.0
    count_at: str = "coupling"

    def __post_init__(self) -> None:
        p: list[str] = []
        if not (isinstance(self.offer_weeks, int | float) and 0 < self.offer_weeks < 520):
            p.append(f"policy [housing] offer_weeks must be > 0; got {self.offer_weeks!r}")
        if self.count_at not in COUNT_AT:
            p.append(
                f"policy [housing] count_at must be one of {list(COUNT_AT)}; got {self.count_at!r}"
            )
        if p:
            raise PolicyError([Problem("<housing rules>", m) for m in p])

    @property
    def offer_days(self) -> int:
        return int(round(self.offer_weeks * 7))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> HousingRules:
        """Read the ``[housing]`` table of a TOML file (other tables are ignored)."""
        name = Path(path).name
        problems: list[Problem] = []
        rules = read_rules(
            cls,
            read_toml(Path(path)).get("housing", {}),
            table="[housing]",
            source=name,
            problems=problems,
        )
        if problems:
            raise PolicyError(problems)
        return rules


@dataclass(frozen=True)
class Event:
    """One reported event; ``row`` is the spreadsheet row it came from (None: command line)."""

    household_id: str
    municipality: str
    event: str
    date: dt.date
    reason: str | None = None
    row: int | None = None


# --- dates -------------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ]00:00(?::00)?)?$")
_DUTCH = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")


def parse_date(text: str) -> dt.date | None:
    """A date written ``2025-03-14`` (also an xlsx date cell) or ``14-03-2025``; else None."""
    text = text.strip()
    m = _ISO.fullmatch(text)
    parts = (m.group(1), m.group(2), m.group(3)) if m else None
    if parts is None:
        d = _DUTCH.fullmatch(text)
        parts = (d.group(3), d.group(2), d.group(1)) if d else None
    if parts is None:
        return None
    try:
        return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def period_dates(name: str) -> tuple[dt.date, dt.date]:
    """First and last day of a half-year period named like ``2025-H1``."""
    m = re.fullmatch(r"(\d{4})-H([12])", name)
    if m is None:
        raise LedgerError(f"period must look like 2025-H1 or 2025-H2; got '{name}'")
    year, half = int(m.group(1)), int(m.group(2))
    return (
        (dt.date(year, 1, 1), dt.date(year, 6, 30))
        if half == 1
        else (dt.date(year, 7, 1), dt.date(year, 12, 31))
    )


# --- state of each coupling ----------------------------------------------------------------


def ensure_table(conn: sa.Connection) -> None:
    """Create ``housing_events`` in a ledger made before it existed (a no-op otherwise)."""
    housing_events.create(conn, checkfirst=True)


def _approved(conn: sa.Connection, municipality: str | None = None) -> pd.DataFrame:
    """Approved couplings (the latest per household) with their coupling date."""
    q = sa.select(
        t.couplings.c.id.label("coupling_id"),
        t.couplings.c.batch_id,
        t.couplings.c.household_id,
        t.couplings.c.persons,
        t.couplings.c.municipality,
        t.couplings.c.decided_at.label("decided"),
    ).where(t.couplings.c.status == "approved")
    if municipality is not None:
        q = q.where(t.couplings.c.municipality == municipality)
    rows = select_frame(conn, q.order_by(t.couplings.c.id))
    rows = rows.drop_duplicates("household_id", keep="last").reset_index(drop=True)
    rows["coupled_on"] = [dt.date.fromisoformat(str(d)[:10]) for d in rows["decided"]]
    return rows.drop(columns="decided")


def _events(
    conn: sa.Connection,
    *,
    municipality: str | None = None,
    coupling_ids: Iterable[int] | None = None,
) -> pd.DataFrame:
    """One row per coupling with an event: <event>_on dates and the refusal reason."""
    ensure_table(conn)
    e = housing_events.c
    q = sa.select(e.coupling_id, e.event, e.date, e.reason)
    if municipality is not None:
        q = q.where(e.municipality == municipality)
    if coupling_ids is not None:
        q = q.where(e.coupling_id.in_([int(c) for c in coupling_ids]))
    rows = conn.execute(q).all()
    out: dict[int, dict[str, Any]] = {}
    for cid, event, date, reason in rows:
        d = out.setdefault(int(cid), {"coupling_id": int(cid)})
        d[f"{event}_on"] = dt.date.fromisoformat(date)
        if event == "refused":
            d["refusal_reason"] = reason
    cols = ["coupling_id", *[f"{ev}_on" for ev in EVENTS], "refusal_reason"]
    frame = pd.DataFrame(list(out.values()), columns=cols)
    for col in cols[1:]:
        frame[col] = [None if pd.isna(v) else v for v in frame[col]]
    return frame


def followup(conn: sa.Connection, municipality: str | None = None) -> pd.DataFrame:
    """Approved couplings with their event dates (None where not reported) and state."""
    c = _approved(conn, municipality)
    ev = _events(conn, municipality=municipality)
    f = c.merge(ev, on="coupling_id", how="left")
    for col in ev.columns[1:]:
        f[col] = [None if pd.isna(v) else v for v in f[col].astype(object)]
    f["state"] = [
        "refused"
        if r.refused_on is not None
        else "housed"
        if r.housed_on is not None
        else "offered"
        if r.offered_on is not None
        else "coupled"
        for r in f.itertuples(index=False)
    ]
    return f


# --- checking and recording events ---------------------------------------------------------


def _check(
    events: Sequence[Event], couplings: pd.DataFrame, known: pd.DataFrame, today: dt.date, file: str
) -> list[Problem]:
    """Every problem of ``events`` against the couplings and the events already recorded.

    Events of one household are checked in date order (offer before housing on the same day),
    so a file may list them in any order. Messages name the row and column, never a value.
    """
    problems: list[Problem] = []
    by_household = couplings.set_index("household_id")
    state: dict[int, dict[str, dt.date]] = {}
    for r in known.itertuples(index=False):
        state[int(r.coupling_id)] = {
            ev: getattr(r, f"{ev}_on") for ev in EVENTS if getattr(r, f"{ev}_on") is not None
        }

    def bad(e: Event, column: str, message: str) -> None:
        problems.append(Problem(file, message, row=e.row, column=column))

    order = sorted(
        range(len(events)), key=lambda i: (events[i].date, EVENTS.index(events[i].event))
    )
    for i in order:
        e = events[i]
        if e.household_id not in by_household.index:
            bad(e, "household_id", "the household has no approved coupling in the ledger")
            continue
        c = by_household.loc[e.household_id]
        if e.municipality != c["municipality"]:
            bad(e, "municipality", "the household is not coupled to this municipality")
            continue
        if e.date < c["coupled_on"]:
            bad(e, "date", f"the {e.event} date is before the coupling date")
            continue
        if e.date > today:
            bad(e, "date", f"the {e.event} date is in the future (after {today.isoformat()})")
            continue
        s = state.setdefault(int(c["coupling_id"]), {})
        if e.event == "refused" and not e.reason:
            bad(e, "reason", "a refusal needs a reason")
            continue
        if "refused" in s:
            bad(e, "event", "the municipality already refused this coupling")
            continue
        if e.event in s:
            what = {"offered": "a dwelling offer", "housed": "a housing", "inburgering": ""}
            bad(e, "event", f"{what.get(e.event) or 'this event'} is already recorded")
            continue
        if e.event == "housed":
            if "offered" not in s:
                bad(e, "event", "housed before a dwelling was offered")
                continue
            if e.date < s["offered"]:
                bad(e, "date", "the housing date is before the dwelling offer date")
                continue
        if e.event == "refused" and "housed" in s:
            bad(e, "event", "the household is already housed; a refusal is too late")
            continue
        s[e.event] = e.date
    return problems


def _write(
    conn: sa.Connection,
    tx: Any,
    events: Sequence[Event],
    couplings: pd.DataFrame,
    source: str,
    reason: str | None,
) -> None:
    ids = couplings.set_index("household_id")["coupling_id"]
    conn.execute(
        housing_events.insert(),
        [
            {
                "coupling_id": int(ids[e.household_id]),
                "household_id": e.household_id,
                "municipality": e.municipality,
                "event": e.event,
                "date": e.date.isoformat(),
                "reason": e.reason,
                "source": source,
                "at": tx.at,
                "by": tx.who,
            }
            for e in events
        ],
    )
    for e in events:
        tx.audit(
            f"housing-{e.event}",
            e.household_id,
            {"municipality": e.municipality, "date": e.date.isoformat(), "source": source},
            e.reason if e.event == "refused" else reason,
        )


def record_events(
    ledger: Ledger,
    events: Sequence[Event],
    *,
    file: str = "<command line>",
    source: str = "record",
    reason: str | None = None,
    today: dt.date | None = None,
) -> dict[str, int]:
    """Check ``events`` and write them in one transaction, or raise and write nothing.

    Returns the number of events written per kind.
    """
    today = today or today_utc()
    with ledger.write(f"housing {source}") as tx:
        conn = tx.conn
        ensure_table(conn)
        couplings = _approved(conn)
        touched = couplings[couplings["household_id"].isin({e.household_id for e in events})]
        known = _events(conn, coupling_ids=touched["coupling_id"].tolist())
        problems = _check(events, couplings, known, today, file)
        if problems:
            problems.sort(key=lambda p: -1 if p.row is None else p.row)
            raise InputError(problems)
        _write(conn, tx, events, couplings, source, reason)
    counts = {ev: 0 for ev in EVENTS}
    for e in events:
        counts[e.event] += 1
    return counts


def record_event(
    ledger: Ledger,
    household_id: str,
    municipality: str,
    event: str,
    date: dt.date,
    *,
    reason: str | None = None,
    today: dt.date | None = None,
) -> dict[str, int]:
    """Record one event (``coupler housing record``); same checks as an import."""
    if event not in EVENTS:
        raise InputError(
            Problem("<command line>", f"event must be one of: {', '.join(EVENTS)}", column="event")
        )
    e = Event(household_id, municipality, event, date, reason or None)
    return record_events(ledger, [e], reason=reason, today=today)


def read_events(path: str | os.PathLike[str], municipalities: pd.DataFrame) -> list[Event]:
    """Read and validate the cells of a municipality's housing file (not yet the transitions)."""
    file = os.fspath(path)
    table = read_table(path)
    c = Checker(file, table, personal=True)
    c.require(IMPORT_COLUMNS)
    if c.problems:
        c.finish()
    places = Places(municipalities)
    households = c.text("household_id", required=True)
    codes = c.municipality("municipality", places, required=True)
    kinds = c.choice("event", EVENTS, required=True)
    reasons = c.text("reason")
    dates: list[dt.date | None] = []
    for row, text in zip(c.rows, c.cells("date"), strict=True):
        d = parse_date(text) if text else None
        if not text:
            c.add("date must not be empty", row, "date")
        elif d is None:
            c.add("date must be a date like 2025-03-14 or 14-03-2025", row, "date")
        dates.append(d)
    c.unique(
        [
            None if h is None or k is None else (h, k)
            for h, k in zip(households, kinds, strict=True)
        ],
        "event",
        lambda key: f"a second '{key[1]}' event for the same household",
    )
    c.finish()
    return [
        Event(str(h), str(m), str(k), d, r, row)
        for row, h, m, k, d, r in zip(c.rows, households, codes, kinds, dates, reasons, strict=True)
        if d is not None
    ]


def import_events(
    ledger: Ledger,
    path: str | os.PathLike[str],
    *,
    reason: str | None = None,
    today: dt.date | None = None,
) -> dict[str, int]:
    """Import a municipality's housing file: all rows or none (``coupler housing import``)."""
    with ledger.read() as conn:
        scenario = conn.execute(
            sa.select(t.periods.c.scenario, t.periods.c.total).order_by(t.periods.c.id.desc())
        ).first()
    if scenario is None:
        raise LedgerError("the ledger has no periods yet")
    events = read_events(path, _municipalities(scenario.scenario))
    return record_events(
        ledger, events, file=os.fspath(path), source="import", reason=reason, today=today
    )


def _municipalities(scenario: str | None) -> pd.DataFrame:
    from coupler.scenario import load_scenario

    return load_scenario(scenario, None)[0]


# --- what the ledger's dates say ---------------------------------------------------------------


def ledger_timing(
    conn: sa.Connection, coupling_ids: Iterable[int], today: dt.date | None = None
) -> dict[int, tuple[bool, bool]]:
    """Per coupling with recorded events: (housing offered, inburgering started) by ``today``.

    A recorded housing counts as offered. Couplings without any event are left out: the ledger
    does not know their timing.
    """
    today = today or today_utc()
    ev = _events(conn, coupling_ids=coupling_ids)
    out: dict[int, tuple[bool, bool]] = {}
    for r in ev.itertuples(index=False):
        offered = any(d is not None and d <= today for d in (r.offered_on, r.housed_on))
        started = r.inburgering_on is not None and r.inburgering_on <= today
        out[int(r.coupling_id)] = (offered, started)
    return out


def housed_persons(
    conn: sa.Connection,
    start: dt.date,
    end: dt.date,
    municipality: str | None = None,
) -> dict[str, int]:
    """Persons housed per municipality with a housing date in [start, end]."""
    ensure_table(conn)
    e = housing_events.c
    q = (
        sa.select(e.municipality, sa.func.sum(t.couplings.c.persons))
        .select_from(housing_events.join(t.couplings, t.couplings.c.id == e.coupling_id))
        .where(e.event == "housed")
        .where(e.date >= start.isoformat())
        .where(e.date <= end.isoformat())
        .group_by(e.municipality)
    )
    if municipality is not None:
        q = q.where(e.municipality == municipality)
    return {str(m): int(n) for m, n in conn.execute(q).all()}


def counted_persons(
    conn: sa.Connection,
    period: Any,
    q: pd.DataFrame,
    rules: HousingRules,
    as_of: dt.date,
    municipality: str | None = None,
) -> pd.Series:
    """Persons that count against each municipality's target under ``rules.count_at``.

    ``q`` is the period's :func:`~coupler.ledger.store.quota_state` (of ``municipality`` only,
    when given); the result is aligned to it.
    """
    if rules.count_at == "coupling":
        return q["coupled"].astype("int64")
    start, end = period_dates(period.name)
    housed = housed_persons(conn, start, min(end, as_of), municipality)
    return q["municipality"].map(housed).fillna(0).astype("int64")


# --- municipality view and reports ---------------------------------------------------------


def municipality_couplings(
    ledger: Ledger, municipality: str | None = None, *, rules: HousingRules | None = None
) -> pd.DataFrame:
    """Approved couplings with size, hard criteria, follow-up dates and expected arrival."""
    rules = rules or HousingRules()
    with ledger.read() as conn:
        f = followup(conn, municipality)
        cr = t.criteria.c
        q = sa.select(cr.batch_id, cr.household_id, cr.kind, cr.municipality).where(cr.hard)
        if municipality is not None:
            q = q.where(
                sa.tuple_(cr.batch_id, cr.household_id).in_(
                    sa.select(t.couplings.c.batch_id, t.couplings.c.household_id).where(
                        (t.couplings.c.status == "approved")
                        & (t.couplings.c.municipality == municipality)
                    )
                )
            )
        crit = conn.execute(q.order_by(cr.id)).all()
    hard: dict[tuple[int, str], list[str]] = {}
    for batch_id, hid, kind, code in crit:
        hard.setdefault((int(batch_id or 0), str(hid)), []).append(f"{kind}:{code}")
    f["adults"] = None
    f["children"] = None
    f["hard_criteria"] = [
        ";".join(hard.get((int(b), str(h)), []))
        for b, h in zip(f["batch_id"], f["household_id"], strict=True)
    ]
    term = dt.timedelta(days=rules.offer_days)
    f["expected_arrival"] = [
        r.housed_on or r.offered_on or (r.coupled_on + term) for r in f.itertuples(index=False)
    ]
    cols = [
        "coupling_id",
        "household_id",
        "municipality",
        "persons",
        "adults",
        "children",
        "hard_criteria",
        "coupled_on",
        "offered_on",
        "housed_on",
        "refused_on",
        "refusal_reason",
        "inburgering_on",
        "state",
        "expected_arrival",
    ]
    return f[cols].sort_values(["municipality", "coupling_id"]).reset_index(drop=True)


def overdue(
    ledger: Ledger,
    *,
    municipality: str | None = None,
    rules: HousingRules | None = None,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """Couplings still without a dwelling offer after the policy's term, as of ``as_of``."""
    rules = rules or HousingRules()
    as_of = as_of or today_utc()
    with ledger.read() as conn:
        f = followup(conn, municipality)
        names = _names(conn, municipality)
    # Only what had happened by as_of: an offer dated later does not end the wait before it.
    answered = [
        any(d is not None and d <= as_of for d in (r.offered_on, r.housed_on, r.refused_on))
        for r in f.itertuples(index=False)
    ]
    f = f[~pd.Series(answered, index=f.index, dtype=bool) & (f["coupled_on"] <= as_of)].copy()
    f["days_waiting"] = [(as_of - d).days for d in f["coupled_on"]]
    f = f[f["days_waiting"] > rules.offer_days]
    f["name"] = f["municipality"].map(names)
    cols = [
        "municipality",
        "name",
        "coupling_id",
        "household_id",
        "persons",
        "coupled_on",
        "days_waiting",
    ]
    f = f.sort_values(
        ["municipality", "days_waiting", "coupling_id"], ascending=[True, False, True]
    )
    return f[cols].reset_index(drop=True)


def realised_taakstelling(
    ledger: Ledger,
    period: str | None = None,
    *,
    level: str = "municipality",
    municipality: str | None = None,
    rules: HousingRules | None = None,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """Quota, coupled, housed, remaining and carry of a period per municipality, province or region.

    ``housed`` counts persons housed within the period's dates up to ``as_of``; ``remaining`` and
    ``carry`` count persons as ``rules.count_at`` says (coupling or housing).
    """
    rules = rules or HousingRules()
    as_of = as_of or today_utc()
    if level not in ("municipality", "province", "labour_market_region"):
        raise LedgerError(
            f"level must be municipality, province or labour_market_region; got '{level}'"
        )
    with ledger.read() as conn:
        p = ledger.period(conn, period)
        q = quota_state(conn, p.id, reserve=False, municipality=municipality)
        start, end = period_dates(p.name)
        housed = housed_persons(conn, start, min(end, as_of), municipality)
        counted = counted_persons(conn, p, q, rules, as_of, municipality)
    out = q[["municipality", "name", "province", "quota", "backlog", "target", "coupled"]].copy()
    out["housed"] = q["municipality"].map(housed).fillna(0).astype("int64")
    out["carry"] = (q["target"] - counted).astype("int64")
    out["remaining"] = out["carry"].clip(lower=0)
    regions = _municipalities(p.scenario).set_index("code")["labour_market_region"]
    out.insert(3, "labour_market_region", out["municipality"].map(regions))
    if level == "municipality":
        return out.reset_index(drop=True)
    numbers = ["quota", "backlog", "target", "coupled", "housed", "remaining", "carry"]
    return out.groupby(level, sort=True)[numbers].sum().reset_index()


def overdue_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per municipality: overdue couplings, persons, longest wait in days."""
    if not len(table):
        return pd.DataFrame(columns=["municipality", "name", "couplings", "persons", "max_days"])
    g = table.groupby(["municipality", "name"], sort=True)
    return (
        g.agg(
            couplings=("coupling_id", "count"),
            persons=("persons", "sum"),
            max_days=("days_waiting", "max"),
        )
        .reset_index()
        .sort_values(["max_days", "municipality"], ascending=[False, True])
        .reset_index(drop=True)
    )


def _names(conn: sa.Connection, municipality: str | None = None) -> Mapping[str, str]:
    q = sa.select(t.quotas.c.municipality, t.quotas.c.name).order_by(t.quotas.c.period_id)
    if municipality is not None:
        q = q.where(t.quotas.c.municipality == municipality)
    rows = conn.execute(q).all()
    return {str(c): str(n) for c, n in rows}


__all__ = [
    "COUNT_AT",
    "EVENTS",
    "Event",
    "HousingRules",
    "counted_persons",
    "ensure_table",
    "followup",
    "housed_persons",
    "housing_events",
    "import_events",
    "ledger_timing",
    "municipality_couplings",
    "overdue",
    "overdue_summary",
    "parse_date",
    "period_dates",
    "read_events",
    "realised_taakstelling",
    "record_event",
    "record_events",
]
