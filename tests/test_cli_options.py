"""Options shared by the commands (coupler.cli.options) and the one way to load the cases."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from coupler import generate_cases
from coupler.cli import main
from coupler.cli.options import load_cases
from coupler.schema import BACKEND_NAMES

DATA = Path(__file__).parent / "data" / "valid"
CASE_COMMANDS = (["solve"], ["compare", "default"], ["sweep", "--weight", "labour=0,1"])


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


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
    2 naming the option, before any work, nothing written."""
    out = tmp_path / "out"
    r = _run(*command, option, value, "--out", str(out))
    assert r.exit_code == 2, r.output
    assert option in r.output and message in r.output
    assert not out.exists()


@pytest.mark.parametrize("command", CASE_COMMANDS, ids=lambda c: c[0])
def test_criteria_without_households_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    """Every command that loads cases refuses --criteria without --households (exit 2)."""
    out = tmp_path / "out"
    r = _run(*command, "--criteria", str(DATA / "criteria.csv"), "--out", str(out))
    assert r.exit_code == 2
    assert "--criteria needs --households" in r.output
    assert not out.exists()


@pytest.mark.parametrize("command", [c[0] for c in CASE_COMMANDS] + ["generate"])
def test_help_lists_the_shared_options(command: str) -> None:
    """--help of every case command lists --scenario, --persons and --out with one help text."""
    r = _run(command, "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for option in ("--scenario", "--persons", "--out"):
        assert option in text
    assert "Scenario folder with municipalities.csv (and optional demand.csv)" in text


def test_backend_choices_are_the_schema_names() -> None:
    """solve --backend offers exactly coupler.schema.BACKEND_NAMES."""
    (param,) = [p for p in main.commands["solve"].params if p.name == "backend"]
    assert isinstance(param.type, click.Choice)
    assert tuple(param.type.choices) == BACKEND_NAMES


def test_load_cases_reads_files() -> None:
    """With --households the user's files are read (nothing generated, nothing said)."""
    said: list[str] = []
    inst, generated = load_cases(
        None,
        DATA / "households.csv",
        DATA / "criteria.csv",
        persons=10,
        seed=0,
        say=said.append,
    )
    assert generated is None and said == []
    assert inst.n_households > 0 and len(inst.criteria) > 0
    assert inst.sources["households"].endswith("households.csv")


def test_load_cases_generates_the_same_batch_as_the_generator(nl_municipalities) -> None:
    """Without --households a seeded batch of exactly ``persons`` persons is generated on the
    scenario (the same frames coupler.generate gives), and the progress line says so."""
    said: list[str] = []
    inst, generated = load_cases(None, None, None, persons=250, seed=4, say=said.append)
    assert generated == {"persons": 250, "seed": 4}
    assert int(inst.sizes.sum()) == 250
    hh, _ = generate_cases(nl_municipalities, persons=250, seed=4)
    assert inst.household_ids.tolist() == hh["household_id"].astype(str).tolist()
    assert said == [
        "no --households; generating a batch of 250 persons (seed 4) for the embedded national "
        "scenario"
    ]


def test_load_cases_refuses_criteria_alone() -> None:
    """Criteria without households is a usage error."""
    with pytest.raises(click.UsageError, match="--criteria needs --households"):
        load_cases(None, None, DATA / "criteria.csv", persons=10, seed=0, say=print)
