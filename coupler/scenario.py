"""Scenarios: a folder of reference tables plus this period's cases -> an :class:`Instance`.

A scenario folder holds ``municipalities.csv`` (required; see :mod:`coupler.schema`) and
optionally ``demand.csv`` (labour demand, region x sector). ``nl-2024`` ships with coupler.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from coupler import io
from coupler.errors import InputError, Problem
from coupler.instance import Instance
from coupler.quota import fill_quotas
from coupler.schema import MAX_COUNT

PathLike = str | os.PathLike[str]


def embedded_scenario(name: str = "nl-2024") -> Path:
    """Path of a scenario folder shipped with coupler (``nl-2024``: the national reference)."""
    path = Path(str(resources.files("coupler.scenarios") / name))
    if not (path / "municipalities.csv").is_file():
        raise InputError(Problem(name, "no such embedded scenario"))
    return path


def load_scenario(
    scenario: PathLike | None = None,
    total: int | None = None,
    *,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(municipalities with quota and remaining filled, demand table or None) of a scenario folder.

    ``sheet`` and ``ignore_columns`` are passed to the loaders (:mod:`coupler.io.tables`).
    """
    folder = embedded_scenario() if scenario is None else Path(scenario)
    if not folder.is_dir():
        raise InputError(Problem(str(scenario), "scenario folder not found"))
    mfile = find_table(folder, "municipalities")
    if mfile is None:
        raise InputError(Problem(str(folder), "has no municipalities.csv (or .xlsx / .parquet)"))
    if total is not None and not 0 <= total <= MAX_COUNT:
        raise InputError(Problem("--total", f"must be between 0 and {MAX_COUNT:,}; got {total}"))
    options: dict[str, Any] = {"sheet": sheet, "ignore_columns": ignore_columns}
    municipalities = fill_quotas(io.load_municipalities(mfile, **options), total, mfile.name)
    dfile = find_table(folder, "demand")
    demand = io.load_demand(dfile, municipalities, **options) if dfile is not None else None
    return municipalities, demand


def has_quota_column(scenario: PathLike | None = None) -> bool:
    """True when the scenario's municipalities carry their own (official) quotas."""
    folder = embedded_scenario() if scenario is None else Path(scenario)
    mfile = find_table(folder, "municipalities")
    if mfile is None:
        return False
    m = io.load_municipalities(mfile)
    return "quota" in m and bool(m["quota"].notna().any())


def find_table(
    folder: Path, stem: str, suffixes: tuple[str, ...] = (".csv", ".xlsx", ".parquet")
) -> Path | None:
    """``folder/stem`` with the first of ``suffixes`` that exists, or None."""
    for suffix in suffixes:
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def load_instance(
    households: PathLike | pd.DataFrame,
    criteria: PathLike | pd.DataFrame | None = None,
    *,
    scenario: PathLike | None = None,
    total: int | None = None,
    scores: PathLike | None = None,
    locks: PathLike | None = None,
    demand: PathLike | None = None,
    distances: PathLike | None = None,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> Instance:
    """Read and validate every input into one immutable :class:`Instance`.

    ``households`` / ``criteria`` may be files or frames already in canonical form (e.g. from
    :func:`coupler.generate.generate_cases`). ``sheet`` names the sheet of every workbook input
    (``book.xlsx#Sheet`` names one file's); ``ignore_columns`` lists columns to skip in every
    input file, any other unknown column being an error (docs/inputs.md). Every file's problems
    are reported together.
    """
    options: dict[str, Any] = {"sheet": sheet, "ignore_columns": ignore_columns}
    municipalities, scenario_demand = load_scenario(scenario, total, **options)
    problems: list[Problem] = []
    sources: dict[str, str] = {}

    def attempt(fn: Callable[..., pd.DataFrame], *args: Any) -> pd.DataFrame | None:
        try:
            return fn(*args, **options)
        except InputError as exc:
            problems.extend(exc.problems)
            return None

    if isinstance(households, pd.DataFrame):
        hh = households
    else:
        hh = attempt(io.load_households, households, municipalities)
        sources["households"] = str(households)
    if hh is None:
        raise InputError(problems)
    if criteria is None:
        cr = pd.DataFrame(
            {c: pd.Series(dtype="string") for c in ("household_id", "kind", "municipality")}
        )
        cr["hours_per_week"] = pd.Series(dtype="Float64")
        cr["contract_signed"] = pd.Series(dtype="boolean")
        cr["payslip_seen"] = pd.Series(dtype="boolean")
    elif isinstance(criteria, pd.DataFrame):
        cr = criteria
    else:
        cr = attempt(io.load_criteria, criteria, hh, municipalities)
        sources["criteria"] = str(criteria)
    sc = attempt(io.load_scores, scores, hh, municipalities) if scores is not None else None
    lk = attempt(io.load_locks, locks, hh, municipalities) if locks is not None else None
    dm = attempt(io.load_demand, demand, municipalities) if demand is not None else scenario_demand
    ds = attempt(io.load_distances, distances, municipalities) if distances is not None else None
    if problems:
        raise InputError(problems)
    for name, p in (
        ("scores", scores),
        ("locks", locks),
        ("demand", demand),
        ("distances", distances),
    ):
        if p is not None:
            sources[name] = str(p)
    return Instance(
        municipalities=municipalities,
        households=hh,
        criteria=cr,
        scores=sc,
        locks=lk,
        demand=dm,
        distances=ds,
        sources=sources,
    )
