"""The table loaders: one validated canonical frame per input table.

Each ``load_*`` function reads a file with :func:`~coupler.io.read.read_table`, checks the header
(every required column present; a column coupler does not know is an error with a did-you-mean,
unless listed in ``ignore_columns``), checks every cell with a :class:`~coupler.io.cells.Checker`
and returns the canonical frame of :mod:`coupler.schema`: every column present, in order, with
pandas nullable dtypes and a ``RangeIndex``. Every problem in a file is collected, and one
:class:`~coupler.errors.InputError` carries them all, each naming the file, the spreadsheet row
(header = row 1) and the column.

Every number has a plausible range (``schema.MAX_*``; docs/inputs.md). Households, criteria,
scores and locks are personal data: no message about them quotes one of their cells.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence
from typing import Any

import pandas as pd

from coupler import schema
from coupler.io.cells import Checker, Places, normalise_name, short
from coupler.io.read import read_table

__all__ = [
    "load_criteria",
    "load_demand",
    "load_distances",
    "load_households",
    "load_locks",
    "load_municipalities",
    "load_scores",
]

PathLike = str | os.PathLike[str]
_CODE = re.compile(schema.MUNICIPALITY_CODE_PATTERN)


def _open(
    path: PathLike,
    required: Sequence[str],
    optional: Sequence[str],
    *,
    personal: bool,
    sheet: str | None,
    ignore_columns: Collection[str],
    allow_no_rows: bool = False,
) -> Checker:
    """Read ``path`` and check its header; the checker of every loader."""
    known = (*required, *optional)
    table = read_table(
        path, sheet=sheet, allow_no_rows=allow_no_rows, known=known if personal else None
    )
    c = Checker(os.fspath(path), table, personal=personal)
    c.columns(required, optional, ignore_columns)
    return c


def _places(municipalities: pd.DataFrame) -> Places:
    missing = {"code", "name", "labour_market_region"} - set(municipalities.columns)
    if missing:
        raise TypeError(
            "municipalities must be a frame from load_municipalities; "
            f"it lacks {', '.join(sorted(missing))}"
        )
    return Places(municipalities)


def load_municipalities(
    path: PathLike, *, sheet: str | None = None, ignore_columns: Collection[str] = ()
) -> pd.DataFrame:
    """Load and validate the municipalities table.

    Parameters
    ----------
    path
        A table with the columns of ``schema.MUNICIPALITY_REQUIRED`` and optionally
        ``schema.MUNICIPALITY_OPTIONAL``.
    sheet
        The sheet of a workbook with more than one (see :func:`coupler.io.read_table`).
    ignore_columns
        Columns to skip; any other unknown column is an error.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.MUNICIPALITY_DTYPES``: unique ``GM0000`` codes
        (upper-cased), unique names (case-insensitively), coordinates inside the Netherlands,
        population in [0, 10^8], the optional quota, cap_large, cap_single in [0, 10^8] and
        backlog in [-10^8, 10^8].

    Raises
    ------
    InputError
        With every problem in the file.
    """
    c = _open(
        path,
        schema.MUNICIPALITY_REQUIRED,
        schema.MUNICIPALITY_OPTIONAL,
        personal=False,
        sheet=sheet,
        ignore_columns=ignore_columns,
    )
    codes = [t.upper() if t else None for t in c.text("code", required=True)]
    for row, code in zip(c.rows, codes, strict=True):
        if code is not None and not _CODE.fullmatch(code):
            c.add(
                f"code must be 'GM' and four digits, e.g. GM0363; got '{short(code)}'", row, "code"
            )
    c.unique(codes, "code", lambda k: f"duplicate code '{k}'")
    names = c.text("name", required=True)
    # Names equal but for case, accents or punctuation would make a reference ambiguous.
    c.unique(
        [normalise_name(n) if n else None for n in names],
        "name",
        lambda k: f"duplicate name '{k}' (names are compared ignoring case and punctuation)",
    )
    province = c.text("province", required=True)
    regions = c.text("labour_market_region", required=True)
    spelling: dict[str, tuple[str, int]] = {}
    for row, region in zip(c.rows, regions, strict=True):
        if region is None:
            continue
        first = spelling.setdefault(region.casefold(), (region, row))
        if first[0] != region:
            c.add(
                f"labour_market_region '{region}' is spelled differently from "
                f"'{first[0]}' on row {first[1]}",
                row,
                "labour_market_region",
            )
    inside = "(inside the Netherlands)"
    count = schema.MAX_COUNT
    columns: dict[str, list[Any]] = {
        "code": codes,
        "name": names,
        "province": province,
        "labour_market_region": regions,
        "lat": c.number(
            "lat", low=schema.NL_LAT[0], high=schema.NL_LAT[1], required=True, where=inside
        ),
        "lon": c.number(
            "lon", low=schema.NL_LON[0], high=schema.NL_LON[1], required=True, where=inside
        ),
        "population": c.number("population", whole=True, low=0, high=count, required=True),
        "quota": c.number("quota", whole=True, low=0, high=count),
        "backlog": c.number("backlog", whole=True, low=-count, high=count),
        "cap_large": c.number("cap_large", whole=True, low=0, high=count),
        "cap_single": c.number("cap_single", whole=True, low=0, high=count),
    }
    return c.frame(columns, schema.MUNICIPALITY_DTYPES)


def load_households(
    path: PathLike,
    municipalities: pd.DataFrame,
    *,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Load and validate the households table.

    Parameters
    ----------
    path
        A table with ``household_id`` and ``size`` and optionally the columns of
        ``schema.HOUSEHOLD_OPTIONAL``.
    municipalities
        The canonical municipalities frame; ``azc``, ``preferred_municipality`` and ``network``
        may name a municipality by code or name, ``preferred_region`` a labour-market region.
    sheet, ignore_columns
        As for :func:`load_municipalities`.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.HOUSEHOLD_DTYPES``; size, adults and children at most
        ``schema.MAX_HOUSEHOLD_SIZE``. Municipality references become codes (``network``:
        codes joined by ';'), education and sector become lower-case vocabulary words joined by
        ';', regions take their canonical spelling.

    Raises
    ------
    InputError
        With every problem in the file. No message quotes a cell.
    """
    places = _places(municipalities)
    c = _open(
        path,
        schema.HOUSEHOLD_REQUIRED,
        schema.HOUSEHOLD_OPTIONAL,
        personal=True,
        sheet=sheet,
        ignore_columns=ignore_columns,
    )
    most = schema.MAX_HOUSEHOLD_SIZE
    ids = c.text("household_id", required=True)
    c.unique(ids, "household_id", lambda k: "duplicate household_id")
    size = c.number("size", whole=True, low=1, high=most, required=True)
    adults = c.number("adults", whole=True, low=1, high=most)
    children = c.number("children", whole=True, low=0, high=most - 1)
    for row, s, a, k in zip(c.rows, size, adults, children, strict=True):
        if s is None:
            continue
        if a is not None and k is not None:
            if a + k != s:
                c.add("adults + children must equal size", row, "size")
        elif a is not None and a > s:
            c.add("adults must not exceed size", row, "adults")
        elif k is not None and k >= s:
            c.add("children must be less than size (a household has an adult)", row, "children")
    columns: dict[str, list[Any]] = {
        "household_id": ids,
        "size": size,
        "adults": adults,
        "children": children,
        "azc": c.municipality("azc", places),
        "education": c.choice("education", schema.EDUCATION_LEVELS, multi=True),
        "sector": c.choice("sector", schema.SECTORS, multi=True),
        "preferred_municipality": c.municipality("preferred_municipality", places),
        "preferred_region": c.region("preferred_region", places),
        "network": c.municipality("network", places, multi=True),
        "gender": c.text("gender"),
        "age_group": c.text("age_group"),
        "household_type": c.text("household_type"),
    }
    return c.frame(columns, schema.HOUSEHOLD_DTYPES)


