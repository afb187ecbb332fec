"""No personal value in a ledger message: planted ids never reach stdout, stderr, an exception or a
log record.

Every household id, request id and other cell of a personal table in these ledgers carries the
marker ``PLANTED-7731``. Each test drives the failing paths of one workflow -- batch propose and
approve (overrides, households coupled meanwhile, broken couplings without a reason, a review
workbook with bad rows), Kansrijke Koppeling (propose, update, permit), omkoppeling (bad requests,
a request decided twice, a household with a pending proposal) and housing (record and import) --
through the library and the command line, checks that each path really failed where it should
(the row and column it names), and that the marker appears in none of the text it produced.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from factories import frame

from coupler import schema
from coupler.cli import main
from coupler.errors import CouplerError
from coupler.generate import generate_cases
from coupler.ledger import Ledger, Pacing, approve, open_period, propose

MARK = "PLANTED-7731"
AMSTERDAM, GRONINGEN, EINDHOVEN = "GM0363", "GM0014", "GM0772"


def assert_clean(texts: list[str], records: list[logging.LogRecord]) -> None:
    """No text and no log record holds the planted marker."""
    for text in texts:
        assert MARK not in text, text
    for record in records:
        assert MARK not in record.getMessage(), record.getMessage()


class Seen:
    """Every text a failing path produced: exception messages and CLI output."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def fails(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> str:
        """Call ``fn``, which must raise a :class:`CouplerError`; its message."""
        with pytest.raises(CouplerError) as info:
            fn(*args, **kw)
        text = str(info.value)
        self.texts.append(text)
        return text

    def cli(self, *args: str) -> Result:
        """Run ``coupler ARGS``, which must fail with exit code 2 (a user's mistake)."""
        result = CliRunner().invoke(main, list(args))
        self.texts += [result.stdout, result.stderr]
        assert result.exit_code == 2, (result.exit_code, result.output)
        assert "Traceback" not in result.output
        return result


@pytest.fixture
def seen(caplog: pytest.LogCaptureFixture) -> Iterator[Seen]:
    """Collects the texts of a test; afterwards asserts that none of them, and no log record of
    any logger at any level, holds the planted marker."""
    caplog.set_level(logging.DEBUG)
    s = Seen()
    yield s
    assert s.texts, "the test drove no failing path"
    assert_clean(s.texts, caplog.records)


def planted(persons: int, seed: int, tag: str) -> pd.DataFrame:
    """A generated batch whose household ids all carry the marker."""
    hh, _ = generate_cases(load_municipalities(), persons=persons, seed=seed)
    hh["household_id"] = f"{MARK}-{tag}-" + hh["household_id"].astype(str)
    return hh


def load_municipalities() -> pd.DataFrame:
    from coupler.scenario import load_scenario

    return load_scenario(None, 3000)[0]


def households(sizes: dict[str, int]) -> pd.DataFrame:
    """Canonical households: id -> size."""
    rows = [{"household_id": h, "size": n} for h, n in sizes.items()]
    return frame(rows, schema.HOUSEHOLD_DTYPES)


def medical(ids: list[str], code: str) -> pd.DataFrame:
    """A medical hard criterion at ``code`` for each household of ``ids``."""
    rows = [{"household_id": h, "kind": "medical", "municipality": code} for h in ids]
    return frame(rows, schema.CRITERIA_DTYPES)


def new_ledger(tmp_path: Path) -> tuple[Ledger, list[str]]:
    """A ledger with an open period 2025-H1 (3,000 persons); the --db arguments for the CLI."""
    db = tmp_path / "ledger.sqlite"
    ledger = Ledger.open(db, user="rv")
    open_period(ledger, "2025-H1", 3000)
    return ledger, ["--db", str(db)]


