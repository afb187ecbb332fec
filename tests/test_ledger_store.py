"""A ledger that cannot be confused (coupler.ledger.store): opening refuses a missing, empty,
truncated, damaged or foreign file with one line naming it; ``ledger check`` finds damage;
``ledger backup`` refuses a damaged ledger; SQLite reads take no write lock (WAL, deferred
transactions)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from coupler.cli import main
from coupler.ledger import Ledger, LedgerError, approve, check, open_period, propose
from coupler.ledger import schema as t


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger with period 2025-H1 (900 persons) and one approved batch of 12 households."""
    folder = tmp_path_factory.mktemp("ledger")
    hh = pd.DataFrame({"household_id": [f"S{i:03d}" for i in range(12)], "size": [1, 2, 3] * 4})
    hh.to_csv(folder / "h.csv", index=False)
    ledger = Ledger.open(folder / "sound.sqlite", user="rv")
    try:
        open_period(ledger, "2025-H1", 900)
        p = propose(ledger, folder / "h.csv", None)
        approve(ledger, p.batch_id)
    finally:
        ledger.close()
    return folder / "sound.sqlite"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def copy(sound: Path, tmp_path: Path) -> Path:
    target = tmp_path / "l.sqlite"
    shutil.copyfile(sound, target)
    return target


def one_clean_line(result) -> str:
    """The error of a refused command: exit 2, one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "sqlalchemy" not in result.output.lower()
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_sound_ledger_passes_its_check(sound):
    """check() finds nothing on a ledger built by the commands; the CLI exits 0."""
    ledger = Ledger.open(sound, create=False)
    try:
        assert check(ledger) == []
    finally:
        ledger.close()
    r = run("ledger", "check", "--db", str(sound))
    assert r.exit_code == 0 and "is sound" in r.output


def test_mistyped_path_is_refused_with_its_absolute_path(tmp_path, monkeypatch):
    """A command other than period open / ledger init on a missing file creates nothing and
    names the absolute path it looked at."""
    monkeypatch.chdir(tmp_path)
    for args in (["period", "status"], ["batch", "show"], ["ledger", "audit"], ["ledger", "check"]):
        line = one_clean_line(run(*args, "--db", "mistyped.sqlite"))
        assert str(tmp_path / "mistyped.sqlite") in line and "no ledger at" in line
    assert not (tmp_path / "mistyped.sqlite").exists()
    with pytest.raises(LedgerError, match="no ledger at"):
        Ledger.open(tmp_path / "mistyped.sqlite", create=False)


def test_only_period_open_and_ledger_init_create(tmp_path):
    """``ledger init`` and ``period open`` create a ledger; afterwards other commands use it."""
    db = tmp_path / "new.sqlite"
    assert run("ledger", "init", "--db", str(db)).exit_code == 0 and db.is_file()
    assert run("ledger", "check", "--db", str(db)).exit_code == 0
    db2 = tmp_path / "new2.sqlite"
    assert run("period", "open", "2025-H1", "--total", "100", "--db", str(db2)).exit_code == 0
    assert run("period", "status", "--db", str(db2)).exit_code == 0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("empty", "is empty (0 bytes)"),
        ("truncated", "is truncated"),
        ("header-only", "is truncated"),
        ("text", "is not a SQLite database"),
        ("foreign", "holds tables but no coupler ledger"),
        ("blank-sqlite", "no coupler ledger in"),
    ],
)
def test_bad_files_give_one_clear_line(sound, tmp_path, damage, message):
    """Every command, even period open, refuses an empty, truncated, foreign or non-SQLite file
    with one line naming the file, and leaves the file as it was."""
    db = tmp_path / "l.sqlite"
    if damage == "empty":
        db.write_bytes(b"")
    elif damage == "truncated":
        db.write_bytes(sound.read_bytes()[: sound.stat().st_size // 2])
    elif damage == "header-only":
        db.write_bytes(sound.read_bytes()[:60])
    elif damage == "text":
        db.write_text("household_id,size\nH1,2\n")
    elif damage == "foreign":
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE people (name TEXT)")
    elif damage == "blank-sqlite":
        sqlite3.connect(db).close()
        db.write_bytes(db.read_bytes() or b"")
        if not db.stat().st_size:  # sqlite writes nothing for an untouched database
            with sqlite3.connect(db) as conn:
                conn.execute("PRAGMA user_version = 1")
    before = db.read_bytes() if db.is_file() else None
    commands = [["period", "status"], ["ledger", "check"]]
    if damage != "blank-sqlite":
        commands.append(["period", "open", "2025-H1", "--total", "10"])
    for args in commands:
        line = one_clean_line(run(*args, "--db", str(db)))
        assert message in line and str(db) in line, line
    if before is not None:
        assert db.read_bytes() == before


def test_missing_folder_and_bad_urls_give_one_clear_line(tmp_path):
    """A ledger in a missing folder, a URL with a bad port and an unreachable server each give
    one line (the password hidden)."""
    line = one_clean_line(
        run("period", "open", "X", "--total", "5", "--db", str(tmp_path / "no/l.db"))
    )
    assert "does not exist" in line and str(tmp_path / "no") in line
    line = one_clean_line(run("period", "status", "--db-url", "postgresql://u:pw@host:port/db"))
    assert "port" in line and "pw" not in line.replace("port", "")
    line = one_clean_line(
        run("period", "status", "--db-url", "postgresql+psycopg2://u:pw@127.0.0.1:1/db")
    )
    assert "cannot use the ledger" in line and ":pw@" not in line
    line = one_clean_line(run("period", "status", "--db-url", "nonsense"))
    assert "cannot use database URL" in line


def test_check_finds_a_missing_audit_row(sound, tmp_path):
    """Deleting the audit row of the approval makes check fail naming it; the CLI exits 1."""
    db = copy(sound, tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit WHERE action = 'approve'")
    r = run("ledger", "check", "--db", str(db))
    assert r.exit_code == 1
    assert "no audit row for batch 1 approved" in r.output


def test_check_finds_an_over_spending_charge(sound, tmp_path):
    """A charge added by hand (no coupling, beyond the quota) breaks two invariants: charges
    equal approved couplings, and no quota over-spent."""
    db = copy(sound, tmp_path)
    with sqlite3.connect(db) as conn:
        pid, code, target = conn.execute(
            "SELECT period_id, municipality, quota + backlog FROM quotas LIMIT 1"
        ).fetchone()
        conn.execute(
            "INSERT INTO charges (period_id, municipality, persons, source, at) "
            "VALUES (?, ?, ?, 'approve', '2025-01-01')",
            (pid, code, target + 5),
        )
    ledger = Ledger.open(db, create=False)
    try:
        problems = check(ledger)
    finally:
        ledger.close()
    assert any(code in p and "approved couplings" in p for p in problems), problems
    assert any(code in p and "quota + backlog" in p for p in problems), problems


def test_check_and_backup_on_a_corrupted_file(sound, tmp_path):
    """Overwritten pages fail SQLite's integrity check; backup refuses to copy that ledger."""
    db = copy(sound, tmp_path)
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[3 * page : 5 * page] = b"\xa5" * (2 * page)
    db.write_bytes(bytes(data))
    r = run("ledger", "check", "--db", str(db))
    assert r.exit_code in (1, 2) and "Traceback" not in r.output
    assert "integrity" in r.output or "malformed" in r.output
    r = run("ledger", "backup", str(tmp_path / "b.sqlite"), "--db", str(db))
    assert r.exit_code == 2 and not (tmp_path / "b.sqlite").exists()


