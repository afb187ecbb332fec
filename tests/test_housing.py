"""Tests of the housing follow-up (coupler.ledger.housing): a six-month run in which
municipalities report dwelling offers, housings, refusals and inburgering with dates, checked
against an independent count from the raw events; the transition rules; import validation; the
omkoppeling timing gate reading the ledger's dates; the municipality filter; the CLI.

The six-month run couples generated batches of the nl-2024 scenario in ``2025-H1``. Approvals
happen when the test runs, so the test moves each batch's approval date back to the 5th of its
month (the history a real ledger would have) before any event is reported.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from coupler.cli import main
from coupler.errors import InputError, PolicyError
from coupler.generate import generate_cases
from coupler.ledger import Ledger, Pacing, approve, close_period, open_period, propose
from coupler.ledger import schema as t
from coupler.ledger.housing import (
    Event,
    HousingRules,
    housing_events,
    import_events,
    municipality_couplings,
    overdue,
    realised_taakstelling,
    record_event,
    record_events,
)
from coupler.ledger.omkoppeling import omkoppel
from coupler.ledger.periods import period_status
from coupler.scenario import load_scenario

DATA = Path(__file__).parent / "data" / "ledger"
TODAY = dt.date(2025, 8, 15)  # the day the last reports come in
H1_END = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def municipalities() -> pd.DataFrame:
    """The nl-2024 municipalities (codes, names, provinces, labour-market regions)."""
    return load_scenario(None, 3600)[0]


def _run(tmp: Path, municipalities: pd.DataFrame) -> tuple[Ledger, pd.DataFrame]:
    """Six monthly batches approved in 2025-H1, each dated the 5th of its month.

    Returns the ledger and the approved couplings (coupling_id, household_id, persons,
    municipality, coupled_on) as the test knows them.
    """
    ledger = Ledger.open(tmp / "l.sqlite", user="rv")
    open_period(ledger, "2025-H1", 3600)
    for month in range(1, 7):
        hh, cr = generate_cases(municipalities, persons=150, seed=month)
        hh["household_id"] = f"M{month}-" + hh["household_id"].astype(str)
        cr["household_id"] = f"M{month}-" + cr["household_id"].astype(str)
        p = propose(ledger, hh, cr)
        approve(ledger, p.batch_id, reason="shortage accepted")
        with ledger.engine.begin() as conn:
            conn.execute(
                t.couplings.update()
                .where(t.couplings.c.batch_id == p.batch_id)
                .where(t.couplings.c.status == "approved")
                .values(decided_at=f"2025-{month:02d}-05T09:00:00+00:00")
            )
    with ledger.read() as conn:
        c = pd.DataFrame(
            conn.execute(
                sa.select(
                    t.couplings.c.id,
                    t.couplings.c.household_id,
                    t.couplings.c.persons,
                    t.couplings.c.municipality,
                    t.couplings.c.decided_at,
                ).where(t.couplings.c.status == "approved")
            ).all(),
            columns=["coupling_id", "household_id", "persons", "municipality", "decided_at"],
        )
    c["coupled_on"] = [dt.date.fromisoformat(d[:10]) for d in c["decided_at"]]
    return ledger, c.drop(columns="decided_at")


def _events(couplings: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """Random but valid reports up to TODAY: offers 20-120 days after coupling (75 %), housing
    0-45 days after the offer (80 %), some refusals, inburgering 14 days after housing."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in couplings.itertuples(index=False):
        u = rng.random()
        base = dict(household_id=r.household_id, municipality=r.municipality)
        if u < 0.04:
            d = r.coupled_on + dt.timedelta(days=int(rng.integers(3, 40)))
            if d <= TODAY:
                rows.append({**base, "event": "refused", "date": d, "reason": "no dwelling"})
            continue
        if u > 0.79:
            continue
        offered = r.coupled_on + dt.timedelta(days=int(rng.integers(20, 121)))
        if offered > TODAY:
            continue
        rows.append({**base, "event": "offered", "date": offered, "reason": ""})
        if rng.random() < 0.8:
            housed = offered + dt.timedelta(days=int(rng.integers(0, 46)))
            if housed <= TODAY:
                rows.append({**base, "event": "housed", "date": housed, "reason": ""})
                started = housed + dt.timedelta(days=14)
                if started <= TODAY:
                    rows.append({**base, "event": "inburgering", "date": started, "reason": ""})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, municipalities: pd.DataFrame
) -> tuple[Ledger, pd.DataFrame, pd.DataFrame]:
    """The six-month ledger with every province's report imported (one file per province,
    rows shuffled so that a housing may come before its offer in the file)."""
    tmp = tmp_path_factory.mktemp("housing")
    ledger, couplings = _run(tmp, municipalities)
    events = _events(couplings)
    province = municipalities.set_index("code")["province"]
    for i, (_, part) in enumerate(events.groupby(events["municipality"].map(province))):
        f = tmp / f"report{i}.csv"
        out = part.sample(frac=1.0, random_state=i).copy()
        out["date"] = [d.isoformat() for d in out["date"]]
        out.to_csv(f, index=False)
        import_events(ledger, f, today=TODAY)
    return ledger, couplings, events


