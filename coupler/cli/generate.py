"""``coupler generate``: write a synthetic, seeded batch of cases."""

from __future__ import annotations

import importlib.resources
from collections import Counter
from pathlib import Path

import click
import pandas as pd

from coupler import schema
from coupler.generate import GeneratorParams, generate_cases
from coupler.io import load_municipalities
from coupler.learn.history import generate_history
from coupler.rundir import Content, check_out, write_atomically, write_file
from coupler.scenario import load_scenario

_FORMATS = ("csv", "xlsx", "parquet")


def _default_scenario() -> Path:
    return Path(str(importlib.resources.files("coupler.scenarios") / "nl-2024"))


def _load_municipalities(scenario: Path) -> pd.DataFrame:
    path = scenario / "municipalities.csv"
    if not path.is_file():
        raise click.BadParameter(f"no municipalities.csv in {scenario}", param_hint="'--scenario'")
    return load_municipalities(path)


def _check_persons(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1; got {value}")
    return value


def _content(frame: pd.DataFrame, fmt: str) -> Content:
    if fmt == "parquet":
        return lambda path: frame.to_parquet(path, index=False)
    return frame


@click.command()
@click.option(
    "--persons",
    type=int,
    default=None,
    callback=_check_persons,
    help="Persons in the batch; household sizes sum to exactly this. "
    "4,700 is a peak monthly batch (≈28,000 per half year) [default: 4,700; with --history "
    "30,000 adults].",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same cases."
)
@click.option(
    "--scenario",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Scenario folder holding municipalities.csv [default: the embedded nl-2024].",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder; households.<ext> and criteria.<ext> are written there atomically "
    "[default: cases]. With --history: the history file (.csv, .xlsx, .parquet) [default: "
    "history.csv]; the true probabilities go next to it as <name>_truth.<ext>.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out even when it holds files coupler did not write.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS),
    default="csv",
    show_default=True,
    help="File format of both tables.",
)
@click.option(
    "--history",
    is_flag=True,
    help="Write a synthetic history of past arrivals with known work outcomes instead "
    "(for coupler learn; the generating process is in docs/learn.md).",
)
def generate(
    persons: int | None,
    seed: int,
    scenario: Path | None,
    out: Path | None,
    force: bool,
    fmt: str,
    history: bool,
) -> None:
    """Generate a realistic synthetic batch of statushouder households.

    Writes HOUSEHOLDS (size, adults/children, current azc, education and sector per adult,
    preferences, network, gender / age group / household type of the main applicant) and
    CRITERIA (hard criteria: work with hours, contract and payslip; first-degree family; study;
    medical) in coupler's canonical columns. Ids are pseudonymous (H000001, ...); nothing is
    real personal data. Calibration figures and sources: docs/generator.md.

    \b
    Examples:
      coupler generate                       # 4,700 persons, seed 0, into ./cases
      coupler generate --persons 28000 --seed 7 --out half-year --format parquet
      coupler generate --history --persons 40000 --out history.csv
    """
    if history:
        _history(persons or 30_000, seed, scenario, out or Path("history.csv"))
        return
    out = out or Path("cases")
    persons = persons or 4700
    check_out(out, (scenario,), force=force)
    municipalities = _load_municipalities(scenario or _default_scenario())
    households, criteria = generate_cases(
        municipalities, persons=persons, seed=seed, params=GeneratorParams()
    )
    paths = write_atomically(
        out,
        {
            f"households.{fmt}": _content(households, fmt),
            f"criteria.{fmt}": _content(criteria, fmt),
        },
        inputs=(scenario,),
        force=force,
    )
    kinds = Counter(criteria["kind"])
    work = criteria[criteria["kind"] == "work"]
    qualifying = int(
        (
            (work["hours_per_week"] >= GeneratorParams().work_hours_threshold)
            & work["contract_signed"].fillna(False)
            & work["payslip_seen"].fillna(False)
        ).sum()
    )
    by_kind = ", ".join(f"{k} {kinds.get(k, 0)}" for k in schema.CRITERION_KINDS)
    click.echo(
        f"generated {len(households)} households, {int(households['size'].sum())} persons "
        f"(seed {seed})"
    )
    click.echo(f"criteria: {by_kind} (work meeting hours/contract/payslip: {qualifying})")
    for path in paths:
        click.echo(f"wrote {path}")


def _history(persons: int, seed: int, scenario: Path | None, out: Path) -> None:
    """Write a synthetic history and, apart, its true probabilities of work."""
    from coupler.cli.learn import check_table_path, table_content

    check_table_path(out, "--out")
    municipalities, demand = load_scenario(scenario)
    frame, truth = generate_history(municipalities, demand, persons=persons, seed=seed)
    truth_name = f"{out.stem}_truth{out.suffix}"
    paths = [
        write_file(out, table_content(frame, out), inputs=(scenario,)),
        write_file(out.with_name(truth_name), table_content(truth, out), inputs=(scenario,)),
    ]
    cohorts = frame["cohort"]
    click.echo(
        f"generated a history of {len(frame):,} persons, cohorts {cohorts.min()}-{cohorts.max()} "
        f"(seed {seed}); worked within 1/2/3 years: "
        + " / ".join(f"{frame[f'worked_{y}y'].mean():.1%}" for y in (1, 2, 3))
    )
    for path in paths:
        click.echo(f"wrote {path}")


COMMANDS = [generate]