def test_backup_of_a_sound_ledger_still_works(sound, tmp_path):
    """A sound ledger is backed up after its check, to a copy that passes the check itself."""
    db = copy(sound, tmp_path)
    r = run("ledger", "backup", str(tmp_path / "b.sqlite"), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert run("ledger", "check", "--db", str(tmp_path / "b.sqlite")).exit_code == 0


def _periods(ledger: Ledger, conn: sa.Connection | None = None) -> list[str]:
    q = sa.select(t.periods.c.name).order_by(t.periods.c.name)
    if conn is not None:
        return list(conn.execute(q).scalars())
    with ledger.read() as c:
        return list(c.execute(q).scalars())


def test_a_sqlite_ledger_runs_in_wal_mode(sound, tmp_path):
    """A SQLite ledger is in WAL mode once opened, so readers and a writer do not block each
    other (the mode stays in the file)."""
    ledger = Ledger.open(copy(sound, tmp_path), create=False)
    try:
        with ledger.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        ledger.close()


def test_a_write_does_not_wait_for_an_open_read(sound, tmp_path):
    """A read transaction left open in one handle (as a slow page would) does not stop another
    handle's write from committing, and keeps seeing the state it started with; a new read sees
    the write."""
    db = copy(sound, tmp_path)
    reader, writer = Ledger.open(db, create=False), Ledger.open(db, create=False)
    try:
        with reader.read() as conn:
            before = _periods(reader, conn)
            with writer.write("test") as tx:
                tx.conn.execute(
                    t.periods.update().where(t.periods.c.name == "2025-H1").values(name="2025-H9")
                )
            assert _periods(reader, conn) == before == ["2025-H1"]
        assert _periods(reader) == ["2025-H9"]
    finally:
        reader.close()
        writer.close()
