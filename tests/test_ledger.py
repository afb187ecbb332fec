"""Tests of the ledger (coupler.ledger): periods and backlog, paced batches, approvals with
overrides, idempotent proposals, export, backup, schema upgrades and the audit trail.

Instances are small: the 342 municipalities of nl-2024 with a reduced national total and
generated batches of ~300 persons, so each proposal solves in a second or two.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pgutil import LedgerTarget

from coupler.cli import main
from coupler.generate import generate_cases
from coupler.ledger import (
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    Pacing,
    approve,
    audit_trail,
    backup,
    close_period,
    open_period,
    period_status,
    progress_table,
    propose,
    quota_state,
)
from coupler.ledger import schema as t


@pytest.fixture(scope="module")
def municipalities(nl_municipalities: pd.DataFrame) -> pd.DataFrame:
    """The 342 municipalities of the embedded nl-2024 reference scenario (conftest.py)."""
    return nl_municipalities


def cases(
    municipalities: pd.DataFrame, persons: int, seed: int, prefix: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A generated batch whose household ids carry ``prefix`` (ids are unique across batches)."""
    hh, cr = generate_cases(municipalities, persons=persons, seed=seed)
    hh["household_id"] = prefix + hh["household_id"].astype(str)
    cr["household_id"] = prefix + cr["household_id"].astype(str)
    return hh, cr


def state(ledger: Ledger) -> pd.DataFrame:
    with ledger.read() as conn:
        period = ledger.open_period(conn)
        return quota_state(conn, period.id)