def _first(events: pd.DataFrame, kind: str) -> dict[str, dt.date]:
    e = events[events["event"] == kind]
    return dict(zip(e["household_id"], e["date"], strict=True))


def test_realised_taakstelling_matches_independent_count(
    run: tuple[Ledger, pd.DataFrame, pd.DataFrame], municipalities: pd.DataFrame
) -> None:
    """Housed persons per municipality, province and region of 2025-H1 equal the persons of the
    couplings whose reported housing date lies in January-June; coupled equals the approved
    persons; carry = target - counted under both count_at switches."""
    ledger, couplings, events = run
    housed_on = _first(events, "housed")
    c = couplings.assign(housed_on=couplings["household_id"].map(housed_on))
    in_h1 = c[c["housed_on"].notna() & (c["housed_on"] <= H1_END)]
    expected = in_h1.groupby("municipality")["persons"].sum()
    assert expected.sum() > 200, "the run should house a fair number of persons in H1"
    for count_at in ("coupling", "housing"):
        rules = HousingRules(count_at=count_at)
        m = realised_taakstelling(ledger, "2025-H1", rules=rules, as_of=TODAY)
        assert len(m) == 342
        got = m.set_index("municipality")["housed"]
        pd.testing.assert_series_equal(
            got[got > 0].sort_index(), expected.sort_index(), check_names=False, check_dtype=False
        )
        coupled = c.groupby("municipality")["persons"].sum()
        assert (m.set_index("municipality")["coupled"].reindex(coupled.index) == coupled).all()
        counted = m["housed"] if count_at == "housing" else m["coupled"]
        assert (m["carry"] == m["target"] - counted).all()
        assert (m["remaining"] == (m["target"] - counted).clip(lower=0)).all()
    prov = realised_taakstelling(ledger, "2025-H1", level="province", as_of=TODAY)
    by_prov = in_h1["municipality"].map(municipalities.set_index("code")["province"])
    want = in_h1.groupby(by_prov)["persons"].sum()
    assert len(prov) == 12
    assert prov.set_index("province")["housed"].reindex(want.index).tolist() == want.tolist()
    region = realised_taakstelling(ledger, "2025-H1", level="labour_market_region", as_of=TODAY)
    assert len(region) == 35 and int(region["housed"].sum()) == int(expected.sum())
    one = realised_taakstelling(ledger, "2025-H1", municipality="GM0363", as_of=TODAY)
    assert one["municipality"].tolist() == ["GM0363"]


