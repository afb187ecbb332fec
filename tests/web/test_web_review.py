"""The review data layer and its command line (SQLite and PostgreSQL): the Excel round trip,
accounts and roles, scoped queries, stored explanations, withdraw, period close and explain."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from openpyxl import load_workbook

from coupler.cli import main
from coupler.errors import InputError
from coupler.ledger import LedgerError, quota_state, withdraw
from coupler.ledger import schema as t
from coupler.ledger.explanations import batch_hash, review_households
from coupler.ledger.review import (
    Filters,
    NotVisible,
    approve_workbook,
    batch_view,
    export_review,
    household_view,
    read_decisions,
    set_override,
)
from coupler.ledger.users import add_user, authenticate, disable_user, list_users, set_password
from coupler.web.i18n import CATALOGUE, LANGUAGES


def _args(ledger) -> list[str]:
    url = ledger.engine.url
    if url.get_backend_name() == "sqlite":
        return ["--db", str(url.database)]
    return ["--db-url", url.render_as_string(hide_password=False)]


def _room(ledger, batch_id: int) -> pd.Series:
    """Room per municipality code after the proposed batch."""
    with ledger.read() as conn:
        q = quota_state(conn, ledger.open_period(conn).id).set_index("municipality")
        cp = pd.DataFrame(
            conn.execute(
                sa.select(t.couplings.c.municipality, t.couplings.c.persons).where(
                    t.couplings.c.batch_id == batch_id
                )
            ).all(),
            columns=["municipality", "persons"],
        )
    planned = cp.groupby("municipality")["persons"].sum()
    return (q["available"] - q["reserved"]).sub(planned, fill_value=0).sort_values(ascending=False)


def _names(ledger) -> dict[str, str]:
    with ledger.read() as conn:
        return dict(conn.execute(sa.select(t.quotas.c.municipality, t.quotas.c.name)).all())


def test_review_workbook_round_trip(fresh, tmp_path: Path) -> None:
    """The review workbook has the three sheets by name, frozen and filtered headers, a decision
    drop-down, text (not formula) cells and a hidden batch hash; its decisions read back and
    approve the batch with each override's own reason."""
    ledger, demo = fresh
    b = demo.batch_id
    path = export_review(ledger, b, tmp_path / "review.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["koppelingen", "criteria", "gemeenten", "controle"]
    assert wb["controle"].sheet_state == "hidden"
    ws = wb["koppelingen"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref
    header = [c.value for c in ws[1]]
    assert {"huishouden", "gemeente", "besluit", "reden", "nieuwe gemeente"} <= set(header)
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert any("akkoord" in (dv.formula1 or "") for dv in lists)
    names = set(_names(ledger).values())
    col = header.index("gemeente")
    shown = {r[col].value for r in ws.iter_rows(min_row=2) if r[col].value}
    assert shown and shown <= names  # names, not codes
    assert not any(str(v).startswith("GM") for v in shown)
    for row in wb["koppelingen"].iter_rows():
        for cell in row:
            assert cell.data_type != "f"
    assert wb["controle"]["B2"].value == _hash(ledger, b)

    code = str(_room(ledger, b).index[0])
    h1, h2 = ws.cell(row=2, column=1).value, ws.cell(row=3, column=1).value
    dec, new, why = (header.index(c) + 1 for c in ("besluit", "nieuwe gemeente", "reden"))
    ws.cell(row=2, column=dec).value = "wijzigen"
    ws.cell(row=2, column=new).value = _names(ledger)[code]
    ws.cell(row=2, column=why).value = "baan in de buurt"
    ws.cell(row=3, column=dec).value = "akkoord"
    wb.save(path)
    d = read_decisions(ledger, path)
    assert d.batch_id == b and d.overrides == {h1: code} and d.approved == 1
    s = approve_workbook(ledger, path, reason="tekort geaccepteerd")
    assert s["overrides"] == 1
    with ledger.read() as conn:
        row = conn.execute(
            sa.select(t.couplings).where(
                (t.couplings.c.batch_id == b) & (t.couplings.c.household_id == h1)
            )
        ).one()
    assert row.municipality == code and row.reason == "baan in de buurt"
    assert h2


def _hash(ledger, b: int) -> str:
    with ledger.read() as conn:
        return batch_hash(conn, b)


def test_workbook_refused_when_batch_changed(fresh, tmp_path: Path) -> None:
    """A workbook exported before someone else overrode a coupling is refused as a whole."""
    ledger, demo = fresh
    b = demo.batch_id
    path = export_review(ledger, b, tmp_path / "review.xlsx")
    view = batch_view(ledger, b, None, Filters(per_page=1))
    code = str(_room(ledger, b).index[0])
    set_override(ledger, b, view["rows"][0]["household_id"], code, "elders werk")
    with pytest.raises(LedgerError, match="changed since the review workbook"):
        approve_workbook(ledger, path, reason="x")
    with ledger.read() as conn:
        assert conn.execute(sa.select(t.batches.c.status).where(t.batches.c.id == b)).scalar() == (
            "proposed"
        )


def test_workbook_errors_name_row_and_column_without_personal_values(fresh, tmp_path: Path) -> None:
    """Bad decisions are reported per file, spreadsheet row and column; no household id or cell
    value is echoed."""
    ledger, demo = fresh
    path = export_review(ledger, demo.batch_id, tmp_path / "review.xlsx")
    wb = load_workbook(path)
    ws = wb["koppelingen"]
    header = [c.value for c in ws[1]]
    dec = header.index("besluit") + 1
    ids = [ws.cell(row=r, column=1).value for r in (2, 3, 4)]
    ws.cell(row=2, column=dec).value = "misschien"
    ws.cell(row=3, column=dec).value = "wijzigen"  # no municipality, no reason
    ws.cell(row=4, column=1).value = "H-UNKNOWN-77"
    wb.save(path)
    with pytest.raises(InputError) as err:
        read_decisions(ledger, path)
    text = str(err.value)
    assert "row 2, column 'besluit'" in text
    assert "row 3, column 'nieuwe gemeente'" in text
    assert "row 4, column 'huishouden'" in text
    assert "misschien" not in text and "H-UNKNOWN-77" not in text
    assert not any(i in text for i in ids)
    (tmp_path / "bad.xlsx").write_text("not a workbook")
    with pytest.raises(InputError, match="not a readable .xlsx"):
        read_decisions(ledger, tmp_path / "bad.xlsx")


def test_hostile_cells_are_text_in_the_workbook(fresh, tmp_path: Path) -> None:
    """A household id that looks like a formula is written with a leading apostrophe as text,
    and reads back as the original id."""
    ledger, demo = fresh
    b = demo.batch_id
    view = batch_view(ledger, b, None, Filters(per_page=1))
    old = view["rows"][0]["household_id"]
    with ledger.write("test") as tx:
        for table in (t.couplings, review_households):
            tx.conn.execute(
                table.update()
                .where((table.c.batch_id == b) & (table.c.household_id == old))
                .values(household_id="=HYPERLINK(1)")
            )
    path = export_review(ledger, b, tmp_path / "review.xlsx")
    ws = load_workbook(path)["koppelingen"]
    values = [c.value for c in ws["A"]]
    assert "'=HYPERLINK(1)" in values and "=HYPERLINK(1)" not in values
    header = [c.value for c in ws[1]]
    row = values.index("'=HYPERLINK(1)") + 1
    ws.cell(row=row, column=header.index("besluit") + 1).value = "akkoord"
    ws.parent.save(path)
    assert read_decisions(ledger, path).approved == 1


def test_scoped_queries(fresh) -> None:
    """A gemeente reader's batch view holds only its own couplings (also under filters naming
    other places); a household elsewhere raises NotVisible; the regievoerder sees everything."""
    ledger, demo = fresh
    own = next(r for n, r, _ in demo.accounts if n == "gemeente").split(":")[1]
    b = demo.batch_id
    everything = batch_view(ledger, b, None, Filters(per_page=500))
    mine = batch_view(ledger, b, own, Filters(per_page=500))
    assert mine["total"] == sum(r["current"] == own for r in everything["rows"]) > 0
    assert all(r["current"] == own for r in mine["rows"])
    assert batch_view(ledger, b, own, Filters(municipality="Amsterdam"))["total"] in (
        0,
        mine["total"] if own == "GM0363" else 0,
    )
    elsewhere = next(r for r in everything["rows"] if r["current"] != own)
    with pytest.raises(NotVisible):
        household_view(ledger, b, elsewhere["household_id"], own)
    assert household_view(ledger, b, elsewhere["household_id"], None)["coupling"]


def test_stored_explanations_name_three_alternatives(fresh) -> None:
    """Every proposed household has its criteria verdicts and up to three alternatives, each
    with a why-not reason from the fixed list; the batch counts match the couplings."""
    ledger, demo = fresh
    b = demo.batch_id
    view = batch_view(ledger, b, None, Filters(per_page=500))
    assert view["counts"]["broken"] == sum(bool(r["broken_kinds"]) for r in view["rows"]) >= 1
    for r in view["rows"][:25]:
        d = household_view(ledger, b, r["household_id"], None)["detail"]
        assert 1 <= len(d["alternatives"]) <= 3
        assert [a["rank"] for a in d["alternatives"]] == list(range(1, len(d["alternatives"]) + 1))
        assert {a["why_not"] for a in d["alternatives"]} <= {
            "breaks",
            "no_room",
            "lower_score",
            "fill_balance",
            "swap",
        }
        assert all(c["state"] in ("met", "broken", "yielded", "soft") for c in d["criteria"])


def test_override_needs_reason_and_room(fresh) -> None:
    """An override needs a reason and a municipality with room for the household; a full one is
    refused with the room it has left."""
    ledger, demo = fresh
    b = demo.batch_id
    h = batch_view(ledger, b, None, Filters(per_page=1))["rows"][0]
    with pytest.raises(LedgerError, match="needs a reason"):
        set_override(ledger, b, h["household_id"], "Utrecht", " ")
    full = str(_room(ledger, b).index[-1])
    with pytest.raises(LedgerError, match="places left"):
        set_override(ledger, b, h["household_id"], full, "reden")
    with pytest.raises(LedgerError, match="unknown municipality"):
        set_override(ledger, b, h["household_id"], "Atlantis", "reden")


def test_accounts(fresh) -> None:
    """Accounts hash passwords with argon2id, check roles and municipality codes, authenticate
    only active accounts with the right password, and never store or audit the password."""
    ledger, _ = fresh
    add_user(ledger, "piet", "Gemeente:gm0344", "correct horse battery")
    assert {"name": "piet", "role": "gemeente:GM0344", "active": True}.items() <= next(
        u for u in list_users(ledger) if u["name"] == "piet"
    ).items()
    with ledger.read() as conn:
        from coupler.ledger.users import users

        digest = conn.execute(
            sa.select(users.c.password_hash).where(users.c.name == "piet")
        ).scalar()
        audit = " ".join(str(x) for row in conn.execute(sa.select(t.audit)) for x in row)
    assert digest.startswith("$argon2id$") and "correct horse" not in digest + audit
    assert authenticate(ledger, "piet", "correct horse battery").municipality == "GM0344"
    assert authenticate(ledger, "piet", "wrong") is None
    assert authenticate(ledger, "nobody", "correct horse battery") is None
    for role in ("admin", "gemeente:GM9999", "gemeente:0363"):
        with pytest.raises(LedgerError):
            add_user(ledger, "x", role, "long enough password")
    with pytest.raises(LedgerError, match="at least"):
        add_user(ledger, "kort", "analist", "short")
    with pytest.raises(LedgerError, match="exists"):
        add_user(ledger, "piet", "analist", "another long password")
    disable_user(ledger, "piet")
    assert authenticate(ledger, "piet", "correct horse battery") is None
    set_password(ledger, "piet", "a brand new password")
    assert authenticate(ledger, "piet", "a brand new password") is not None


def test_cli_user_commands(fresh, tmp_path: Path) -> None:
    """`coupler user add/list/disable/password` work on the ledger and never print the password."""
    ledger, _ = fresh
    pw = tmp_path / "pw"
    pw.write_text("s3cret-password-value\n")
    r = CliRunner()
    args = _args(ledger)
    out = r.invoke(
        main, ["user", "add", "jan", "--role", "analist", "--password-file", str(pw), *args]
    )
    assert out.exit_code == 0 and "added jan (analist)" in out.output
    out = r.invoke(
        main, ["user", "add", "kees", "--role", "baas", "--password-file", str(pw), *args]
    )
    assert out.exit_code == 2 and "--role must be" in out.output
    out = r.invoke(main, ["user", "list", *args])
    assert re.search(r"jan\s+analist\s+active", out.output)
    assert r.invoke(main, ["user", "disable", "jan", *args]).exit_code == 0
    assert re.search(r"jan\s+analist\s+disabled", r.invoke(main, ["user", "list", *args]).output)
    out = r.invoke(
        main, ["user", "password", "jan", *args], input="another-password\nanother-password\n"
    )
    assert out.exit_code == 0
    assert authenticate(ledger, "jan", "another-password") is not None
    everything = "".join(o.output for o in [out])
    assert "another-password" not in everything and "s3cret" not in everything


def test_cli_show_explain_export_approve(fresh, tmp_path: Path) -> None:
    """`batch show` names places and reasons (no raw dict), `explain --db --batch` explains a
    ledger coupling by name with why-not reasons, and `batch export --review` plus `batch
    approve --decisions` approve the batch."""
    ledger, demo = fresh
    b = demo.batch_id
    r = CliRunner()
    args = _args(ledger)
    out = r.invoke(main, ["batch", "show", str(b), *args])
    assert out.exit_code == 0 and "{" not in out.output and "breaks" in out.output
    names = set(_names(ledger).values())
    assert any(n in out.output for n in names)
    view = batch_view(ledger, b, None, Filters(broken=True))
    h = view["rows"][0]["household_id"]
    out = r.invoke(main, ["explain", h, "--batch", str(b), *args])
    assert out.exit_code == 0, out.output
    assert view["rows"][0]["current_name"] in out.output and "alternative 1:" in out.output
    assert "not chosen:" in out.output
    book = tmp_path / "r.xlsx"
    out = r.invoke(main, ["batch", "export", "--review", str(book), "--batch", str(b), *args])
    assert out.exit_code == 0 and book.exists()
    out = r.invoke(main, ["batch", "approve", "--decisions", str(book), *args])
    assert out.exit_code == 2 and "needs --reason" in out.output  # a break needs a reason
    out = r.invoke(main, ["batch", "approve", "--decisions", str(book), "--reason", "ok", *args])
    assert out.exit_code == 0 and f"approved batch {b}" in out.output


def test_cli_withdraw_and_close(fresh) -> None:
    """`batch withdraw` withdraws a proposal (and only a proposal); `period close` asks before
    expiring proposed batches, --yes skips the question, and the report counts batches."""
    ledger, demo = fresh
    r = CliRunner()
    args = _args(ledger)
    out = r.invoke(main, ["period", "close", *args], input="n\n")
    assert out.exit_code != 0 and "1 proposed batch will expire" in out.output
    with ledger.read() as conn:
        assert ledger.open_period(conn) is not None
    assert withdraw(ledger, demo.batch_id) == demo.batch_id
    with pytest.raises(LedgerError, match="only a proposed batch"):
        withdraw(ledger, demo.batch_id)
    out = r.invoke(main, ["period", "close", "--yes", *args])
    assert out.exit_code == 0 and "expired" not in out.output


def test_catalogue_covers_every_template_key() -> None:
    """Every label key used in the templates exists in the catalogue in Dutch and English."""
    folder = Path(__file__).resolve().parents[2] / "coupler" / "web" / "templates"
    keys = set()
    for f in folder.glob("*.html"):
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_]+|[a-z_]+)["']""", f.read_text()))
    assert len(keys) > 50
    missing = sorted(k for k in keys if k not in CATALOGUE)
    assert not missing
    for key, entry in CATALOGUE.items():
        assert set(LANGUAGES) <= set(entry), key