def test_batch_messages_name_rows_not_households(tmp_path: Path, seen: Seen) -> None:
    """Proposing households that are already coupled names the file, the row and the column;
    approving with an override of a household not in the batch or to an unknown municipality,
    with couplings that break a hard criterion and no reason, or after some of its households
    were coupled by another batch, says how many, never which; a review workbook with a row for
    an unknown household, a second row for one household, a bad decision and an override without
    a municipality names each row and column. No message holds a planted id."""
    from openpyxl import load_workbook

    from coupler.ledger.review import export_review, read_decisions

    ledger, db = new_ledger(tmp_path)
    hh = planted(40, seed=1, tag="A")
    ids = [str(h) for h in hh["household_id"]]
    # The first household has medical care in Amsterdam but is pinned to Groningen: it breaks.
    locks = tmp_path / "locks.csv"
    pd.DataFrame({"household_id": [ids[0]], "municipality": [GRONINGEN], "action": ["pin"]}).to_csv(
        locks, index=False
    )
    a = propose(ledger, hh, medical(ids[:1], AMSTERDAM), pacing=Pacing(enabled=False), locks=locks)
    # A second batch shares its last three households with the first.
    overlap = hh.iloc[-3:]
    b = propose(
        ledger,
        pd.concat([overlap, planted(10, seed=2, tag="B")]),
        None,
        pacing=Pacing(enabled=False),
    )

    # Overrides: a household not in the batch, typed on the command line; an unknown municipality.
    r = seen.cli(
        "batch",
        "approve",
        str(a.batch_id),
        "--override",
        f"{MARK}-nobody=GM0363",
        "--reason",
        "x",
        *db,
    )
    assert "1 household you gave is not in batch" in r.stderr
    r = seen.cli(
        "batch",
        "approve",
        str(a.batch_id),
        "--override",
        f"{ids[1]}=Atlantis",
        "--reason",
        "x",
        *db,
    )
    assert "unknown municipality 'Atlantis'" in r.stderr
    # A coupling breaking a hard criterion without a reason: counted, not named.
    text = seen.fails(approve, ledger, a.batch_id)
    assert "1 coupling of batch" in text and "breaks a hard criterion" in text

    # A review workbook with bad rows.
    book = tmp_path / "review.xlsx"
    export_review(ledger, a.batch_id, book)
    wb = load_workbook(book)
    ws = wb["koppelingen"]
    header = [c.value for c in ws[1]]
    col = {
        name: header.index(name) + 1
        for name in ("huishouden", "besluit", "nieuwe gemeente", "reden")
    }
    ws.cell(2, col["huishouden"], f"{MARK}-stranger")
    ws.cell(4, col["huishouden"], ws.cell(3, col["huishouden"]).value)
    ws.cell(5, col["besluit"], f"{MARK}-maybe")
    ws.cell(6, col["besluit"], "wijzigen")
    ws.cell(6, col["reden"], "closer to family")
    wb.save(book)
    text = seen.fails(read_decisions, ledger, book)
    for row, column in [
        (2, "huishouden"),
        (4, "huishouden"),
        (5, "besluit"),
        (6, "nieuwe gemeente"),
    ]:
        assert f"row {row}, column '{column}'" in text, (row, column, text)
    r = seen.cli("batch", "approve", "--decisions", str(book), *db)
    assert "row 2, column 'huishouden'" in r.stderr

    # Households coupled meanwhile by another batch.
    approve(ledger, a.batch_id, reason="medical care arranged in Groningen")
    text = seen.fails(approve, ledger, b.batch_id, reason="ok")
    assert "3 households of batch" in text and f"(in batch {a.batch_id})" in text

    # Proposing households that are coupled already: file, row and column.
    path = tmp_path / "again.csv"
    fresh = planted(10, seed=3, tag="C")
    pd.concat([fresh.iloc[:1], hh.iloc[[5, 0]], fresh.iloc[1:2]]).to_csv(path, index=False)
    r = seen.cli("batch", "propose", "--households", str(path), "--no-pacing", *db)
    taken = {
        row
        for row in range(2, 6)
        if f"again.csv, row {row}, column 'household_id': this household is already coupled"
        in r.stderr
    }
    assert taken == {3, 4}, r.stderr
    text = seen.fails(propose, ledger, hh.iloc[:2], None)
    assert "households, row 2, column 'household_id'" in text


