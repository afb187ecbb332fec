"""``coupler generate``: write a synthetic, seeded batch of cases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
import pandas as pd

from coupler import schema
from coupler.cli.options import format_option, out_option, persons_option, scenario_option
from coupler.generate import GeneratorParams, generate_cases
from coupler.output import Content, write_atomically
from coupler.scenario import load_scenario

_FORMATS = ("csv", "xlsx", "parquet")


def _content(frame: pd.DataFrame, fmt: str) -> Content:
    if fmt == "parquet":
        return lambda path: frame.to_parquet(path, index=False)
    return frame


@click.command()
@persons_option(
    "Persons in the batch; household sizes sum to exactly this. "
    "4,700 is a peak monthly batch (≈28,000 per half year)."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same cases."
)
@scenario_option
@out_option(
    "cases", "Output folder; households.<ext> and criteria.<ext> are written there atomically."
)
@format_option(_FORMATS, "File format of both tables.")
def generate(persons: int, seed: int, scenario: Path | None, out: Path, fmt: str) -> None:
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
    """
    municipalities, _ = load_scenario(scenario)
    households, criteria = generate_cases(
        municipalities, persons=persons, seed=seed, params=GeneratorParams()
    )
    paths = write_atomically(
        out,
        {
            f"households.{fmt}": _content(households, fmt),
            f"criteria.{fmt}": _content(criteria, fmt),
        },
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


COMMANDS = [generate]
