"""Tests of coupler.ledger.periods: a period opens with official quotas (a --quotas file or the
scenario's quota column) or with a national total divided by population."""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from coupler.cli import main
from coupler.errors import InputError
from coupler.ledger import Ledger, LedgerError, open_period
from coupler.ledger import schema as t

NL = importlib.resources.files("coupler.scenarios") / "nl-2024"


def _quotas(ledger: Ledger) -> pd.DataFrame:
    with ledger.read() as conn:
        return pd.DataFrame(
            conn.execute(
                sa.select(t.quotas.c.municipality, t.quotas.c.quota, t.quotas.c.backlog)
            ).all(),
            columns=["code", "quota", "backlog"],
        ).set_index("code")


def _official(tmp_path: Path, backlog: bool = False) -> tuple[Path, pd.DataFrame]:
    m = pd.read_csv(str(NL / "municipalities.csv"))
    q = pd.DataFrame({"code": m["code"], "quota": (m.index.to_numpy() % 7) * 3})
    if backlog:
        q["backlog"] = (m.index.to_numpy() % 3) - 1
    path = tmp_path / "quotas.csv"
    q.to_csv(path, index=False)
    return path, q.set_index("code")


def test_open_with_a_quotas_file_without_total(tmp_path: Path) -> None:
    """`period open --quotas FILE` stores each municipality's official quota and backlog as
    given, and the period's total is their sum."""
    path, q = _official(tmp_path, backlog=True)
    db = tmp_path / "l.sqlite"
    r = CliRunner().invoke(
        main, ["period", "open", "2025-H1", "--quotas", str(path), "--db", str(db)]
    )
    assert r.exit_code == 0, r.output
    got = _quotas(Ledger.open(db))
    assert (got["quota"] == q["quota"].reindex(got.index)).all()
    assert (got["backlog"] == q["backlog"].reindex(got.index)).all()
    assert f"total {int(q['quota'].sum()):,}" in r.output


def test_open_with_the_scenario_quota_column(tmp_path: Path) -> None:
    """A scenario whose municipalities carry a quota column opens without --total and keeps
    those quotas; --total with such a scenario is refused with a clear message."""
    folder = tmp_path / "scen"
    shutil.copytree(str(NL), folder)
    m = pd.read_csv(folder / "municipalities.csv")
    m["quota"] = (m.index % 5) + 1
    m.to_csv(folder / "municipalities.csv", index=False)
    ledger = Ledger.open(tmp_path / "l.sqlite")
    with pytest.raises(LedgerError, match="own quota column"):
        open_period(ledger, "2025-H1", 1000, scenario=str(folder))
    s = open_period(ledger, "2025-H1", scenario=str(folder))
    got = _quotas(ledger)
    assert s["total"] == int(m["quota"].sum())
    assert (got["quota"] == m.set_index("code")["quota"].reindex(got.index)).all()


def test_total_alone_still_divides_by_population(tmp_path: Path) -> None:
    """--total alone divides by population (the quotas sum to the total, the largest
    municipality gets the most); neither --total nor --quotas is an error naming both."""
    ledger = Ledger.open(tmp_path / "l.sqlite")
    with pytest.raises(LedgerError, match="--quotas"):
        open_period(ledger, "2025-H1")
    open_period(ledger, "2025-H1", 17600)
    got = _quotas(ledger)
    m = pd.read_csv(str(NL / "municipalities.csv")).set_index("code")
    assert int(got["quota"].sum()) == 17600
    assert got["quota"].idxmax() == m["population"].idxmax()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("drop", "have no quota"),
        ("unknown", "unknown municipality code"),
        ("negative", "quota must be a whole number >= 0"),
    ],
)
def test_bad_quotas_file_names_row_and_column(tmp_path: Path, rows: str, message: str) -> None:
    """A quotas file that misses a municipality, names an unknown code or has a negative quota
    is refused with file, row and column, and no period is opened."""
    path, q = _official(tmp_path)
    table = q.reset_index()
    if rows == "drop":
        table = table.iloc[1:]
    elif rows == "unknown":
        table.loc[3, "code"] = "GM9999"
    else:
        table.loc[3, "quota"] = -4
    table.to_csv(path, index=False)
    ledger = Ledger.open(tmp_path / "l.sqlite")
    with pytest.raises(InputError) as exc:
        open_period(ledger, "2025-H1", quotas=path)
    text = str(exc.value)
    assert message in text and "quotas.csv" in text
    if rows != "drop":
        assert "row 5" in text
    with ledger.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.periods)).scalar_one() == 0