def test_overdue_list_matches_independent_count(
    run: tuple[Ledger, pd.DataFrame, pd.DataFrame],
) -> None:
    """As of several dates, the overdue list holds exactly the couplings coupled more than
    10 weeks before with no offer, housing or refusal dated on or before that day, with the right
    days waiting; a longer term drops the shorter waits; period status sums it per
    municipality."""
    ledger, couplings, events = run
    answered: dict[str, dt.date] = {}
    for r in events[events["event"].isin(["offered", "housed", "refused"])].itertuples():
        answered[r.household_id] = min(r.date, answered.get(r.household_id, r.date))
    for as_of in (dt.date(2025, 4, 1), dt.date(2025, 6, 30), TODAY):
        for weeks in (10.0, 14.0):
            want = {
                r.household_id: (as_of - r.coupled_on).days
                for r in couplings.itertuples(index=False)
                if r.coupled_on <= as_of
                and (as_of - r.coupled_on).days > weeks * 7
                and not (r.household_id in answered and answered[r.household_id] <= as_of)
            }
            got = overdue(ledger, rules=HousingRules(offer_weeks=weeks), as_of=as_of)
            assert dict(zip(got["household_id"], got["days_waiting"], strict=True)) == want
            if as_of == dt.date(2025, 6, 30) and weeks == 10.0:
                assert len(want) > 20
                s = period_status(ledger, "2025-H1", as_of=as_of)
                assert sum(r["couplings"] for r in s["overdue"]) == len(want)
                per = got.groupby("municipality")["persons"].sum()
                assert {r["municipality"]: r["persons"] for r in s["overdue"]} == per.to_dict()
    mine = overdue(ledger, municipality="GM0363", as_of=TODAY)
    assert set(mine["municipality"]) <= {"GM0363"}


def test_municipality_view_reads_only_its_own_couplings(
    run: tuple[Ledger, pd.DataFrame, pd.DataFrame],
) -> None:
    """municipality_couplings with a code returns exactly that municipality's couplings with
    their reported dates, hard criteria and an expected arrival; it, realised_taakstelling and
    overdue filter in the query (every SQL statement on couplings, events, charges or quotas sent
    to the database names the municipality)."""
    ledger, couplings, events = run
    code = couplings["municipality"].value_counts().index[0]
    sent: list[str] = []

    def spy(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        sent.append(statement + " " + repr(params))

    sa.event.listen(ledger.engine, "before_cursor_execute", spy)
    try:
        view = municipality_couplings(ledger, code)
        realised = realised_taakstelling(
            ledger, "2025-H1", municipality=code, rules=HousingRules(count_at="housing")
        )
        late = overdue(ledger, municipality=code, as_of=TODAY)
    finally:
        sa.event.remove(ledger.engine, "before_cursor_execute", spy)
    mine = couplings[couplings["municipality"] == code]
    assert sorted(view["household_id"]) == sorted(mine["household_id"])
    assert realised["municipality"].tolist() == [code] and set(late["municipality"]) <= {code}
    tables = ("FROM couplings", "FROM housing_events", "FROM charges", "FROM quotas")
    touching = [s for s in sent if any(t in s for t in tables)]
    assert len(touching) >= 5 and all(code in s for s in touching), touching
    housed = _first(events, "housed")
    for r in view.itertuples(index=False):
        assert r.housed_on == housed.get(r.household_id)
        assert r.expected_arrival is not None
        if r.state == "coupled":
            assert r.expected_arrival == r.coupled_on + dt.timedelta(days=70)
    assert (view["hard_criteria"] != "").any()
    everyone = municipality_couplings(ledger)
    assert len(everyone) == len(couplings)


def test_close_carries_backlog_on_realised_numbers(
    tmp_path: Path, run: tuple[Ledger, pd.DataFrame, pd.DataFrame]
) -> None:
    """Closing with count_at = "housing" carries target - housed-in-period per municipality into
    the next period's backlog (on a copy of the six-month ledger)."""
    shared, couplings, events = run
    copy = tmp_path / "copy.sqlite"
    shutil.copy(str(shared.engine.url.database), copy)
    ledger = Ledger.open(copy, user="rv")
    with ledger.read() as conn:
        target = dict(
            conn.execute(
                sa.select(t.quotas.c.municipality, t.quotas.c.quota + t.quotas.c.backlog)
            ).all()
        )
    housed_on = _first(events, "housed")
    c = couplings.assign(housed_on=couplings["household_id"].map(housed_on))
    h1 = c[c["housed_on"].notna() & (c["housed_on"] <= H1_END)]
    housed = h1.groupby("municipality")["persons"].sum()
    s = close_period(ledger, rules=HousingRules(count_at="housing"), as_of=TODAY)
    assert s["count_at"] == "housing" and s["counted"] == int(housed.sum())
    open_period(ledger, "2025-H2", 1000, from_previous=True)
    with ledger.read() as conn:
        backlog = dict(
            conn.execute(
                sa.select(t.quotas.c.municipality, t.quotas.c.backlog).where(
                    t.quotas.c.period_id == 2
                )
            ).all()
        )
    want = {m: v - int(housed.get(m, 0)) for m, v in target.items()}
    assert backlog == want


@pytest.fixture()
def small(tmp_path: Path, municipalities: pd.DataFrame) -> tuple[Ledger, pd.DataFrame]:
    """A ledger with one approved batch of a dozen households, coupled today."""
    ledger = Ledger.open(tmp_path / "s.sqlite", user="gemeente")
    open_period(ledger, "2025-H1", 3000)
    hh, _ = generate_cases(municipalities, persons=30, seed=0)
    p = propose(ledger, hh.iloc[:12], None, pacing=Pacing(enabled=False))
    approve(ledger, p.batch_id)
    with ledger.read() as conn:
        c = pd.DataFrame(
            conn.execute(
                sa.select(t.couplings.c.household_id, t.couplings.c.municipality).where(
                    t.couplings.c.status == "approved"
                )
            ).all(),
            columns=["household_id", "municipality"],
        )
    return ledger, c


def _count(ledger: Ledger) -> int:
    with ledger.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(housing_events)).scalar())


