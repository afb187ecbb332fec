"""Reliability of the ledger with real processes: concurrent approvals on SQLite never
over-spend a quota, a command killed mid-transaction leaves the ledger as it was, and reads do
not wait for a write in progress.

Each approval runs as its own ``python -c 'coupler.cli.main()'`` process; a test hook
(COUPLER_LEDGER_PAUSE=<step>:<seconds>) sleeps inside the transaction so that the processes
really overlap, and COUPLER_LEDGER_PAUSE_FILE tells the test when the pause has started.
"""

from __future__ import annotations

import importlib.resources
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pgutil import LedgerTarget

from coupler.cli import main
from coupler.generate import generate_cases
from coupler.ledger import (
    Ledger,
    Pacing,
    approve,
    batch_table,
    open_period,
    period_status,
    propose,
    quota_state,
)
from coupler.ledger import schema as t
from coupler.ledger.review import period_overview

_CLI = "import sys; from coupler.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def municipalities() -> pd.DataFrame:
    """The 342 municipalities of the embedded nl-2024 reference scenario."""
    path = importlib.resources.files("coupler.scenarios") / "nl-2024" / "municipalities.csv"
    return pd.read_csv(str(path))


def _batch(
    tmp_path: Path, municipalities: pd.DataFrame, seed: int, prefix: str, pin: str, pin_persons: int
):
    hh, cr = generate_cases(municipalities, persons=150, seed=seed)
    hh["household_id"] = prefix + hh["household_id"].astype(str)
    cr["household_id"] = prefix + cr["household_id"].astype(str)
    take = hh[hh["size"].cumsum() <= pin_persons]
    locks = tmp_path / f"locks-{prefix}.csv"
    pd.DataFrame(
        {"household_id": take["household_id"], "municipality": pin, "action": "pin"}
    ).to_csv(locks, index=False)
    return hh, cr, locks


def _cli(
    target: LedgerTarget, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CLI, *args, *target.args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _dump(ledger: Ledger) -> dict[str, list[tuple]]:
    with ledger.read() as conn:
        return {
            table.name: [
                tuple(r)
                for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in t.metadata.sorted_tables
        }


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended before pausing: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("the process never reached the pause")
        time.sleep(0.05)


def _paused_approval(
    target: LedgerTarget, batch: int, tmp_path: Path, seconds: float
) -> subprocess.Popen[str]:
    """A `batch approve` process paused for ``seconds`` inside its transaction, after writing
    its couplings (returns once the pause has started)."""
    marker = tmp_path / "paused"
    proc = _cli(
        target,
        "batch",
        "approve",
        str(batch),
        "--reason",
        "test",
        env={
            "COUPLER_LEDGER_PAUSE": f"approve:{seconds}",
            "COUPLER_LEDGER_PAUSE_FILE": str(marker),
        },
    )
    _wait_for(marker, proc)
    return proc


@pytest.fixture()
def two_proposals(
    tmp_path: Path, ledger_target: LedgerTarget, municipalities: pd.DataFrame
) -> tuple[LedgerTarget, int, int]:
    """A ledger (SQLite, and PostgreSQL when available) with two proposed batches that each pin
    40 persons to Amsterdam (quota 52 of a national 1,000): each fits alone, together they
    exceed Amsterdam's quota."""
    db = ledger_target
    ledger = db.open()
    open_period(ledger, "2025-H1", 1000)
    off = Pacing(enabled=False)
    ha, ca, la = _batch(tmp_path, municipalities, 1, "A-", "GM0363", 40)
    hb, cb, lb = _batch(tmp_path, municipalities, 2, "B-", "GM0363", 40)
    a = propose(ledger, ha, ca, pacing=off, locks=la).batch_id
    b = propose(ledger, hb, cb, pacing=off, locks=lb).batch_id
    ledger.close()
    return db, a, b


def test_concurrent_approvals_never_overspend(
    two_proposals: tuple[LedgerTarget, int, int], tmp_path: Path
) -> None:
    """Two processes approve the two conflicting batches at the same time (each sleeps inside
    its transaction after its quota check): exactly one succeeds, the other is refused for the
    quota, and no municipality is charged beyond quota + backlog."""
    db, a, b = two_proposals
    env = {"COUPLER_LEDGER_PAUSE": "approve-before:1.5"}
    p1 = _cli(db, "batch", "approve", str(a), "--reason", "test", env=env)
    p2 = _cli(db, "batch", "approve", str(b), "--reason", "test", env=env)
    out1, out2 = p1.communicate(timeout=120), p2.communicate(timeout=120)
    codes = sorted([p1.returncode, p2.returncode])
    assert codes == [0, 2], (out1, out2)
    refused = out1[1] if p1.returncode else out2[1]
    assert "would exceed the quota" in refused and "GM0363" in refused
    ledger = db.open()
    with ledger.read() as conn:
        q = quota_state(conn, ledger.open_period(conn).id)
        statuses = sorted(conn.execute(sa.select(t.batches.c.status)).scalars())
    assert statuses == ["approved", "proposed"]
    assert (q["coupled"] <= q["target"]).all()
    assert int(q.loc[q["municipality"] == "GM0363", "coupled"].iloc[0]) <= 52


def test_killed_approval_leaves_ledger_unchanged(
    two_proposals: tuple[LedgerTarget, int, int], tmp_path: Path
) -> None:
    """An approval killed (SIGKILL) after it wrote its couplings but before it committed leaves
    every table as it was; the ledger is not locked afterwards and the approval can be redone."""
    db, a, _ = two_proposals
    ledger = db.open()
    before = _dump(ledger)
    proc = _paused_approval(db, a, tmp_path, 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _dump(ledger) == before
    s = approve(ledger, a, reason="redone after the interruption")
    assert s["persons"] == 150


def test_killed_period_close_leaves_period_open(
    tmp_path: Path, ledger_target: LedgerTarget
) -> None:
    """A period close killed inside its transaction leaves the period open and no carry set."""
    db = ledger_target
    ledger = db.open()
    open_period(ledger, "2025-H1", 500)
    before = _dump(ledger)
    marker = tmp_path / "paused"
    proc = _cli(
        db,
        "period",
        "close",
        env={"COUPLER_LEDGER_PAUSE": "close:60", "COUPLER_LEDGER_PAUSE_FILE": str(marker)},
    )
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert _dump(ledger) == before


def test_reads_do_not_wait_for_a_write_in_progress(
    two_proposals: tuple[LedgerTarget, int, int], tmp_path: Path
) -> None:
    """While another process holds a write transaction open (an approval paused after writing
    its couplings, longer than SQLite's 60 s lock wait), opening the ledger, `period status`,
    `batch show` and the review screen's period overview all complete, see the ledger as it was
    before that write, and leave the writer untouched."""
    db, a, _ = two_proposals
    proc = _paused_approval(db, a, tmp_path, 150)
    try:
        ledger = db.open(create=False)
        try:
            status = period_status(ledger)
            batch, rows = batch_table(ledger, a)
            view = period_overview(ledger, None)
        finally:
            ledger.close()
        shown = CliRunner().invoke(main, ["batch", "show", str(a), *db.args])
        assert proc.poll() is None, "the writer ended before the reads were done"
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert batch.status == "proposed" and (rows["status"] == "proposed").all()
    assert status["coupled"] == 0
    assert view is not None and view["status"]["coupled"] == 0
    assert shown.exit_code == 0, shown.output