def load_criteria(
    path: PathLike,
    households: pd.DataFrame,
    municipalities: pd.DataFrame,
    *,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Load and validate the hard criteria.

    Parameters
    ----------
    path
        A table with ``household_id``, ``kind`` and ``municipality`` and optionally
        ``hours_per_week`` (0 to ``schema.MAX_HOURS_PER_WEEK``), ``contract_signed`` and
        ``payslip_seen``. A file with only a header is a valid, empty set of criteria; a 0-byte
        file is an error.
    households, municipalities
        The canonical frames the criteria refer to.
    sheet, ignore_columns
        As for :func:`load_municipalities`.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.CRITERIA_DTYPES``; ``kind`` lower-cased, ``municipality``
        a code, booleans parsed from ``schema.TRUE_WORDS`` / ``schema.FALSE_WORDS``.

    Raises
    ------
    InputError
        With every problem in the file, e.g. a criterion pointing to an unknown household.
    """
    places = _places(municipalities)
    c = _open(
        path,
        schema.CRITERIA_REQUIRED,
        schema.CRITERIA_OPTIONAL,
        personal=True,
        sheet=sheet,
        ignore_columns=ignore_columns,
        allow_no_rows=True,
    )
    columns: dict[str, list[Any]] = {
        "household_id": c.household("household_id", households["household_id"], what="criterion"),
        "kind": c.choice("kind", schema.CRITERION_KINDS, required=True),
        "municipality": c.municipality("municipality", places, required=True),
        "hours_per_week": c.number("hours_per_week", low=0, high=schema.MAX_HOURS_PER_WEEK),
        "contract_signed": c.boolean("contract_signed"),
        "payslip_seen": c.boolean("payslip_seen"),
    }
    return c.frame(columns, schema.CRITERIA_DTYPES)


def load_scores(
    path: PathLike,
    households: pd.DataFrame,
    municipalities: pd.DataFrame,
    *,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Load and validate participation scores.

    Parameters
    ----------
    path
        A table with ``household_id``, ``score`` in [0, 1] and at least one of
        ``municipality`` / ``labour_market_region``; each row fills exactly one of the two.
    households, municipalities
        The canonical frames the scores refer to.
    sheet, ignore_columns
        As for :func:`load_municipalities`.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.SCORES_DTYPES``; no (household, municipality) or
        (household, region) pair twice.

    Raises
    ------
    InputError
        With every problem in the file.
    """
    places = _places(municipalities)
    c = _open(
        path,
        schema.SCORES_REQUIRED,
        schema.SCORES_TARGETS,
        personal=True,
        sheet=sheet,
        ignore_columns=ignore_columns,
    )
    if not any(c.has(t) for t in schema.SCORES_TARGETS):
        c.add(
            "missing column: give 'municipality' or 'labour_market_region'", column="municipality"
        )
    ids = c.household("household_id", households["household_id"], what="score")
    codes = c.municipality("municipality", places)
    regions = c.region("labour_market_region", places)
    given = zip(c.rows, c.cells("municipality"), c.cells("labour_market_region"), strict=True)
    for row, code_text, region_text in given:
        if code_text and region_text:
            c.add("give municipality or labour_market_region, not both", row, "municipality")
        elif not code_text and not region_text and any(c.has(t) for t in schema.SCORES_TARGETS):
            c.add("give a municipality or a labour_market_region", row, "municipality")
    places_given = [m if m is not None else r for m, r in zip(codes, regions, strict=True)]
    c.unique_together(
        (ids, places_given),
        "household_id",
        lambda k: "a second score for the same household and place",
    )
    columns: dict[str, list[Any]] = {
        "household_id": ids,
        "municipality": codes,
        "labour_market_region": regions,
        "score": c.number("score", low=0, high=1, required=True),
    }
    return c.frame(columns, schema.SCORES_DTYPES)


def load_locks(
    path: PathLike,
    households: pd.DataFrame,
    municipalities: pd.DataFrame,
    *,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Load and validate locks: pins (couple here) and bans (never couple here).

    Parameters
    ----------
    path
        A table with ``household_id``, ``municipality`` and ``action`` (``pin`` or ``ban``).
    households, municipalities
        The canonical frames the locks refer to.
    sheet, ignore_columns
        As for :func:`load_municipalities`.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.LOCKS_DTYPES``; at most one pin per household and at
        most one lock per (household, municipality).

    Raises
    ------
    InputError
        With every problem in the file.
    """
    places = _places(municipalities)
    c = _open(
        path,
        schema.LOCKS_REQUIRED,
        (),
        personal=True,
        sheet=sheet,
        ignore_columns=ignore_columns,
    )
    ids = c.household("household_id", households["household_id"], what="lock")
    codes = c.municipality("municipality", places, required=True)
    actions = c.choice("action", schema.LOCK_ACTIONS, required=True)

    pins: dict[str, int] = {}
    pairs: dict[tuple[str, str], tuple[str, int]] = {}
    for row, h, m, a in zip(c.rows, ids, codes, actions, strict=True):
        if h is None or m is None or a is None:
            continue
        if a == "pin":
            if h in pins:
                c.add(f"the household is pinned twice (first pin on row {pins[h]})", row, "action")
            pins.setdefault(h, row)
        if (h, m) in pairs:
            other, first = pairs[(h, m)]
            if other != a:
                c.add(
                    f"the household is both pinned and banned at this municipality (row {first})",
                    row,
                    "action",
                )
            elif a == "ban":
                c.add(
                    f"the household is banned at this municipality twice (first on row {first})",
                    row,
                    "action",
                )
        else:
            pairs[(h, m)] = (a, row)
    columns: dict[str, list[Any]] = {"household_id": ids, "municipality": codes, "action": actions}
    return c.frame(columns, schema.LOCKS_DTYPES)


def load_demand(
    path: PathLike,
    municipalities: pd.DataFrame,
    *,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Load and validate the labour-demand table (labour-market region x sector -> demand).

    Parameters
    ----------
    path
        A table with ``labour_market_region``, ``sector`` and ``demand`` in [0, 1], and
        optionally ``source`` (free text, not used). Pairs not listed are left to the caller's
        default.
    municipalities
        The canonical municipalities frame, whose regions are the known ones.
    sheet, ignore_columns
        As for :func:`load_municipalities`.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.DEMAND_DTYPES``; regions in canonical spelling,
        sectors lower-case, no pair twice.

    Raises
    ------
    InputError
        With every problem in the file.
    """
    places = _places(municipalities)
    c = _open(
        path,
        schema.DEMAND_REQUIRED,
        schema.DEMAND_OPTIONAL,
        personal=False,
        sheet=sheet,
        ignore_columns=ignore_columns,
    )
    regions = c.region("labour_market_region", places, required=True)
    sectors = c.choice("sector", schema.SECTORS, required=True)
    c.unique_together(
        (regions, sectors), "sector", lambda k: f"duplicate demand for '{k[0]}' and '{k[1]}'"
    )
    columns: dict[str, list[Any]] = {
        "labour_market_region": regions,
        "sector": sectors,
        "demand": c.number("demand", low=0, high=1, required=True),
    }
    return c.frame(columns, schema.DEMAND_DTYPES)


def load_distances(
    path: PathLike,
    municipalities: pd.DataFrame,
    *,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Load and validate a user's distance matrix in long form.

    Parameters
    ----------
    path
        A table with ``from``, ``to`` (municipality codes or names) and ``km`` in
        [0, ``schema.MAX_KM``], e.g. road kilometres; the distance from a municipality to itself
        must be 0. Only the listed pairs are returned; direction matters.
    municipalities
        The canonical municipalities frame.
    sheet, ignore_columns
        As for :func:`load_municipalities`.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.DISTANCE_DTYPES``; no (from, to) pair twice.

    Raises
    ------
    InputError
        With every problem in the file.
    """
    places = _places(municipalities)
    c = _open(
        path,
        schema.DISTANCE_REQUIRED,
        (),
        personal=False,
        sheet=sheet,
        ignore_columns=ignore_columns,
    )
    origins = c.municipality("from", places, required=True)
    targets = c.municipality("to", places, required=True)
    c.unique_together(
        (origins, targets), "to", lambda k: f"duplicate distance from '{k[0]}' to '{k[1]}'"
    )
    km = c.number("km", low=0, high=schema.MAX_KM, required=True)
    for row, a, b, d in zip(c.rows, origins, targets, km, strict=True):
        if a is not None and a == b and d is not None and d != 0:
            c.add(f"the distance from {a} to itself must be 0; got {d:g}", row, "km")
    columns: dict[str, list[Any]] = {"from": origins, "to": targets, "km": km}
    return c.frame(columns, schema.DISTANCE_DTYPES)
