"""``coupler generate``: write a synthetic, seeded batch of cases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
import pandas as pd

from coupler import schema
from coupler.cli.options import (
    format_option,
    generate_batch,
    out_options,
    persons_option,
    scenario_option,
    seed_option,
)
from coupler.generate import GeneratorParams
from coupler.learn.history import generate_history
from coupler.rundir import Content, check_out, write_atomically, write_file
from coupler.scenario import load_scenario

_FORMATS = ("csv", "xlsx", "parquet")


def _content(frame: pd.DataFrame, fmt: str) -> Content:
    if fmt == "parquet":
        return lambda path: frame.to_parquet(path, index=False)
    return frame


@click.command()
@persons_option(
    "Persons in the batch; household sizes sum to exactly this. "
    "4,700 is a peak monthly batch (≈28,000 per half year) [default: 4,700; with --history "
    "30,000 adults].",
    default=None,
)
@seed_option("Random seed; same seed, same cases.", default=0)
@scenario_option
@out_options(
    "Output folder; households.<ext> and criteria.<ext> are written there atomically "
    "[default: cases]. With --history: the history file (.csv, .xlsx, .parquet) [default: "
    "history.csv]; the true probabilities go next to it as <name>_truth.<ext>.",
    None,
    folder=False,
)
@format_option(_FORMATS, "File format of both tables.")
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
    households, criteria = generate_batch(scenario, persons=persons, seed=seed)
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