def test_kansrijk_messages_name_rows_not_households(tmp_path: Path, seen: Seen) -> None:
    """Kansrijke Koppeling: proposing a household that is coupled or provisionally coupled,
    updating or settling a household without an active provisional coupling, and a second
    decision for one household each name the file, row and column, never the household; a
    successful update reports each household by its row."""
    from coupler.ledger.kansrijk import permit, propose_provisional, update_provisional

    ledger, db = new_ledger(tmp_path)
    cases = pd.DataFrame(
        {
            "household_id": [f"{MARK}-K1", f"{MARK}-K2", f"{MARK}-K3"],
            "size": [2, 1, 3],
            "nationality": ["Syria", "Syria", "Yemen"],
        }
    )
    path = tmp_path / "cases.csv"
    cases.to_csv(path, index=False)
    report = propose_provisional(ledger, path, None)
    assert (report["status"] == "active").all()
    # Proposing them again: each is provisionally coupled; as a batch too.
    text = seen.fails(propose_provisional, ledger, path, None)
    assert all(f"cases.csv, row {r}, column 'household_id'" in text for r in (2, 3, 4))
    bare = tmp_path / "bare.csv"
    cases.drop(columns="nationality").to_csv(bare, index=False)
    text = seen.fails(propose, ledger, bare, None)
    assert "bare.csv, row 3, column 'household_id': this household has a provisional" in text
    # An update and a permit for a household without a provisional coupling.
    other = tmp_path / "other.csv"
    pd.DataFrame({"household_id": [f"{MARK}-K1", f"{MARK}-X9"], "size": [3, 1]}).to_csv(
        other, index=False
    )
    text = seen.fails(update_provisional, ledger, other)
    assert "other.csv, row 3, column 'household_id': this household has no active" in text
    r = seen.cli("kansrijk", "update", "--households", str(other), *db)
    assert "row 3, column 'household_id'" in r.stderr
    # A successful update reports by row too.
    grown = tmp_path / "grown.csv"
    pd.DataFrame({"household_id": [f"{MARK}-K2", f"{MARK}-K1"], "size": [1, 4]}).to_csv(
        grown, index=False
    )
    ok = CliRunner().invoke(main, ["kansrijk", "update", "--households", str(grown), *db])
    seen.texts += [ok.stdout, ok.stderr]
    assert ok.exit_code == 0 and "row 3: 2 -> 4 persons" in ok.stdout, ok.output
    decisions = tmp_path / "permit.csv"
    pd.DataFrame(
        {
            "household_id": [f"{MARK}-K1", f"{MARK}-X9", f"{MARK}-K1"],
            "decision": ["verleend", "geweigerd", f"{MARK}-perhaps"],
        }
    ).to_csv(decisions, index=False)
    text = seen.fails(permit, ledger, decisions)
    assert "row 3, column 'household_id'" in text and "row 4, column 'household_id'" in text
    assert "row 4, column 'decision'" in text
    r = seen.cli("kansrijk", "permit", "--decisions", str(decisions), *db)
    assert "row 3, column 'household_id'" in r.stderr


