"""The options shared by the commands (coupler.cli.options) and the one way to load the cases."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from coupler import InputError, generate_cases
from coupler.cli import main
from coupler.cli.options import column_names, load_cases, solver_changes
from coupler.schema import BACKEND_NAMES

DATA = Path(__file__).parent / "data" / "valid"
CASE_COMMANDS = (["solve"], ["compare", "default"], ["sweep", "--weight", "labour=0,1"])


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def _param(command: str, name: str) -> click.Parameter:
    (param,) = [p for p in main.commands[command].params if p.name == name]
    return param


@pytest.mark.parametrize("command", CASE_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--persons", "0", "must be > 0; got 0"),
        ("--time-limit", "-1", "must be > 0; got -1"),
        ("--gap", "1", "must be in [0, 1); got 1"),
    ],
)
def test_shared_options_are_checked_alike(
    tmp_path: Path, command: list[str], option: str, value: str, message: str
) -> None:
    """solve, compare and sweep reject the same bad value of a shared option the same way: exit
    2 naming the option and the rule, before any work, nothing written."""
    out = tmp_path / "out"
    r = _run(*command, option, value, "--out", str(out))
    assert r.exit_code == 2, r.output
    assert f"'{option}'" in r.output and message in r.output
    assert "Traceback" not in r.output
    assert not out.exists()


@pytest.mark.parametrize("command", CASE_COMMANDS, ids=lambda c: c[0])
def test_criteria_without_households_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    """Every command that loads cases refuses --criteria without --households (exit 2), and
    writes nothing."""
    out = tmp_path / "out"
    r = _run(*command, "--criteria", str(DATA / "criteria.csv"), "--out", str(out))
    assert r.exit_code == 2, r.output
    assert "--criteria needs --households" in r.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("names", "commands"),
    [
        (("scenario", "households", "criteria", "persons"), ("solve", "compare", "sweep")),
        (("time_limit", "gap"), ("solve", "compare", "sweep")),
        (("sheet", "ignore_columns"), ("solve", "compare", "sweep")),
        (("force",), ("solve", "compare", "sweep", "generate")),
        (("scenario",), ("solve", "generate")),
    ],
)
def test_a_shared_option_is_the_same_in_every_command(
    names: tuple[str, ...], commands: tuple[str, ...]
) -> None:
    """A shared option has one spelling, help text, type and default in every command that has
    it (so --help means the same everywhere)."""
    for name in names:
        first = _param(commands[0], name)
        assert isinstance(first, click.Option)
        for command in commands[1:]:
            other = _param(command, name)
            assert isinstance(other, click.Option)
            assert other.opts == first.opts, (command, name)
            assert other.help == first.help, (command, name)
            assert type(other.type) is type(first.type), (command, name)
            assert other.default == first.default, (command, name)
            assert other.callback is first.callback, (command, name)


def test_backend_choices_are_the_schema_names() -> None:
    """solve --backend offers exactly coupler.schema.BACKEND_NAMES."""
    param = _param("solve", "backend")
    assert isinstance(param.type, click.Choice)
    assert tuple(param.type.choices) == BACKEND_NAMES


def test_column_names_split_commas_and_drop_blanks() -> None:
    """--ignore-columns 'a, b' --ignore-columns c gives the names a, b, c in order; blanks and
    bare commas give nothing."""
    assert column_names(None, None, ("a, b", " c ", ",", "")) == ("a", "b", "c")
    assert column_names(None, None, ()) == ()


def test_solver_changes_keep_only_given_settings() -> None:
    """Settings left out on the command line (None) do not override the policy; 0 does."""
    assert solver_changes(backend=None, time_limit=None, gap=0.0, seed=0) == {"gap": 0.0, "seed": 0}
    assert solver_changes(time_limit=None, gap=None) == {}


def test_load_cases_reads_files() -> None:
    """With --households the user's files are read: nothing generated, nothing said, every
    household and criterion kept, and the sources recorded."""
    said: list[str] = []
    inst, generated = load_cases(
        None, DATA / "households.csv", DATA / "criteria.csv", persons=10, seed=0, say=said.append
    )
    assert generated is None and said == []
    assert inst.n_households == len(pd.read_csv(DATA / "households.csv"))
    assert len(inst.criteria) == len(pd.read_csv(DATA / "criteria.csv"))
    assert inst.sources["households"].endswith("households.csv")
    assert inst.sources["criteria"].endswith("criteria.csv")


def test_load_cases_passes_ignore_columns() -> None:
    """A households file with an extra 'notes' column is refused, naming the column, unless the
    column is given in ignore_columns; then it loads like the plain file."""
    with pytest.raises(InputError, match="notes"):
        load_cases(None, DATA / "households_semicolon.csv", None)
    inst, _ = load_cases(None, DATA / "households_semicolon.csv", None, ignore_columns=["Notes"])
    plain, _ = load_cases(None, DATA / "households.csv", None)
    pd.testing.assert_frame_equal(inst.households, plain.households)


def test_load_cases_passes_the_sheet(tmp_path: Path) -> None:
    """A workbook with two visible sheets is refused without a sheet and read from the named
    sheet with ``sheet``."""
    book = tmp_path / "households.xlsx"
    plain = pd.read_csv(DATA / "households.csv", dtype=str, keep_default_na=False)
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"note": ["not the cases"]}).to_excel(writer, sheet_name="Lists", index=False)
        plain.to_excel(writer, sheet_name="Households", index=False)
    with pytest.raises(InputError, match="--sheet"):
        load_cases(None, book, None)
    inst, _ = load_cases(None, book, None, sheet="Households")
    assert inst.household_ids.tolist() == plain["household_id"].tolist()


def test_load_cases_generates_the_same_batch_as_the_generator(nl_municipalities) -> None:
    """Without --households a seeded batch of exactly ``persons`` persons is generated on the
    scenario (the same households coupler.generate gives), and the progress line says so."""
    said: list[str] = []
    inst, generated = load_cases(None, None, None, persons=250, seed=4, say=said.append)
    assert generated == {"persons": 250, "seed": 4}
    assert int(inst.sizes.sum()) == 250
    hh, cr = generate_cases(nl_municipalities, persons=250, seed=4)
    assert inst.household_ids.tolist() == hh["household_id"].astype(str).tolist()
    assert len(inst.criteria) == len(cr)
    assert said == [
        "no --households; generating a batch of 250 persons (seed 4) for the embedded national "
        "scenario"
    ]


def test_load_cases_refuses_criteria_alone() -> None:
    """Criteria without households is a usage error, raised before anything is read."""
    with pytest.raises(click.UsageError, match="--criteria needs --households"):
        load_cases(None, None, DATA / "criteria.csv", persons=10, seed=0)


def test_compare_reads_with_ignore_columns(tmp_path: Path) -> None:
    """compare reads its cases through the shared loader: the extra column of a households file
    is an error (exit 2, nothing written) until --ignore-columns names it."""
    out = tmp_path / "cmp"
    hh = str(DATA / "households_semicolon.csv")
    bad = _run("compare", "default", "--households", hh, "--out", str(out))
    assert bad.exit_code == 2 and "notes" in bad.output
    assert not out.exists()
    good = _run(
        "compare", "default", "--households", hh, "--ignore-columns", "notes", "--out", str(out)
    )
    assert good.exit_code == 0, good.output
    kpis = pd.read_csv(out / "kpis.csv").set_index("kpi")
    persons = int(pd.read_csv(DATA / "households.csv")["size"].sum())
    assert kpis.loc["persons", "default"] == persons
