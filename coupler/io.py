"""Files -> validated canonical tables.

:func:`read_table` turns a ``.csv``/``.txt``, ``.xlsx`` or ``.parquet`` file into a frame of
stripped strings. The ``load_*`` functions check such a table cell by cell and return the canonical
frame of :mod:`coupler.schema`: every column present, in order, with pandas nullable dtypes and a
``RangeIndex``. Every problem in a file is collected, and one :class:`~coupler.errors.InputError`
carries them all, each naming the file, the spreadsheet row (header = row 1) and the column.

Columns a loader does not know are ignored, so a user may keep notes next to the data. Rows whose
cells are all empty are skipped. Messages about household, criteria, score and lock files never
echo a cell's value, apart from household ids and municipality or region references: those files
hold personal data (DOMAIN.md section 9).
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import math
import os
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coupler import schema
from coupler.errors import InputError, Problem

__all__ = [
    "load_criteria",
    "load_demand",
    "load_distances",
    "load_households",
    "load_locks",
    "load_municipalities",
    "load_scores",
    "read_table",
    "resolve_municipalities",
]

_CSV_SUFFIXES = (".csv", ".txt")
_DELIMITERS = (",", ";", "\t")
_NON_FINITE = frozenset({"nan", "inf", "infinity"})
_INTEGER = re.compile(r"[+-]?\d+")
# '1.000' or '12,500,000' in a whole-number column: a thousands separator, not a decimal point.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}([.,]\d{3})+")
# Dutch Excel writes decimals with a comma: '52,37'.
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
_CODE = re.compile(schema.MUNICIPALITY_CODE_PATTERN)

Record = tuple[int, list[str]]


# ---------------------------------------------------------------------------------------------
# Reading files


def read_table(path: str | os.PathLike[str], *, allow_no_rows: bool = False) -> pd.DataFrame:
    """Read a table file as stripped strings.

    Parameters
    ----------
    path
        A ``.csv`` or ``.txt`` file (UTF-8, with or without BOM; the delimiter ``,``, ``;`` or tab
        is taken from the header line), an ``.xlsx`` workbook (its first sheet) or a
        ``.parquet`` file.
    allow_no_rows
        Accept a file that has a header but no data rows. A file without even a header is
        always an error.

    Returns
    -------
    pd.DataFrame
        One ``string`` column per header cell, named by the header stripped and lower-cased.
        Every cell is a stripped string; an empty cell is ``""``, never missing. The index,
        named ``row``, holds each row's spreadsheet row number (header = row 1), so that
        problems can point at it. Rows whose cells are all empty are left out.

    Raises
    ------
    InputError
        If the file is missing, a directory, of an unknown type, empty, not UTF-8, an unreadable
        workbook or Parquet file, has ragged rows, or has a header without data rows.
    """
    file = os.fspath(path)
    p = Path(file)

    def fail(message: str, row: int | None = None) -> InputError:
        return InputError(Problem(file=file, message=message, row=row))

    if not p.exists():
        raise fail("file not found")
    if p.is_dir():
        raise fail("is a directory, not a file")
    suffix = p.suffix.lower()
    if suffix not in schema.TABLE_SUFFIXES:
        hint = "; save it as .xlsx" if suffix == ".xls" else ""
        known = ", ".join(schema.TABLE_SUFFIXES)
        raise fail(f"unknown file type '{suffix or p.name}' (use one of {known}){hint}")
    if p.stat().st_size == 0:
        raise fail("file is empty (0 bytes)")

    if suffix in _CSV_SUFFIXES:
        records = _read_csv(file, p)
        strict_width = True
    elif suffix == ".xlsx":
        records = _read_excel(file, p)
        strict_width = False
    else:
        records = _read_parquet(file, p)
        strict_width = False
    return _to_frame(file, records, strict_width=strict_width, allow_no_rows=allow_no_rows)


def _read_csv(file: str, p: Path) -> list[Record]:
    raw = p.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(Problem(file, "is UTF-16 text; save it as 'CSV UTF-8' instead"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = (
            f"is not valid UTF-8: the first bad byte is on line {line}; "
            "save the file as 'CSV UTF-8'"
        )
        raise InputError(Problem(file, message, row=line)) from None
    reader = csv.reader(StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    try:
        return [
            (number, [cell.strip() for cell in cells])
            for number, cells in enumerate(reader, start=1)
        ]
    except csv.Error as exc:
        message = f"cannot be parsed as CSV near line {reader.line_num}: {exc}"
        raise InputError(Problem(file, message)) from None


def _sniff_delimiter(text: str) -> str:
    """The delimiter occurring most often outside quotes in the first non-blank line."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    counts = {d: unquoted.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_excel(file: str, p: Path) -> list[Record]:
    import openpyxl  # deferred: only workbook users pay for the import

    try:
        workbook = openpyxl.load_workbook(p, read_only=False, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            rows = sheet.iter_rows(min_row=1, values_only=True)
            return [
                (number, [_cell_text(v) for v in cells])
                for number, cells in enumerate(rows, start=1)
            ]
        finally:
            workbook.close()
    except Exception as exc:  # openpyxl raises many types for a damaged file
        message = (
            f"cannot be read as an Excel workbook; is it a valid .xlsx file? ({type(exc).__name__})"
        )
        raise InputError(Problem(file, message)) from None


def _read_parquet(file: str, p: Path) -> list[Record]:
    try:
        frame = pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        message = f"cannot be read as a Parquet file ({type(exc).__name__})"
        raise InputError(Problem(file, message)) from None
    header: Record = (1, [str(c) for c in frame.columns])
    body = [
        (number, [_cell_text(v) for v in cells])
        for number, cells in enumerate(frame.itertuples(index=False, name=None), start=2)
    ]
    return [header, *body]


def _cell_text(value: Any) -> str:
    """A workbook or Parquet cell as the text a user would have typed."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return ""
        # Excel stores every number as a float; an id typed as 1001 must not become '1001.0'.
        if number.is_integer() and abs(number) < 2**53:
            return str(int(number))
        return repr(number)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _to_frame(
    file: str, records: list[Record], *, strict_width: bool, allow_no_rows: bool
) -> pd.DataFrame:
    records = [(number, cells) for number, cells in records if any(cells)]
    if not records:
        raise InputError(Problem(file, "file is empty (no header row)"))
    (header_row, header), *body = records
    names = [h.strip().lower() for h in header]
    width = len(names)
    problems: list[Problem] = []

    if strict_width:
        for number, cells in body:
            extra = cells[width:]
            if len(cells) < width or any(extra):
                problems.append(
                    Problem(
                        file,
                        f"has {len(cells)} cells but the header has {width}",
                        row=number,
                    )
                )
    # Values beyond the header, or under an empty header cell, belong to no column.
    widest = max([width, *(len(cells) for _, cells in body)])
    for index in range(widest):
        if index < width and names[index]:
            continue
        filled = [n for n, cells in body if index < len(cells) and cells[index]]
        if filled and (index < width or not strict_width):
            problems.append(
                Problem(file, f"column {index + 1} has values but no header", row=filled[0])
            )
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            continue
        if name in seen:
            problems.append(
                Problem(
                    file,
                    f"column '{name}' appears twice in the header "
                    f"(columns {seen[name] + 1} and {index + 1})",
                    row=header_row,
                    column=name,
                )
            )
        else:
            seen[name] = index
    if not body and not allow_no_rows:
        problems.append(Problem(file, "has no data rows (only a header)"))
    if problems:
        raise InputError(problems)

    columns = {
        name: pd.array(
            [cells[index] if index < len(cells) else "" for _, cells in body], dtype="string"
        )
        for name, index in seen.items()
    }
    row_numbers = pd.Index([number for number, _ in body], dtype="int64", name="row")
    return pd.DataFrame(columns, index=row_numbers)


# ---------------------------------------------------------------------------------------------
# Municipality references


class _Places:
    """Looks up municipality codes, names and labour-market regions, case-insensitively."""

    def __init__(self, municipalities: pd.DataFrame):
        codes = [str(c) for c in municipalities["code"]]
        names = [str(n) for n in municipalities["name"]]
        self.by_code = {c.upper(): c for c in codes}
        self.by_name = {n.strip().casefold(): c for n, c in zip(names, codes, strict=True)}
        self.candidates = {n.casefold(): n for n in names} | {c.casefold(): c for c in codes}
        self.regions: dict[str, str] = {}
        for region in municipalities["labour_market_region"].dropna():
            self.regions.setdefault(str(region).strip().casefold(), str(region))

    def code(self, text: str) -> str | None:
        text = text.strip()
        return self.by_code.get(text.upper()) or self.by_name.get(text.casefold())

    def region(self, text: str) -> str | None:
        return self.regions.get(text.strip().casefold())

    def unknown_municipality(self, text: str) -> str:
        return _unknown("municipality", text, self.candidates)

    def unknown_region(self, text: str) -> str:
        return _unknown("labour_market_region", text, self.regions)


def _unknown(what: str, text: str, candidates: dict[str, str]) -> str:
    close = difflib.get_close_matches(text.strip().casefold(), list(candidates), n=1, cutoff=0.6)
    hint = f"; did you mean '{candidates[close[0]]}'?" if close else ""
    return f"unknown {what} '{_short(text)}'{hint}"


def resolve_municipalities(
    values: pd.Series, municipalities: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """Map municipality references to codes.

    Parameters
    ----------
    values
        References: a code such as ``GM0772`` (any case) or an exact CBS name such as
        ``Eindhoven`` (any case); surrounding whitespace is ignored.
    municipalities
        A canonical municipalities frame (see :func:`load_municipalities`).

    Returns
    -------
    tuple[pd.Series, pd.Series]
        The codes (``string``, ``NA`` where the reference is unknown or empty) and a ``bool``
        mask of the unknown references; an empty or missing value is not unknown. Both keep the
        index of ``values``.
    """
    places = _Places(municipalities)
    codes: list[str | None] = []
    unknown: list[bool] = []
    for value in values.tolist():
        text = "" if value is None or pd.isna(value) else str(value).strip()
        code = places.code(text) if text else None
        codes.append(code)
        unknown.append(bool(text) and code is None)
    return (
        pd.Series(codes, index=values.index, dtype="string", name=values.name),
        pd.Series(unknown, index=values.index, dtype=bool, name=values.name),
    )


# ---------------------------------------------------------------------------------------------
# Cell checks


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_number(text: str, whole: bool) -> tuple[float | int | None, str | None]:
    """The number in ``text``, or ``None`` and why it is not one."""
    text = text.replace("\u2212", "-")  # a typographic minus sign
    if text.lower().lstrip("+-") in _NON_FINITE:
        return None, "not a finite number"
    if whole and _THOUSANDS.fullmatch(text):
        return None, "a number with a thousands separator"
    if _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    kind = "a whole number" if whole else "a number"
    if "_" in text:  # float() accepts '1_000'; a user does not write that
        return None, f"not {kind}"
    try:
        number = float(text)
    except ValueError:
        return None, f"not {kind}"
    if not math.isfinite(number):
        return None, "not a finite number"
    if not whole:
        return number, None
    if _INTEGER.fullmatch(text):
        return int(text), None
    if not number.is_integer():
        return None, "not a whole number"
    return int(number), None


class _Checker:
    """Collects the problems of one table while its columns are parsed."""

    def __init__(self, file: str, table: pd.DataFrame, *, personal: bool):
        self.file = file
        self.table = table
        self.personal = personal
        self.rows: list[int] = [int(r) for r in table.index]
        self.problems: list[Problem] = []

    def add(self, message: str, row: int | None = None, column: str | None = None) -> None:
        self.problems.append(Problem(self.file, message, row=row, column=column))

    def has(self, column: str) -> bool:
        return column in self.table.columns

    def require(self, columns: Iterable[str]) -> None:
        found = ", ".join(f"'{c}'" for c in self.table.columns) or "none"
        for column in columns:
            if not self.has(column):
                self.add(f"missing required column '{column}' (found: {found})", column=column)

    def cells(self, column: str) -> list[str]:
        if not self.has(column):
            return [""] * len(self.rows)
        return [str(v) for v in self.table[column].tolist()]

    def finish(self) -> None:
        if self.problems:
            self.problems.sort(key=lambda p: -1 if p.row is None else p.row)
            raise InputError(self.problems)

    # --- typed columns ---------------------------------------------------------------------

    def text(self, column: str, *, required: bool = False) -> list[str | None]:
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            if not text and required and self.has(column):
                self.add(f"{column} must not be empty", row, column)
            out.append(text or None)
        return out

    def number(
        self,
        column: str,
        *,
        whole: bool = False,
        low: float | None = None,
        high: float | None = None,
        required: bool = False,
        where: str = "",
    ) -> list[Any]:
        """Parse numbers; ``where`` explains the range, e.g. '(inside the Netherlands)'."""
        kind = "a whole number" if whole else "a number"
        if low is not None and high is not None:
            wanted = f"{kind} between {low:g} and {high:g}"
        elif low is not None:
            wanted = f"{kind} >= {low:g}"
        else:
            wanted = kind
        if where:
            wanted += f" {where}"
        out: list[Any] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            value: Any = None
            if not text:
                if required and self.has(column):
                    self.add(f"{column} is empty; it must be {wanted}", row, column)
            else:
                value, reason = _parse_number(text, whole)
                if reason is not None:
                    if self.personal:
                        finite = ", not NaN or infinity" if "finite" in reason else ""
                        self.add(f"{column} must be {wanted}{finite}", row, column)
                    else:
                        self.add(
                            f"'{_short(text)}' is {reason}; {column} must be {wanted}", row, column
                        )
                elif (low is not None and value < low) or (high is not None and value > high):
                    got = "" if self.personal else f"; got {_short(text)}"
                    self.add(f"{column} must be {wanted}{got}", row, column)
                    value = None
            out.append(value)
        return out

    def boolean(self, column: str) -> list[bool | None]:
        words = ", ".join(sorted(schema.TRUE_WORDS | schema.FALSE_WORDS))
        out: list[bool | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            word = text.lower()
            if not word:
                out.append(None)
            elif word in schema.TRUE_WORDS:
                out.append(True)
            elif word in schema.FALSE_WORDS:
                out.append(False)
            else:
                echo = "" if self.personal else f"'{_short(text)}' is not yes or no; "
                self.add(f"{echo}{column} must be yes or no (one of: {words})", row, column)
                out.append(None)
        return out

    def choice(
        self, column: str, allowed: Sequence[str], *, multi: bool = False, required: bool = False
    ) -> list[str | None]:
        """Lower-cased values from ``allowed``; ``multi`` accepts a ';'-separated list."""
        listed = ", ".join(allowed)
        wanted = f"';'-separated values from: {listed}" if multi else f"one of: {listed}"
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            parts = [p.strip().lower() for p in text.split(";")] if multi else [text.lower()]
            parts = [p for p in parts if p]
            if not parts:
                if required and self.has(column):
                    self.add(f"{column} must not be empty; it must be {wanted}", row, column)
                out.append(None)
                continue
            bad = [p for p in parts if p not in allowed]
            if bad:
                echo = "" if self.personal else f"unknown {column} '{_short(bad[0])}'; "
                self.add(f"{echo}{column} must be {wanted}", row, column)
                out.append(None)
            else:
                out.append(";".join(parts))
        return out

    def municipality(
        self, column: str, places: _Places, *, multi: bool = False, required: bool = False
    ) -> list[str | None]:
        """Codes for references by code or name; ``multi`` accepts a ';'-separated list."""
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            parts = [p.strip() for p in text.split(";")] if multi else [text]
            parts = [p for p in parts if p]
            if not parts:
                if required and self.has(column):
                    self.add(f"{column} must not be empty", row, column)
                out.append(None)
                continue
            codes = []
            for part in parts:
                code = places.code(part)
                if code is None:
                    self.add(places.unknown_municipality(part), row, column)
                codes.append(code)
            out.append(None if None in codes else ";".join(c for c in codes if c))
        return out

    def region(self, column: str, places: _Places, *, required: bool = False) -> list[str | None]:
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            region = places.region(text) if text else None
            if not text:
                if required and self.has(column):
                    self.add(f"{column} must not be empty", row, column)
            elif region is None:
                self.add(places.unknown_region(text), row, column)
            out.append(region)
        return out

    def household(self, column: str, known: Iterable[str], *, what: str) -> list[str | None]:
        """Household ids that exist in ``known``; ``what`` names the row, e.g. 'criterion'."""
        known = set(known)
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            if not text:
                if self.has(column):
                    self.add(f"{column} must not be empty", row, column)
                out.append(None)
            elif text not in known:
                self.add(f"{what} points to unknown household '{_short(text)}'", row, column)
                out.append(None)
            else:
                out.append(text)
        return out

    def unique(
        self,
        keys: Sequence[Hashable | None],
        column: str,
        describe: Callable[[Any], str],
    ) -> None:
        """Report each repeated key at its later row, naming the first row."""
        first: dict[Hashable, int] = {}
        for row, key in zip(self.rows, keys, strict=True):
            if key is None:
                continue
            if key in first:
                self.add(f"{describe(key)} (first on row {first[key]})", row, column)
            else:
                first[key] = row


def _frame(columns: dict[str, list[Any]], dtypes: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """The canonical frame: columns in schema order with their dtypes and a RangeIndex."""
    length = len(next(iter(columns.values()))) if columns else 0
    data = {
        name: pd.array(columns.get(name, [None] * length), dtype=dtype)  # type: ignore[call-overload]
        for name, dtype in dtypes
    }
    return pd.DataFrame(data, index=pd.RangeIndex(length))


def _check_municipalities_frame(municipalities: pd.DataFrame) -> None:
    missing = {"code", "name", "labour_market_region"} - set(municipalities.columns)
    if missing:
        raise TypeError(
            "municipalities must be a frame from load_municipalities; "
            f"it lacks {', '.join(sorted(missing))}"
        )


# ---------------------------------------------------------------------------------------------
# Loaders


def load_municipalities(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load and validate the municipalities table.

    Parameters
    ----------
    path
        A table with the columns of ``schema.MUNICIPALITY_REQUIRED`` and optionally
        ``schema.MUNICIPALITY_OPTIONAL``. Other columns are ignored.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.MUNICIPALITY_DTYPES``: unique ``GM0000`` codes
        (upper-cased), unique names (case-insensitively), coordinates inside the Netherlands,
        population >= 0, and the optional quota, cap_large, cap_single >= 0 and backlog.

    Raises
    ------
    InputError
        With every problem in the file.
    """
    file = os.fspath(path)
    c = _Checker(file, read_table(path), personal=False)
    c.require(schema.MUNICIPALITY_REQUIRED)

    codes = [t.upper() if t else None for t in c.text("code", required=True)]
    for row, code in zip(c.rows, codes, strict=True):
        if code is not None and not _CODE.fullmatch(code):
            c.add(
                f"code must be 'GM' and four digits, e.g. GM0363; got '{_short(code)}'", row, "code"
            )
    c.unique(codes, "code", lambda k: f"duplicate code '{k}'")
    names = c.text("name", required=True)
    c.unique(
        [n.casefold() if n else None for n in names], "name", lambda k: f"duplicate name '{k}'"
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
        "population": c.number("population", whole=True, low=0, required=True),
        "quota": c.number("quota", whole=True, low=0),
        "backlog": c.number("backlog", whole=True),
        "cap_large": c.number("cap_large", whole=True, low=0),
        "cap_single": c.number("cap_single", whole=True, low=0),
    }
    c.finish()
    return _frame(columns, schema.MUNICIPALITY_DTYPES)


def load_households(path: str | os.PathLike[str], municipalities: pd.DataFrame) -> pd.DataFrame:
    """Load and validate the households table.

    Parameters
    ----------
    path
        A table with ``household_id`` and ``size`` and optionally the columns of
        ``schema.HOUSEHOLD_OPTIONAL``. Other columns are ignored.
    municipalities
        The canonical municipalities frame; ``azc``, ``preferred_municipality`` and ``network``
        may name a municipality by code or name, ``preferred_region`` a labour-market region.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.HOUSEHOLD_DTYPES``. Municipality references become
        codes (``network``: codes joined by ';'), education and sector become lower-case
        vocabulary words joined by ';', regions take their canonical spelling.

    Raises
    ------
    InputError
        With every problem in the file. Messages echo no cell values but household ids and
        municipality or region references.
    """
    _check_municipalities_frame(municipalities)
    places = _Places(municipalities)
    c = _Checker(os.fspath(path), read_table(path), personal=True)
    c.require(schema.HOUSEHOLD_REQUIRED)

    ids = c.text("household_id", required=True)
    c.unique(ids, "household_id", lambda k: f"duplicate household_id '{_short(k)}'")
    size = c.number("size", whole=True, low=1, required=True)
    adults = c.number("adults", whole=True, low=1)
    children = c.number("children", whole=True, low=0)
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
    c.finish()
    return _frame(columns, schema.HOUSEHOLD_DTYPES)


def load_criteria(
    path: str | os.PathLike[str], households: pd.DataFrame, municipalities: pd.DataFrame
) -> pd.DataFrame:
    """Load and validate the hard criteria.

    Parameters
    ----------
    path
        A table with ``household_id``, ``kind`` and ``municipality`` and optionally
        ``hours_per_week``, ``contract_signed`` and ``payslip_seen``. A file with only a header
        is a valid, empty set of criteria; a 0-byte file is an error.
    households, municipalities
        The canonical frames the criteria refer to.

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
    _check_municipalities_frame(municipalities)
    places = _Places(municipalities)
    c = _Checker(os.fspath(path), read_table(path, allow_no_rows=True), personal=True)
    c.require(schema.CRITERIA_REQUIRED)
    columns: dict[str, list[Any]] = {
        "household_id": c.household("household_id", households["household_id"], what="criterion"),
        "kind": c.choice("kind", schema.CRITERION_KINDS, required=True),
        "municipality": c.municipality("municipality", places, required=True),
        "hours_per_week": c.number("hours_per_week", low=0),
        "contract_signed": c.boolean("contract_signed"),
        "payslip_seen": c.boolean("payslip_seen"),
    }
    c.finish()
    return _frame(columns, schema.CRITERIA_DTYPES)


def load_scores(
    path: str | os.PathLike[str], households: pd.DataFrame, municipalities: pd.DataFrame
) -> pd.DataFrame:
    """Load and validate participation scores.

    Parameters
    ----------
    path
        A table with ``household_id``, ``score`` and at least one of ``municipality`` /
        ``labour_market_region``; each row fills exactly one of the two.
    households, municipalities
        The canonical frames the scores refer to.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.SCORES_DTYPES``; ``score`` in [0, 1], no
        (household, municipality) or (household, region) pair twice.

    Raises
    ------
    InputError
        With every problem in the file.
    """
    _check_municipalities_frame(municipalities)
    places = _Places(municipalities)
    c = _Checker(os.fspath(path), read_table(path), personal=True)
    c.require(schema.SCORES_REQUIRED)
    if not any(c.has(t) for t in schema.SCORES_TARGETS):
        found = ", ".join(f"'{col}'" for col in c.table.columns)
        c.add(
            f"missing column: give 'municipality' or 'labour_market_region' (found: {found})",
            column="municipality",
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
    keys = [
        (h, m, r) if h is not None and (m is not None or r is not None) else None
        for h, m, r in zip(ids, codes, regions, strict=True)
    ]
    c.unique(
        keys,
        "household_id",
        lambda k: f"duplicate score for household '{k[0]}' and '{k[1] or k[2]}'",
    )
    columns: dict[str, list[Any]] = {
        "household_id": ids,
        "municipality": codes,
        "labour_market_region": regions,
        "score": c.number("score", low=0, high=1, required=True),
    }
    c.finish()
    return _frame(columns, schema.SCORES_DTYPES)


def load_locks(
    path: str | os.PathLike[str], households: pd.DataFrame, municipalities: pd.DataFrame
) -> pd.DataFrame:
    """Load and validate locks: pins (couple here) and bans (never couple here).

    Parameters
    ----------
    path
        A table with ``household_id``, ``municipality`` and ``action`` (``pin`` or ``ban``).
    households, municipalities
        The canonical frames the locks refer to.

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
    _check_municipalities_frame(municipalities)
    places = _Places(municipalities)
    c = _Checker(os.fspath(path), read_table(path), personal=True)
    c.require(schema.LOCKS_REQUIRED)
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
                c.add(
                    f"household '{h}' is pinned twice (first pin on row {pins[h]})", row, "action"
                )
            pins.setdefault(h, row)
        if (h, m) in pairs:
            other, first = pairs[(h, m)]
            if other != a:
                c.add(
                    f"household '{h}' is both pinned and banned at '{m}' (row {first})",
                    row,
                    "action",
                )
            elif a == "ban":
                c.add(
                    f"household '{h}' is banned at '{m}' twice (first on row {first})",
                    row,
                    "action",
                )
        else:
            pairs[(h, m)] = (a, row)
    columns: dict[str, list[Any]] = {"household_id": ids, "municipality": codes, "action": actions}
    c.finish()
    return _frame(columns, schema.LOCKS_DTYPES)


def load_demand(path: str | os.PathLike[str], municipalities: pd.DataFrame) -> pd.DataFrame:
    """Load and validate the labour-demand table (labour-market region x sector -> demand).

    Parameters
    ----------
    path
        A table with ``labour_market_region``, ``sector`` and ``demand`` in [0, 1]. Pairs not
        listed are left to the caller's default.
    municipalities
        The canonical municipalities frame, whose regions are the known ones.

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
    _check_municipalities_frame(municipalities)
    places = _Places(municipalities)
    c = _Checker(os.fspath(path), read_table(path), personal=False)
    c.require(schema.DEMAND_REQUIRED)
    regions = c.region("labour_market_region", places, required=True)
    sectors = c.choice("sector", schema.SECTORS, required=True)
    keys = [
        (r, s) if r is not None and s is not None else None
        for r, s in zip(regions, sectors, strict=True)
    ]
    c.unique(keys, "sector", lambda k: f"duplicate demand for '{k[0]}' and '{k[1]}'")
    columns: dict[str, list[Any]] = {
        "labour_market_region": regions,
        "sector": sectors,
        "demand": c.number("demand", low=0, high=1, required=True),
    }
    c.finish()
    return _frame(columns, schema.DEMAND_DTYPES)


def load_distances(path: str | os.PathLike[str], municipalities: pd.DataFrame) -> pd.DataFrame:
    """Load and validate a user's distance matrix in long form.

    Parameters
    ----------
    path
        A table with ``from``, ``to`` (municipality codes or names) and ``km`` >= 0, e.g. road
        kilometres. Only the listed pairs are returned; direction matters.
    municipalities
        The canonical municipalities frame.

    Returns
    -------
    pd.DataFrame
        Columns and dtypes of ``schema.DISTANCE_DTYPES``; no (from, to) pair twice.

    Raises
    ------
    InputError
        With every problem in the file.
    """
    _check_municipalities_frame(municipalities)
    places = _Places(municipalities)
    c = _Checker(os.fspath(path), read_table(path), personal=False)
    c.require(schema.DISTANCE_REQUIRED)
    origins = c.municipality("from", places, required=True)
    targets = c.municipality("to", places, required=True)
    keys = [
        (a, b) if a is not None and b is not None else None
        for a, b in zip(origins, targets, strict=True)
    ]
    c.unique(keys, "to", lambda k: f"duplicate distance from '{k[0]}' to '{k[1]}'")
    columns: dict[str, list[Any]] = {
        "from": origins,
        "to": targets,
        "km": c.number("km", low=0, required=True),
    }
    c.finish()
    return _frame(columns, schema.DISTANCE_DTYPES)