def _requests(tmp_path: Path, rows: list[dict[str, str]], name: str) -> Path:
    """A requests file: the test data's first request, varied per row."""
    base = pd.read_csv(Path(__file__).parent / "data" / "ledger" / "requests.csv", dtype=str)
    frame = pd.DataFrame([base.iloc[0].to_dict() | r for r in rows])
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_omkoppeling_messages_name_rows_not_households(tmp_path: Path, seen: Seen) -> None:
    """Omkoppeling: a request for a household without an approved coupling, a duplicate request
    id, a second request for one household and a contract year without a norm name row and
    column; a request decided before and a household whose proposal awaits a decision name
    the row and the proposal number; none names a request or household id."""
    from coupler.ledger.omkoppeling import decide, omkoppel

    ledger, db = new_ledger(tmp_path)
    hh = households({f"{MARK}-O1": 2, f"{MARK}-O2": 1})
    p = propose(ledger, hh, None, pacing=Pacing(enabled=False))
    approve(
        ledger,
        p.batch_id,
        overrides={h: GRONINGEN for h in hh["household_id"]},
        reason="test set-up: far from the jobs",
    )
    job = {"job_municipality": "Eindhoven", "job_type": f"{MARK}-welding"}
    bad = _requests(
        tmp_path,
        [
            {"request_id": f"{MARK}-R1", "household_id": f"{MARK}-nobody", **job},
            {"request_id": f"{MARK}-R1", "household_id": f"{MARK}-O1", **job},
            {"request_id": f"{MARK}-R3", "household_id": f"{MARK}-O1", **job},
            {"request_id": f"{MARK}-R4", "household_id": f"{MARK}-O2", "contract_year": "2031"},
        ],
        "bad.csv",
    )
    text = seen.fails(omkoppel, ledger, bad)
    for row, column in [
        (2, "household_id"),
        (3, "request_id"),
        (4, "household_id"),
        (5, "contract_year"),
    ]:
        assert f"bad.csv, row {row}, column '{column}'" in text, (row, column, text)
    seen.cli("omkoppel", "--requests", str(bad), "--dry-run", *db)

    good = _requests(
        tmp_path, [{"request_id": f"{MARK}-R5", "household_id": f"{MARK}-O1", **job}], "good.csv"
    )
    report = omkoppel(ledger, good)
    assert report["decision"].tolist() == ["proposed"]
    proposal = int(report["proposal"].iloc[0])
    text = seen.fails(omkoppel, ledger, good)
    assert "good.csv, row 2, column 'request_id': this request was already decided" in text
    again = _requests(
        tmp_path, [{"request_id": f"{MARK}-R6", "household_id": f"{MARK}-O1", **job}], "again.csv"
    )
    text = seen.fails(omkoppel, ledger, again)
    assert (
        f"row 2, column 'household_id': the household has omkoppeling proposal {proposal}" in text
    )
    r = seen.cli("omkoppel", "--requests", str(again), *db)
    assert "awaiting a decision" in r.stderr
    # Deciding: a rejection without a reason; the approval's output names the proposal only.
    text = seen.fails(decide, ledger, [proposal], approve=False)
    assert "--reason" in text
    ok = CliRunner().invoke(main, ["omkoppel", "approve", str(proposal), *db])
    seen.texts += [ok.stdout, ok.stderr]
    assert ok.exit_code == 0 and f"omkoppeling {proposal}: recoupled" in ok.stdout


def test_housing_messages_name_rows_not_households(tmp_path: Path, seen: Seen) -> None:
    """Housing: recording an event for a household the user typed that has no coupling, or
    reporting it for another municipality, and importing a file whose rows name an unknown
    household, a second event and a date in the future, name the row and column only."""
    ledger, db = new_ledger(tmp_path)
    hh = households({f"{MARK}-W1": 2, f"{MARK}-W2": 1})
    p = propose(ledger, hh, None, pacing=Pacing(enabled=False))
    approve(
        ledger, p.batch_id, overrides={h: AMSTERDAM for h in hh["household_id"]}, reason="set-up"
    )
    today = dt.date.today().isoformat()
    r = seen.cli(
        "housing",
        "record",
        f"{MARK}-nobody",
        "offered",
        "--municipality",
        AMSTERDAM,
        "--date",
        today,
        *db,
    )
    assert "no approved coupling" in r.stderr
    r = seen.cli(
        "housing",
        "record",
        f"{MARK}-W1",
        "offered",
        "--municipality",
        EINDHOVEN,
        "--date",
        today,
        *db,
    )
    assert "not coupled to this municipality" in r.stderr
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    path = tmp_path / "housing.csv"
    pd.DataFrame(
        {
            "household_id": [f"{MARK}-stranger", f"{MARK}-W1", f"{MARK}-W1", f"{MARK}-W2"],
            "municipality": [AMSTERDAM] * 4,
            "event": ["offered", "offered", "offered", "offered"],
            "date": [today, today, today, future],
        }
    ).to_csv(path, index=False)
    r = seen.cli("housing", "import", str(path), *db)
    assert "housing.csv, row 4, column 'event'" in r.stderr
    single = tmp_path / "single.csv"
    pd.read_csv(path).iloc[[0, 1, 3]].to_csv(single, index=False)
    r = seen.cli("housing", "import", str(single), *db)
    for row, column in [(2, "household_id"), (4, "date")]:
        assert f"single.csv, row {row}, column '{column}'" in r.stderr, r.stderr


def test_a_planted_value_would_be_caught(caplog: pytest.LogCaptureFixture) -> None:
    """The check is not vacuous: a message or a log record holding a planted id fails it."""
    with pytest.raises(AssertionError):
        assert_clean([f"household '{MARK}-1' has no approved coupling"], [])
    logging.getLogger("coupler.test").warning("household %s refused", f"{MARK}-2")
    with pytest.raises(AssertionError):
        assert_clean([], caplog.records)
    assert_clean(["row 2, column 'household_id': no approved coupling"], [])