def test_transitions_are_checked(small: tuple[Ledger, pd.DataFrame]) -> None:
    """Housing before an offer, a second housing or offer, a date before the coupling or in the
    future, a refusal without reason or after housing, anything after a refusal, a wrong
    municipality and an unknown household are refused with a message that names no household;
    the valid sequence offered -> housed -> inburgering is accepted and audited."""
    ledger, c = small
    today = dt.date.today()
    h, m = c.at[0, "household_id"], c.at[0, "municipality"]
    other = c[c["municipality"] != m].iloc[0]

    def fails(match: str, *args: object, **kw: object) -> None:
        before = _count(ledger)
        with pytest.raises(InputError, match=match) as info:
            record_event(ledger, *args, **kw)  # type: ignore[arg-type]
        assert h not in str(info.value) and str(other["household_id"]) not in str(info.value)
        assert _count(ledger) == before

    fails("housed before a dwelling was offered", h, m, "housed", today)
    fails("before the coupling date", h, m, "offered", today - dt.timedelta(days=1))
    fails("in the future", h, m, "offered", today + dt.timedelta(days=1))
    fails("not coupled to this municipality", h, str(other["municipality"]), "offered", today)
    fails("no approved coupling", "nobody", m, "offered", today)
    fails("needs a reason", h, m, "refused", today)
    record_event(ledger, h, m, "offered", today)
    fails("already recorded", h, m, "offered", today)
    record_event(ledger, h, m, "housed", today)
    fails("already recorded", h, m, "housed", today)
    fails("already housed", h, m, "refused", today, reason="too late")
    record_event(ledger, h, m, "inburgering", today)
    h2, m2 = other["household_id"], other["municipality"]
    record_event(ledger, h2, m2, "refused", today, reason="no large dwelling")
    fails("already refused", h2, m2, "offered", today)
    with ledger.read() as conn:
        audit = conn.execute(
            sa.select(t.audit.c.who, t.audit.c.action, t.audit.c.reason).where(
                t.audit.c.command.like("housing%")
            )
        ).all()
    assert [a.action for a in audit] == [
        "housing-offered",
        "housing-housed",
        "housing-inburgering",
        "housing-refused",
    ]
    assert {a.who for a in audit} == {"gemeente"}
    assert audit[-1].reason == "no large dwelling"


def test_housed_same_day_as_offer_in_one_call(small: tuple[Ledger, pd.DataFrame]) -> None:
    """An offer and a housing on the same day in one set of events are applied offer first,
    whatever their order; a housing dated before the offer in the same set is refused."""
    ledger, c = small
    today = dt.date.today()
    h, m = c.at[1, "household_id"], c.at[1, "municipality"]
    record_events(
        ledger, [Event(h, m, "housed", today, row=2), Event(h, m, "offered", today, row=3)]
    )
    assert _count(ledger) == 2


