"""The history and members tables: documented columns, validated like every input.

A **history** has one row per past arrival (an adult): where the household was placed, the
arrival cohort, person and household features and whether the person worked within one, two or
three years. A **members** table lists the adults of a batch to score. Both are personal tables:
messages name the file, the row and the column, and never echo a cell (not even an id).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from coupler import schema
from coupler.errors import InputError, Problem
from coupler.io import Checker, Places, read_table
from coupler.io.cells import frame as _frame
from coupler.learn.vocab import HORIZONS, VOCABULARIES

__all__ = [
    "HISTORY_COLUMNS",
    "HISTORY_DTYPES",
    "MEMBER_DTYPES",
    "load_history",
    "load_members",
    "outcome_column",
]

HISTORY_DTYPES: tuple[tuple[str, str], ...] = (
    ("person_id", "string"),
    ("household_id", "string"),
    ("cohort", "int64"),
    ("municipality", "string"),
    ("labour_market_region", "string"),
    ("gender", "string"),
    ("age_group", "string"),
    ("education", "string"),
    ("sector", "string"),
    ("language", "string"),
    ("household_type", "string"),
    ("nationality_group", "string"),
    ("network", "boolean"),
    *((f"worked_{y}y", "boolean") for y in HORIZONS),
)
HISTORY_COLUMNS: tuple[str, ...] = tuple(name for name, _ in HISTORY_DTYPES)

MEMBER_DTYPES: tuple[tuple[str, str], ...] = (
    ("household_id", "string"),
    ("gender", "string"),
    ("age_group", "string"),
    ("education", "string"),
    ("sector", "string"),
    ("language", "string"),
    ("nationality_group", "string"),
)

#: Arrival cohorts (years) a history may hold.
COHORT_RANGE = (1990, 2100)


def outcome_column(years: int) -> str:
    """The history column of the outcome "worked within ``years`` years"."""
    if years not in HORIZONS:
        raise ValueError(f"years must be one of {HORIZONS}; got {years}")
    return f"worked_{years}y"


def load_history(
    path: str | os.PathLike[str], municipalities: pd.DataFrame, years: int
) -> pd.DataFrame:
    """Load and validate a history of past arrivals.

    Parameters
    ----------
    path
        A table (csv, xlsx, parquet) with ``person_id``, ``cohort``, the placement as
        ``municipality`` (code or exact CBS name) and/or ``labour_market_region``, and
        ``worked_<years>y``; optionally ``household_id``, the person features ``gender``,
        ``age_group``, ``education``, ``sector``, ``language``, ``household_type``,
        ``nationality_group``, ``network`` (yes/no) and the other ``worked_Ny`` columns.
        docs/learn.md gives every column and its values. Other columns are ignored.
    municipalities
        The canonical municipalities frame (placements and regions are checked against it).
    years
        The horizon to learn; its outcome column must be filled on every row.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of :data:`HISTORY_DTYPES`; the region is filled from the
        municipality where only the municipality was given.

    Raises
    ------
    InputError
        With every problem in the file; no message repeats a cell's value.
    """
    target = outcome_column(years)
    places = Places(municipalities)
    region_of = dict(
        zip(
            municipalities["code"].astype(str),
            municipalities["labour_market_region"].astype(str),
            strict=True,
        )
    )
    c = Checker(os.fspath(path), read_table(path), personal=True)
    c.require(("person_id", "cohort", target))
    if not any(c.has(col) for col in schema.SCORES_TARGETS):
        c.add(
            "missing column: give 'municipality' or 'labour_market_region'", column="municipality"
        )
    ids = c.text("person_id", required=True)
    c.unique(ids, "person_id", lambda _: "duplicate person_id")
    codes, regions = _placements(c, places, region_of)
    columns: dict[str, list[Any]] = {
        "person_id": ids,
        "household_id": c.text("household_id"),
        "cohort": c.number(
            "cohort", whole=True, low=COHORT_RANGE[0], high=COHORT_RANGE[1], required=True
        ),
        "municipality": codes,
        "labour_market_region": regions,
        **{name: c.choice(name, vocab) for name, vocab in VOCABULARIES.items()},
        "nationality_group": [t.lower() if t else None for t in c.text("nationality_group")],
        "network": c.boolean("network"),
    }
    for y in HORIZONS:
        columns[f"worked_{y}y"] = c.boolean(f"worked_{y}y")
    for row, value, text in zip(c.rows, columns[target], c.cells(target), strict=True):
        if value is None and not text and c.has(target):
            c.add(f"{target} must not be empty; it must be yes or no", row, target)
    for y0, y1 in zip(HORIZONS, HORIZONS[1:], strict=False):
        early, late = columns[f"worked_{y0}y"], columns[f"worked_{y1}y"]
        for row, a, b in zip(c.rows, early, late, strict=True):
            if a is True and b is False:
                c.add(
                    f"worked_{y0}y is yes but worked_{y1}y is no (worked within {y0} years "
                    f"implies worked within {y1} years)",
                    row,
                    f"worked_{y1}y",
                )
    c.finish()
    frame = _frame(columns, HISTORY_DTYPES)
    if frame["cohort"].nunique() < 3:
        raise InputError(
            Problem(
                os.fspath(path),
                "needs at least three arrival cohorts (train on earlier ones, calibrate on a "
                f"later one, test on the last); found {frame['cohort'].nunique()}",
                column="cohort",
            )
        )
    return frame


def _placements(
    c: Checker, places: Places, region_of: dict[str, str]
) -> tuple[list[str | None], list[str | None]]:
    """Municipality codes and regions of each row; unknown or inconsistent ones are problems."""
    codes: list[str | None] = []
    regions: list[str | None] = []
    cells = zip(c.rows, c.cells("municipality"), c.cells("labour_market_region"), strict=True)
    for row, muni_text, region_text in cells:
        code = places.code(muni_text) if muni_text else None
        region = places.region(region_text) if region_text else None
        if muni_text and code is None:
            c.add(
                "unknown municipality (give a code such as GM0363 or an exact CBS name)",
                row,
                "municipality",
            )
        if region_text and region is None:
            c.add("unknown labour_market_region", row, "labour_market_region")
        if code is not None and region is not None and region_of[code] != region:
            c.add(
                "the municipality does not lie in this labour_market_region",
                row,
                "labour_market_region",
            )
        if not muni_text and not region_text:
            c.add("give a municipality or a labour_market_region", row, "municipality")
        codes.append(code)
        regions.append(region if region is not None else (region_of[code] if code else None))
    return codes, regions


def load_members(path: str | os.PathLike[str], households: pd.DataFrame) -> pd.DataFrame:
    """Load and validate the adult members of a batch to score.

    Parameters
    ----------
    path
        A table with ``household_id`` and optionally ``gender``, ``age_group``, ``education``,
        ``sector``, ``language`` and ``nationality_group``, one row per adult.
    households
        The canonical households frame the members belong to.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of :data:`MEMBER_DTYPES`.

    Raises
    ------
    InputError
        With every problem in the file, e.g. a member of a household that is not in the batch
        (the id is not repeated), or a household without any member row.
    """
    file = os.fspath(path)
    c = Checker(file, read_table(path), personal=True)
    c.require(("household_id",))
    known = set(households["household_id"].astype(str))
    ids = c.text("household_id", required=True)
    for row, h in zip(c.rows, ids, strict=True):
        if h is not None and h not in known:
            c.add("household_id is not in the households file", row, "household_id")
    columns: dict[str, list[Any]] = {
        "household_id": ids,
        **{
            name: c.choice(name, VOCABULARIES[name])
            for name, _ in MEMBER_DTYPES
            if name in VOCABULARIES
        },
        "nationality_group": [t.lower() if t else None for t in c.text("nationality_group")],
    }
    c.finish()
    missing = len(known - {h for h in ids if h is not None})
    if missing:
        raise InputError(
            Problem(file, f"{missing} household(s) of the households file have no member row")
        )
    return _frame(columns, MEMBER_DTYPES)
