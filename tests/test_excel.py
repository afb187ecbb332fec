"""Exports safe to open in Excel: hostile ids and names come out neutralised in every CSV and xlsx
coupler writes (run folders, analysis tables, ledger exports), and xlsx cells are never formulas."""

from __future__ import annotations

import csv
from pathlib import Path

import factories as f
import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from coupler.cli import main
from coupler.engine.solve import solve
from coupler.excel import FORMULA_START, safe_frame, safe_text, write_xlsx
from coupler.instance import Instance
from coupler.ledger import Ledger, approve, open_period, propose
from coupler.model import build_model
from coupler.policy import Policy
from coupler.rundir import TABLES, write_atomically, write_result

#: Ids and names an attacker could put in an input file (OWASP CSV injection).
HOSTILE = ['=HYPERLINK("x")', "=cmd|' /C calc'!A0", "@x", "+x", "-1+1", "\tx", "\rx"]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def assert_csv_safe(path: Path) -> int:
    """No cell of the CSV at ``path`` starts like a formula (numbers aside); returns the cells."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    cells = [c for row in rows for c in row]
    bad = [c for c in cells if c.startswith(FORMULA_START) and not _is_number(c)]
    assert not bad, (path.name, bad)
    return len(cells)


def assert_xlsx_safe(path: Path) -> int:
    """No cell of the workbook is a formula or text starting like one; returns the cells."""
    wb = load_workbook(path)
    n = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                n += 1
                assert cell.data_type != "f", (path.name, ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_START), (path.name, cell.value)
    return n


@pytest.fixture(scope="module")
def hostile_run() -> tuple:
    """Six places on a line, all named, in a province and region with hostile names; seven
    households with hostile ids, each with a job at place 0 (quota 2 there, 0 next door), so
    most of them break their criterion; household 0 also has family at place 5 (a conflict)."""
    inst = f.instance(
        f.LINE,
        [2, 0, 1, 1, 1, 2],
        [1] * len(HOSTILE),
        [f.Crit.job(h, 0) for h in range(len(HOSTILE))] + [f.Crit(0, "family", 5)],
        provinces=["=1+1", "@p", "+p", "-p", "=p", "p"],
        regions=["=A1", "@r", "+r", "-r", "=r", "r"],
    )
    ids = dict(zip([f.hid(i) for i in range(len(HOSTILE))], HOSTILE, strict=True))
    hh = inst.households.assign(household_id=inst.households["household_id"].map(ids))
    cr = inst.criteria.assign(household_id=inst.criteria["household_id"].map(ids))
    muni = inst.municipalities.assign(name=["=2+2", "@Place", "+Place", "-Place", "=P()", "P"])
    hostile = Instance(municipalities=muni, households=hh, criteria=cr)
    model = build_model(hostile, Policy())
    return model, solve(model)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_every_run_table_is_neutralised(hostile_run, tmp_path, fmt):
    """Every plan table of a run folder with hostile ids and names holds no formula: the ids
    appear with a leading apostrophe, and xlsx cells are strings, never formulas."""
    model, result = hostile_run
    assert len(result.conflicts) and result.broken_persons > 0
    out = tmp_path / "run"
    write_result(result, model, out, fmt=fmt)
    check = assert_csv_safe if fmt == "csv" else assert_xlsx_safe
    for name in TABLES:
        assert check(out / f"{name}.{fmt}") > 0, name
    if fmt == "csv":
        text = (out / "plan.csv").read_text(encoding="utf-8")
        for h in ("=HYPERLINK", "=cmd", "@x", "+x", "-1+1"):
            assert f"'{h}" in text
    else:
        plan = load_workbook(out / "plan.xlsx").active
        ids = {c.value for c in next(plan.iter_cols(min_col=1, max_col=1, min_row=2))}
        # XML reads a carriage return back as a line feed.
        assert ids == {safe_text(h).replace("\r", "\n") for h in HOSTILE}


def test_analysis_tables_are_neutralised(tmp_path):
    """A table written to a folder (compare, sweep) as CSV or xlsx is neutralised the same way,
    while negative numbers stay numbers."""
    table = pd.DataFrame({"label": HOSTILE, "delta": range(-3, len(HOSTILE) - 3)})
    write_atomically(tmp_path / "cmp", {"kpis.csv": table, "kpis.xlsx": table})
    assert assert_csv_safe(tmp_path / "cmp" / "kpis.csv") == 2 * (len(HOSTILE) + 1)
    assert assert_xlsx_safe(tmp_path / "cmp" / "kpis.xlsx") == 2 * (len(HOSTILE) + 1)
    back = pd.read_csv(tmp_path / "cmp" / "kpis.csv")
    assert back["delta"].tolist() == table["delta"].tolist()


def test_control_characters_do_not_stop_an_xlsx(tmp_path):
    """A control character inside an id cannot crash the xlsx export: it becomes U+FFFD."""
    frame = pd.DataFrame({"household_id": ["a\x01b", "c\x1fd", "ok"], "n": [1, 2, 3]})
    write_xlsx({"plan": frame}, tmp_path / "p.xlsx")
    values = [c.value for c in load_workbook(tmp_path / "p.xlsx").active["A"]]
    assert values == ["household_id", "a\ufffdb", "c\ufffdd", "ok"]


def test_safe_frame_covers_categories_and_column_names():
    """Categorical text columns and hostile column names are neutralised too."""
    frame = pd.DataFrame({"=col": pd.Categorical(["=x", "y"]), "n": [-1, 2]})
    safe = safe_frame(frame)
    assert list(safe.columns) == ["'=col", "n"]
    assert safe["'=col"].tolist() == ["'=x", "y"] and safe["n"].tolist() == [-1, 2]


def test_ledger_exports_are_neutralised(tmp_path):
    """batch propose/show --out, batch export (csv and xlsx) and ledger audit --out write hostile
    ids and reasons neutralised."""
    db = tmp_path / "l.sqlite"
    ids = [h for h in HOSTILE if not h[0].isspace()]
    hh = pd.DataFrame({"household_id": ids, "size": [1] * len(ids)})
    hh.to_csv(tmp_path / "h.csv", index=False)
    ledger = Ledger.open(db, user="=evil()")
    try:
        open_period(ledger, "2025-H1", 900)
        p = propose(ledger, tmp_path / "h.csv", None)
        approve(ledger, p.batch_id, overrides={ids[0]: "GM0344"}, reason="=SUM(A1:A9)")
    finally:
        ledger.close()
    r = CliRunner()
    outs = {
        "show.csv": ["batch", "show", str(p.batch_id), "--out"],
        "export.csv": ["batch", "export", "--out"],
        "export.xlsx": ["batch", "export", "--out"],
        "audit.csv": ["ledger", "audit", "--out"],
    }
    for name, args in outs.items():
        res = r.invoke(main, [*args, str(tmp_path / name), "--db", str(db)])
        assert res.exit_code == 0, res.output
        check = assert_xlsx_safe if name.endswith(".xlsx") else assert_csv_safe
        assert check(tmp_path / name) > 0
    audit = (tmp_path / "audit.csv").read_text(encoding="utf-8")
    assert "'=SUM(A1:A9)" in audit and "'=evil()" in audit
    shown = pd.read_csv(tmp_path / "show.csv")["household_id"]
    assert set(shown) == {safe_text(h) for h in ids}