BAD_ROWS = [
    ({"event": "moved"}, "column 'event'", "event must be one of"),
    ({"date": "31-02-2025"}, "column 'date'", "date must be a date"),
    ({"date": ""}, "column 'date'", "date must not be empty"),
    ({"municipality": "Atlantis"}, "column 'municipality'", "unknown municipality"),
    ({"household_id": "X-unknown"}, "column 'household_id'", "no approved coupling"),
    ({"event": "housed"}, "column 'event'", "housed before a dwelling was offered"),
]


@pytest.mark.parametrize(("change", "column", "message"), BAD_ROWS)
def test_import_validation(
    tmp_path: Path,
    small: tuple[Ledger, pd.DataFrame],
    change: dict[str, str],
    column: str,
    message: str,
) -> None:
    """One bad row (row 3 of the file) stops the whole import: the error names the file, the
    row and the column, never the row's household id, and nothing is written."""
    ledger, c = small
    today = dt.date.today().isoformat()
    rows = [
        {
            "household_id": c.at[i, "household_id"],
            "municipality": c.at[i, "municipality"],
            "event": "offered",
            "date": today,
        }
        for i in range(3)
    ]
    rows[1] = {**rows[1], **change}
    f = tmp_path / "gemeente.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    with pytest.raises(InputError) as info:
        import_events(ledger, f)
    text = str(info.value)
    assert f"gemeente.csv, row 3, {column}: " in text and message in text
    for r in rows:
        assert str(r["household_id"]) not in text
    assert _count(ledger) == 0


def test_import_file_level_problems(tmp_path: Path, small: tuple[Ledger, pd.DataFrame]) -> None:
    """A missing column, a duplicate event and an unknown file type are named; nothing is
    written. An xlsx workbook with date cells is imported."""
    ledger, c = small
    f = tmp_path / "a.csv"
    pd.DataFrame({"household_id": ["x"], "event": ["offered"], "date": ["2025-01-01"]}).to_csv(
        f, index=False
    )
    with pytest.raises(InputError, match="missing required column 'municipality'"):
        import_events(ledger, f)
    h, m = c.at[0, "household_id"], c.at[0, "municipality"]
    today = dt.date.today()
    dup = pd.DataFrame(
        {
            "household_id": [h, h],
            "municipality": [m, m],
            "event": ["offered"] * 2,
            "date": [today] * 2,
        }
    )
    dup.to_csv(f, index=False)
    with pytest.raises(InputError, match=r"row 3, column 'event': a second 'offered' event"):
        import_events(ledger, f)
    assert _count(ledger) == 0
    x = tmp_path / "gemeente.xlsx"
    dup.iloc[:1].assign(date=pd.Timestamp(today)).to_excel(x, index=False)
    assert import_events(ledger, x)["offered"] == 1