def dump(ledger: Ledger) -> dict[str, list[tuple]]:
    """Every row of every table (to compare a ledger before and after)."""
    with ledger.read() as conn:
        return {
            table.name: [
                tuple(r)
                for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in t.metadata.sorted_tables
        }


def test_six_month_run_with_backlog(
    tmp_path: Path, ledger_target: LedgerTarget, municipalities: pd.DataFrame
) -> None:
    """A scripted half year: six paced propose+approve batches never exceed a quota nor the
    monthly pacing target (unless pacing yielded); coupled persons add up to the approved
    batches; closing carries quota + backlog - coupled, which the next period takes as backlog,
    and the accounting holds across both periods."""
    ledger = ledger_target.open(user="tester")
    open_period(ledger, "2025-H1", 3600)
    approved_persons = 0
    for month in range(1, 7):
        hh, cr = cases(municipalities, 300, seed=month, prefix=f"M{month}-")
        p = propose(ledger, hh, cr)
        assert p.created and p.month == month
        s = approve(ledger, p.batch_id, reason="shortage accepted by the regievoerder")
        approved_persons += s["persons"]
        q = state(ledger)
        assert (q["coupled"] <= q["target"].clip(lower=0)).all(), "a quota was exceeded"
        if p.paced:
            ceiling = np.ceil(1.25 * month / 6 * q["target"] - 1e-9)
            assert (q["coupled"] <= ceiling).all(), "pacing target exceeded"
        assert int(q["coupled"].sum()) == approved_persons
        st = period_status(ledger)
        assert st["remaining"] == int(q["remaining"].sum())
        assert st["target"] - st["coupled"] == int((q["target"] - q["coupled"]).sum())
    h1 = state(ledger)
    assert approved_persons > 1500
    close_period(ledger)
    with pytest.raises(LedgerError, match="no open period"):
        state(ledger)
    open_period(ledger, "2025-H2", 1500, from_previous=True)
    h2 = state(ledger)
    expected = (h1["target"] - h1["coupled"]).to_numpy()
    np.testing.assert_array_equal(h2["backlog"].to_numpy(), expected)
    assert int(h2["backlog"].sum()) == 3600 - approved_persons
    hh, cr = cases(municipalities, 300, seed=11, prefix="N1-")
    p = propose(ledger, hh, cr)
    s = approve(ledger, p.batch_id, reason="shortage accepted")
    q = state(ledger)
    assert (q["coupled"] <= q["target"].clip(lower=0)).all()
    close_period(ledger)
    with ledger.read() as conn:
        carry = (
            pd.Series(
                dict(
                    conn.execute(
                        sa.select(t.quotas.c.municipality, t.quotas.c.carry).where(
                            t.quotas.c.period_id == 2
                        )
                    ).all()
                )
            )
            .reindex(q["municipality"])
            .to_numpy()
        )
    # Across both periods, per municipality: carry = quota1 + quota2 - coupled1 - coupled2.
    np.testing.assert_array_equal(
        carry, (h1["quota"] + q["quota"] - h1["coupled"] - q["coupled"]).to_numpy()
    )
    assert int(carry.sum()) == 3600 + 1500 - approved_persons - s["persons"]


def test_period_commands_and_errors(tmp_path: Path, ledger_target: LedgerTarget) -> None:
    """Period names are checked, only one period is open, a name is used once, and
    --from-previous needs an earlier period; failed commands write nothing."""
    ledger = ledger_target.open()
    with pytest.raises(LedgerError, match="2025-H1"):
        open_period(ledger, "2025-Q1", 100)
    with pytest.raises(LedgerError, match="no earlier period"):
        open_period(ledger, "2025-H1", 100, from_previous=True)
    open_period(ledger, "2025-H1", 100)
    before = dump(ledger)
    with pytest.raises(LedgerError, match="still open"):
        open_period(ledger, "2025-H2", 100)
    assert dump(ledger) == before
    close_period(ledger)
    with pytest.raises(LedgerError, match="already exists"):
        open_period(ledger, "2025-H1", 100)
    with pytest.raises(LedgerError, match="no open period"):
        close_period(ledger)


def test_idempotent_proposal_and_approval_rules(
    tmp_path: Path, ledger_target: LedgerTarget, municipalities: pd.DataFrame
) -> None:
    """Proposing the same input twice changes nothing; an override needs a reason and is
    audited; a batch cannot be approved twice; a household cannot be coupled twice."""
    ledger = ledger_target.open(user="rv1")
    open_period(ledger, "2025-H1", 3000)
    hh, cr = cases(municipalities, 200, seed=5, prefix="A-")
    p1 = propose(ledger, hh, cr, pacing=Pacing(enabled=False))
    snapshot = dump(ledger)
    p2 = propose(ledger, hh, cr, pacing=Pacing(enabled=False))
    assert not p2.created and p2.batch_id == p1.batch_id
    assert dump(ledger) == snapshot
    first = str(hh["household_id"].iloc[0])
    with pytest.raises(LedgerError, match="--reason"):
        approve(ledger, p1.batch_id, overrides={first: "GM0363"})
    with pytest.raises(LedgerError, match="unknown municipality"):
        approve(ledger, p1.batch_id, overrides={first: "GM9999"}, reason="x")
    assert dump(ledger) == snapshot
    approve(ledger, p1.batch_id, overrides={first: "GM0363"}, reason="family visit agreed")
    with ledger.read() as conn:
        row = conn.execute(sa.select(t.couplings).where(t.couplings.c.household_id == first)).one()
    assert (
        row.municipality == "GM0363"
        and row.status == "approved"
        and row.reason == "family visit agreed"
    )
    a = audit_trail(ledger)
    ov = a[(a["action"] == "override") & (a["subject"] == first)]
    assert (
        len(ov) == 1
        and ov["reason"].iloc[0] == "family visit agreed"
        and ov["who"].iloc[0] == "rv1"
    )
    with pytest.raises(LedgerError, match="approved"):
        approve(ledger, p1.batch_id)
    from coupler.errors import InputError

    with pytest.raises(InputError, match="already coupled"):
        propose(ledger, hh.iloc[:3], cr[cr["household_id"].isin(hh["household_id"].iloc[:3])])


def pinned(tmp_path: Path, hh: pd.DataFrame, code: str, persons: int, name: str) -> Path:
    """A locks file pinning the first households (about ``persons`` persons) to ``code``."""
    take = hh[hh["size"].cumsum() <= persons]
    path = tmp_path / f"{name}.csv"
    pd.DataFrame(
        {"household_id": take["household_id"], "municipality": code, "action": "pin"}
    ).to_csv(path, index=False)
    return path


def test_approval_never_exceeds_quota(
    tmp_path: Path, ledger_target: LedgerTarget, municipalities: pd.DataFrame
) -> None:
    """Two proposals against the same remaining quota, each pinning 40 persons to Amsterdam
    (quota 52): the second approval is refused as a whole and the ledger stays as it was."""
    ledger = ledger_target.open()
    open_period(ledger, "2025-H1", 1000)
    ha, ca = cases(municipalities, 150, seed=1, prefix="A-")
    hb, cb = cases(municipalities, 150, seed=2, prefix="B-")
    off = Pacing(enabled=False)
    a = propose(ledger, ha, ca, pacing=off, locks=pinned(tmp_path, ha, "GM0363", 40, "la"))
    b = propose(ledger, hb, cb, pacing=off, locks=pinned(tmp_path, hb, "GM0363", 40, "lb"))
    approve(ledger, a.batch_id, reason="ok")
    before = dump(ledger)
    with pytest.raises(LedgerError, match="would exceed the quota of .*GM0363"):
        approve(ledger, b.batch_id, reason="ok")
    assert dump(ledger) == before
    q = state(ledger)
    assert (q["coupled"] <= q["target"]).all()


def test_export_csv_and_excel(
    tmp_path: Path, ledger_target: LedgerTarget, municipalities: pd.DataFrame
) -> None:
    """The export reports quota, backlog, coupled and remaining per municipality and province;
    provinces sum their municipalities; the workbook has both sheets."""
    ledger = ledger_target.open()
    open_period(ledger, "2025-H1", 1000)
    p = propose(ledger, *cases(municipalities, 150, seed=3, prefix="A-"))
    approve(ledger, p.batch_id, reason="ok")
    _, m, prov = progress_table(ledger)
    assert int(m["coupled"].sum()) == 150 and int(prov["coupled"].sum()) == 150
    assert (m["remaining"] == m["target"] - m["coupled"]).all()
    assert len(prov) == 12
    runner = CliRunner()
    out = runner.invoke(
        main, ["batch", "export", *ledger_target.args, "--out", str(tmp_path / "p.xlsx")]
    )
    assert out.exit_code == 0, out.output
    sheets = pd.read_excel(tmp_path / "p.xlsx", sheet_name=None)
    assert set(sheets) == {"municipalities", "provinces"}
    assert int(sheets["provinces"]["remaining"].sum()) == 1000 - 150
    out = runner.invoke(
        main,
        [
            "batch",
            "export",
            *ledger_target.args,
            "--level",
            "province",
            "--out",
            str(tmp_path / "p.csv"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert list(pd.read_csv(tmp_path / "p.csv")["province"]) == sorted(prov["province"])


def test_backup_sqlite_and_json(tmp_path: Path) -> None:
    """A SQLite backup is a consistent copy with the same rows; a .json backup dumps every table;
    an existing file is never overwritten."""
    ledger = Ledger.open(tmp_path / "l.sqlite")
    open_period(ledger, "2025-H1", 500)
    rows_before = dump(ledger)
    out = backup(ledger, tmp_path / "b.sqlite")
    copy = Ledger.open(out)
    assert dump(copy) == rows_before
    data = json.loads(backup(ledger, tmp_path / "b.json").read_text())
    assert set(data) == {tb.name for tb in t.metadata.sorted_tables}
    assert len(data["quotas"]) == 342
    with pytest.raises(LedgerError, match="exists"):
        backup(ledger, tmp_path / "b.json")
    assert "backup" in set(audit_trail(ledger)["action"])


def test_schema_upgrade_from_version_1(tmp_path: Path) -> None:
    """A version-1 ledger is upgraded to the current version on open, keeping its rows; a ledger
    from a newer coupler is refused."""
    db = tmp_path / "old.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    old = t.v1_tables()
    with engine.begin() as conn:
        for table in old:
            table.create(conn)
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1, '2024-01-01')"))
        conn.execute(
            sa.text(
                "INSERT INTO periods (name, total, months, status, opened_at) "
                "VALUES ('2024-H2', 17600, 6, 'closed', '2024-07-01')"
            )
        )
    engine.dispose()
    ledger = Ledger.open(db)
    assert ledger.version() == SCHEMA_VERSION == 2
    with ledger.read() as conn:
        assert conn.execute(sa.select(t.periods.c.name)).scalar_one() == "2024-H2"
        cols = {c["name"] for c in sa.inspect(conn).get_columns("criteria")}
        assert "provisional_id" in cols
        assert conn.execute(sa.select(sa.func.count()).select_from(t.provisional)).scalar_one() == 0
    ledger.close()
    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(LedgerError, match="upgrade coupler"):
        Ledger.open(db)


def test_cli_round_trip_and_user_errors(
    tmp_path: Path, ledger_target: LedgerTarget, municipalities: pd.DataFrame
) -> None:
    """The CLI opens, proposes (idempotently), shows, approves and reports; user mistakes exit 2
    with a message and no traceback."""
    hh, cr = cases(municipalities, 120, seed=9, prefix="C-")
    hh.to_csv(tmp_path / "h.csv", index=False)
    cr.to_csv(tmp_path / "c.csv", index=False)
    r = CliRunner()

    def run(*args: str) -> object:
        return r.invoke(main, [*args, *ledger_target.args, "--user", "rv2"])

    assert run("period", "open", "2025-H1", "--total", "900").exit_code == 0
    res = run(
        "batch",
        "propose",
        "--households",
        str(tmp_path / "h.csv"),
        "--criteria",
        str(tmp_path / "c.csv"),
    )
    assert res.exit_code == 0 and "proposed batch 1" in res.output, res.output
    res = run(
        "batch",
        "propose",
        "--households",
        str(tmp_path / "h.csv"),
        "--criteria",
        str(tmp_path / "c.csv"),
    )
    assert "nothing changed" in res.output
    assert "proposed" in run("batch", "show").output
    res = run("batch", "approve", "--override", "C-H000001=GM9999", "--reason", "x")
    assert (
        res.exit_code == 2
        and "unknown municipality" in res.output
        and "Traceback" not in res.output
    )
    res = run("batch", "approve", "--override", "nonsense")
    assert res.exit_code == 2
    assert run("batch", "approve").exit_code == 0
    res = run("period", "status", "--json")
    s = json.loads(res.output)
    assert s["coupled"] == 120 and s["remaining"] == 780
    res = run("period", "open", "2025-H2", "--total", "10")
    assert res.exit_code == 2 and "still open" in res.output
    res = run("batch", "propose", "--households", str(tmp_path / "missing.csv"))
    assert res.exit_code == 2 and "file not found" in res.output
    assert "approve" in run("ledger", "audit").output


def test_audit_trail_complete(
    tmp_path: Path, ledger_target: LedgerTarget, municipalities: pd.DataFrame
) -> None:
    """Every change has an audit row naming who and when: each period opened and closed, each
    batch proposed and approved, each override with its reason; audit rows roll back with a
    failed command."""
    ledger = ledger_target.open(user="auditor")
    open_period(ledger, "2025-H1", 800)
    p = propose(ledger, *cases(municipalities, 100, seed=4, prefix="A-"))
    first = p.result.plan["household_id"].iloc[0]
    approve(ledger, p.batch_id, overrides={first: "GM0344"}, reason="school in Utrecht")
    n = len(audit_trail(ledger))
    with pytest.raises(LedgerError):
        approve(ledger, p.batch_id)
    assert len(audit_trail(ledger)) == n
    close_period(ledger, reason="end of half year")
    a = audit_trail(ledger)
    assert (a["who"] == "auditor").all() and a["at"].str.len().gt(0).all()
    with ledger.read() as conn:
        batch_ids = [b for (b,) in conn.execute(sa.select(t.batches.c.id))]
        changed = (
            conn.execute(
                sa.select(t.couplings.c.household_id).where(
                    t.couplings.c.proposed != t.couplings.c.municipality
                )
            )
            .scalars()
            .all()
        )
    for b in batch_ids:
        assert {"propose", "approve"} <= set(a.loc[a["subject"] == f"batch {b}", "action"])
    for h in changed:
        assert a[(a["action"] == "override") & (a["subject"] == h)]["reason"].notna().all()
        assert len(a[(a["action"] == "override") & (a["subject"] == h)]) == 1
    assert list(a.loc[a["command"].str.startswith("period"), "action"]) == ["open", "close"]
    assert a.loc[a["action"] == "close", "reason"].iloc[0] == "end of half year"
    assert batch_ids == [p.batch_id]
    assert set(changed) <= {first}
    if changed:
        override = a[(a["action"] == "override") & (a["subject"] == first)]
        assert override["reason"].tolist() == ["school in Utrecht"]
