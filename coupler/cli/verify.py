"""``coupler verify``: check a plan independently of the solver (see :mod:`coupler.verify`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd

from coupler import io
from coupler.errors import InputError, Problem
from coupler.policy import Policy
from coupler.quota import DEFAULT_NATIONAL_TOTAL, proportional_quotas
from coupler.scenario import embedded_scenario, find_table
from coupler.verify import verify_plan

_SUFFIXES = (".csv", ".xlsx", ".parquet", ".txt")


def _municipalities(path: Path, total: int | None) -> pd.DataFrame:
    """Municipalities with quota filled from ``total`` by population when the file has none, and
    the ``remaining`` column kept when the file has one (a solve's inputs/ carry it)."""
    m = io.load_municipalities(path, ignore_columns=("remaining",))
    raw = io.read_table(path)
    if "remaining" in raw.columns:
        rem = pd.to_numeric(raw["remaining"], errors="coerce")
        if rem.isna().any() or (rem < 0).any():
            raise InputError(
                Problem(str(path), "remaining must be a whole number >= 0", column="remaining")
            )
        m["remaining"] = rem.to_numpy(dtype="int64")
    if m["quota"].isna().all():
        m["quota"] = proportional_quotas(
            m["population"].to_numpy(), DEFAULT_NATIONAL_TOTAL if total is None else total
        )
    elif m["quota"].isna().any():
        raise InputError(
            Problem(str(path), "quota is missing for some municipalities", column="quota")
        )
    return m


def _plan(path: Path) -> pd.DataFrame:
    t = io.read_table(path)
    missing = [c for c in ("household_id", "municipality") if c not in t.columns]
    if missing:
        raise InputError(Problem(str(path), f"missing column(s) {', '.join(missing)}"))
    out = t[["household_id", "municipality"]].copy()
    out["municipality"] = out["municipality"].where(out["municipality"] != "", None)
    return out


def _opt(path: Path | None, inputs: Path | None, stem: str) -> Path | None:
    if path is not None:
        return path
    return find_table(inputs, stem, _SUFFIXES) if inputs is not None else None


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Output folder of `coupler solve`: plan.csv, and the inputs under inputs/.",
)
@click.option(
    "--plan",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Plan table (household_id, municipality; empty = uncoupled) [default: OUT/plan.csv].",
)
@click.option(
    "--households",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Households table [default: OUT/inputs/households.*].",
)
@click.option(
    "--criteria",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Hard criteria table [default: OUT/inputs/criteria.*, else none].",
)
@click.option(
    "--scenario",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Scenario folder with municipalities.csv [default: OUT/inputs/municipalities.*, "
    "else the embedded nl-2024].",
)
@click.option(
    "--total",
    type=int,
    default=None,
    help="National total when the municipalities have no quota column [default: 28,000].",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy TOML [default: OUT/policy.toml, else the defaults].",
)
@click.option(
    "--locks",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pins and bans [default: OUT/inputs/locks.*].",
)
@click.option(
    "--distances",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Distance matrix (from, to, km) [default: OUT/inputs/distances.*].",
)
@click.option(
    "--ignore-columns",
    "ignore_columns",
    multiple=True,
    metavar="NAMES",
    help="Comma-separated columns to skip in the input files, as for `coupler solve`.",
)
def verify(
    out_dir: Path | None,
    plan: Path | None,
    households: Path | None,
    criteria: Path | None,
    scenario: Path | None,
    total: int | None,
    policy_file: Path | None,
    locks: Path | None,
    distances: Path | None,
    ignore_columns: tuple[str, ...],
) -> None:
    """Check a coupling plan independently of the solver.

    Recomputes distances, which criteria are hard, conflicts and quota capacities from the inputs
    and checks: every household coupled exactly once to a known municipality; persons per
    municipality within floor(remaining x (1 + tolerance)); dwelling capacities; pins honoured
    and bans never used; no hard criterion broken while another municipality within the radius
    still had room (an avoidable break), and no household uncoupled while a place had room.

    Exits 0 when the plan passes, 1 with every violation listed.

    \b
    Examples:
      coupler verify --out result                       # the folder `coupler solve` wrote
      coupler verify --plan plan.csv --households h.csv --criteria c.csv --policy p.toml
    """
    inputs = None
    if out_dir is not None and (out_dir / "inputs").is_dir():
        inputs = out_dir / "inputs"
    if plan is None and out_dir is not None:
        # The saved assignment holds the ids as read; plan.csv holds them made safe for Excel.
        saved = out_dir / "inputs" / "assignment.parquet"
        plan = (
            saved
            if saved.is_file()
            else find_table(out_dir, "plan", _SUFFIXES) or out_dir / "plan.csv"
        )
    if plan is None:
        raise click.UsageError("give --out DIR (a solve output folder) or --plan FILE")
    households = _opt(households, inputs, "households")
    if households is None:
        raise click.UsageError(
            "no households table: give --households FILE "
            "(or an --out folder with inputs/households.csv)"
        )
    criteria = _opt(criteria, inputs, "criteria")
    locks = _opt(locks, inputs, "locks")
    distances = _opt(distances, inputs, "distances")
    for folder in (out_dir, inputs):
        if policy_file is None and folder is not None and (folder / "policy.toml").is_file():
            policy_file = folder / "policy.toml"
    if scenario is not None:
        mfile = find_table(scenario, "municipalities", _SUFFIXES)
    elif inputs is not None and find_table(inputs, "municipalities") is not None:
        mfile = find_table(inputs, "municipalities")
    else:
        mfile = find_table(embedded_scenario(), "municipalities")
    if mfile is None:
        raise InputError(Problem(str(scenario), "has no municipalities.csv"))
    if total is None and out_dir is not None and (out_dir / "summary.json").is_file():
        try:
            total = json.loads((out_dir / "summary.json").read_text(encoding="utf-8")).get("total")
        except (ValueError, AttributeError):
            total = None

    policy = Policy.from_file(policy_file) if policy_file is not None else Policy()
    municipalities = _municipalities(mfile, total)
    skip: dict[str, Any] = {
        "ignore_columns": [c.strip() for v in ignore_columns for c in v.split(",") if c.strip()]
    }
    hh = io.load_households(households, municipalities, **skip)
    cr = io.load_criteria(criteria, hh, municipalities, **skip) if criteria is not None else None
    lk = io.load_locks(locks, hh, municipalities, **skip) if locks is not None else None
    ds = io.load_distances(distances, municipalities, **skip) if distances is not None else None
    report = verify_plan(municipalities, hh, cr, _plan(plan), policy, locks=lk, distances=ds)
    click.echo(report.summary())
    sys.exit(0 if report.ok else 1)


COMMANDS = [verify]