def test_omkoppeling_refused_after_ledger_offer(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """Request R00 says 'housing not offered' and is otherwise eligible; once the ledger holds a
    dwelling offer for its household, the timing rule fails on the ledger's date and the
    household stays; requests without ledger events still use the file's answer."""
    ledger = Ledger.open(tmp_path / "o.sqlite", user="rv")
    open_period(ledger, "2025-H1", 3000)
    hh, _ = generate_cases(municipalities, persons=30, seed=0)
    hh = hh.iloc[:12]
    p = propose(ledger, hh, None, pacing=Pacing(enabled=False))
    over = {h: "GM0014" for h in hh["household_id"].iloc[:10]}
    over[str(hh["household_id"].iloc[10])] = "GM0935"
    approve(ledger, p.batch_id, overrides=over, reason="test set-up: far from the jobs")
    record_event(ledger, "H000001", "GM0014", "offered", dt.date.today())
    report = omkoppel(ledger, DATA / "requests.csv").set_index("request_id")
    assert report.loc["R00", "timing"] == "fail"
    assert "per the ledger" in report.loc["R00", "timing_reason"]
    assert report.loc["R00", "decision"] == "rejected"
    assert "per the request file" in report.loc["R02", "timing_reason"]
    with ledger.read() as conn:
        where = conn.execute(
            sa.select(t.couplings.c.municipality).where(
                (t.couplings.c.household_id == "H000001") & (t.couplings.c.status == "approved")
            )
        ).scalar_one()
    assert where == "GM0014"


def test_older_ledger_gets_the_table(small: tuple[Ledger, pd.DataFrame]) -> None:
    """A ledger made before housing_events existed gets the table on the first housing
    command; reports on it before then read as 'nothing reported'."""
    ledger, c = small
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE housing_events")
    later = dt.date.today() + dt.timedelta(days=80)
    assert len(overdue(ledger, as_of=later)) == len(c)
    record_event(
        ledger, c.at[0, "household_id"], c.at[0, "municipality"], "offered", dt.date.today()
    )
    assert _count(ledger) == 1 and len(overdue(ledger, as_of=later)) == len(c) - 1


def test_rules_from_file(tmp_path: Path) -> None:
    """A [housing] table sets the term and the count switch; an unknown key or a bad value is
    an error naming the file; an empty file equals the defaults."""
    f = tmp_path / "p.toml"
    f.write_text('[housing]\noffer_weeks = 8\ncount_at = "housing"\n')
    assert HousingRules.from_file(f) == HousingRules(offer_weeks=8, count_at="housing")
    f.write_text("")
    assert HousingRules.from_file(f) == HousingRules()
    f.write_text("[housing]\nweeks = 8\n")
    with pytest.raises(PolicyError, match="p.toml: unknown key \\[housing\\] weeks"):
        HousingRules.from_file(f)
    f.write_text('[housing]\ncount_at = "never"\n')
    with pytest.raises(PolicyError, match="count_at must be one of"):
        HousingRules.from_file(f)


def test_cli_record_import_status(tmp_path: Path, small: tuple[Ledger, pd.DataFrame]) -> None:
    """`coupler housing record/import/status/overdue` and `coupler period status --as-of` work
    on the ledger; a bad file exits 2 without a traceback."""
    ledger, c = small
    db = str(ledger.engine.url.database)
    runner = CliRunner()
    h, m = c.at[0, "household_id"], c.at[0, "municipality"]
    today = dt.date.today().isoformat()
    r = runner.invoke(
        main, ["housing", "record", h, "offered", "--municipality", m, "--date", today, "--db", db]
    )
    assert r.exit_code == 0, r.output
    f = tmp_path / "r.csv"
    pd.DataFrame([{"household_id": h, "municipality": m, "event": "housed", "date": today}]).to_csv(
        f, index=False
    )
    r = runner.invoke(main, ["housing", "import", str(f), "--db", db])
    assert r.exit_code == 0 and "imported 1 events" in r.output, r.output
    r = runner.invoke(main, ["housing", "import", str(f), "--db", db])
    assert r.exit_code == 2 and "already recorded" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["housing", "status", "--level", "province", "--db", db])
    assert r.exit_code == 0 and "housed" in r.output, r.output
    later = (dt.date.today() + dt.timedelta(days=100)).isoformat()
    r = runner.invoke(main, ["period", "status", "--as-of", later, "--json", "--db", db])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert sum(x["couplings"] for x in s["overdue"]) == len(c) - 1
    r = runner.invoke(main, ["housing", "overdue", "--as-of", later, "--db", db])
    assert r.exit_code == 0 and "days_waiting" in r.output
    r = runner.invoke(main, ["period", "status", "--as-of", later, "--db", db])
    assert r.exit_code == 0 and f"overdue           {len(c) - 1} couplings" in r.output, r.output
    page = tmp_path / "realised.html"
    r = runner.invoke(main, ["housing", "map", "--out", str(page), "--db", db])
    assert r.exit_code == 0, r.output
    text = page.read_text(encoding="utf-8")
    assert text.count('class="gm"') == 342 and "Bron: CBS, Kadaster (PDOK)" in text
    csv = tmp_path / "realised.csv"
    r = runner.invoke(
        main, ["housing", "status", "--level", "municipality", "--out", str(csv), "--db", db]
    )
    assert r.exit_code == 0, r.output
    table = pd.read_csv(csv)
    # housed today lies outside 2025-H1, so it does not count for that period
    assert len(table) == 342 and int(table["housed"].sum()) == 0
