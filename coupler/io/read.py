"""Table files -> frames of stripped strings.

:func:`read_table` reads a ``.csv``/``.txt``, ``.xlsx`` or ``.parquet`` file into a frame whose
cells are stripped strings and whose index is the spreadsheet row (header = row 1). It checks
only what every table shares: the file can be read, the header is unique, rows are as wide as
the header, and no cell holds a control character. What a column must contain is the business
of :mod:`coupler.io.cells` and :mod:`coupler.io.tables`.

Workbooks: a workbook with one visible sheet is read from that sheet; with more than one, the
sheet must be named, either as ``sheet=`` (``--sheet NAME`` on the command line) or in the path
as ``file.xlsx#NAME``. Hidden sheets are never read unless named.

No message here echoes a data cell: a file may hold personal data (DOMAIN.md section 9).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
from collections.abc import Collection
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coupler import schema
from coupler.errors import InputError, Problem

__all__ = ["read_table", "split_sheet"]

_CSV_SUFFIXES = (".csv", ".txt")
_DELIMITERS = (",", ";", "\t")
# C0 and C1 controls, DEL, line/paragraph separators and the bidi overrides that can make a
# cell display differently from what it holds. Zero-width (non-)joiners stay: Persian and
# Arabic names use them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

Record = tuple[int, list[str]]


def split_sheet(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """Split ``book.xlsx#Sheet`` into the workbook path and the sheet name.

    A path that exists as given, or whose part before the last ``#`` is not an ``.xlsx`` file,
    is returned whole with no sheet.
    """
    text = os.fspath(path)
    base, mark, sheet = text.rpartition("#")
    if mark and base.lower().endswith(".xlsx") and not Path(text).exists():
        return Path(base), sheet.strip()
    return Path(text), None


def read_table(
    path: str | os.PathLike[str],
    *,
    sheet: str | None = None,
    allow_no_rows: bool = False,
    known: Collection[str] | None = None,
) -> pd.DataFrame:
    """Read a table file as stripped strings.

    Parameters
    ----------
    path
        A ``.csv`` or ``.txt`` file (UTF-8, with or without BOM; the delimiter ``,``, ``;`` or tab
        is taken from the header line), an ``.xlsx`` workbook (optionally ``book.xlsx#Sheet``)
        or a ``.parquet`` file.
    sheet
        The sheet to read in a workbook; a sheet named in the path wins. Ignored for other
        file types. Without it, a workbook must have exactly one visible sheet.
    allow_no_rows
        Accept a file that has a header but no data rows. A file without even a header is
        always an error.
    known
        For a file of personal data: the header names that may be quoted in a message. In a
        file without a header row the first row is data, so any other name is referred to by
        its position only. ``None`` quotes every header name.

    Returns
    -------
    pd.DataFrame
        One ``string`` column per header cell, named by the header trimmed and case-folded.
        Every cell is a stripped string; an empty cell is ``""``, never missing. The index,
        named ``row``, holds each row's spreadsheet row number (header = row 1), so that
        problems can point at it. Rows whose cells are all empty are left out.

    Raises
    ------
    InputError
        If the file is missing, a directory, of an unknown type, empty, not UTF-8, an unreadable
        workbook or Parquet file, a workbook whose sheet is not clear, has ragged rows, a
        control character in a cell, or a header without data rows.
    """
    file = os.fspath(path)
    p, named = split_sheet(file)

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
        records = _read_excel(file, p, named or sheet)
        strict_width = False
    else:
        records = _read_parquet(file, p)
        strict_width = False
    return _to_frame(
        file, records, strict_width=strict_width, allow_no_rows=allow_no_rows, known=known
    )


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
        # csv's messages describe the syntax ("field larger than field limit"), never a cell.
        message = f"cannot be parsed as CSV near line {reader.line_num}: {exc}"
        raise InputError(Problem(file, message, row=reader.line_num)) from None


def _sniff_delimiter(text: str) -> str:
    """The delimiter occurring most often outside quotes in the first non-blank line."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    counts = {d: unquoted.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_excel(file: str, p: Path, sheet: str | None) -> list[Record]:
    import openpyxl  # deferred: only workbook users pay for the import

    try:
        workbook = openpyxl.load_workbook(p, read_only=False, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        message = (
            f"cannot be read as an Excel workbook; is it a valid .xlsx file? ({type(exc).__name__})"
        )
        raise InputError(Problem(file, message)) from None
    try:
        chosen = _choose_sheet(file, workbook.worksheets, sheet)
        rows = chosen.iter_rows(min_row=1, values_only=True)
        return [
            (number, [_cell_text(v) for v in cells]) for number, cells in enumerate(rows, start=1)
        ]
    finally:
        workbook.close()


def _choose_sheet(file: str, sheets: list[Any], name: str | None) -> Any:
    """The one sheet to read: the named one, or else the only visible one."""
    visible = [s for s in sheets if s.sheet_state == "visible"]
    hidden = [s.title for s in sheets if s.sheet_state != "visible"]
    listed = ", ".join(f"'{s.title}'" for s in visible) or "none"
    if hidden:
        listed += f" (hidden, never read unless named: {', '.join(repr(h) for h in hidden)})"
    if name is not None:
        exact = [s for s in sheets if s.title == name]
        loose = [s for s in sheets if s.title.strip().casefold() == name.strip().casefold()]
        found = exact or loose
        if len(found) != 1:
            raise InputError(Problem(file, f"has no sheet '{name}'; its sheets: {listed}"))
        return found[0]
    if len(visible) != 1:
        raise InputError(
            Problem(
                file,
                f"has {len(visible)} visible sheets ({listed}); name the one to read with "
                "--sheet NAME or as FILE.xlsx#NAME",
            )
        )
    return visible[0]


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


def _control_problems(file: str, records: list[Record], names: list[str | None]) -> list[Problem]:
    """One problem per cell holding a control character; the cell itself is never echoed."""
    problems: list[Problem] = []
    for number, cells in records:
        if not _CONTROL.search("".join(cells)):
            continue
        for index, cell in enumerate(cells):
            found = _CONTROL.search(cell)
            if found is None:
                continue
            name = names[index] if index < len(names) and names[index] else None
            where = "" if name else f"column {index + 1} "
            if number == records[0][0]:
                where, name = f"header cell {index + 1} ", None
            problems.append(
                Problem(
                    file,
                    f"{where}contains a control character (U+{ord(found.group()):04X}); "
                    "remove it (line breaks, tabs and invisible characters are not allowed "
                    "inside a cell)",
                    row=number,
                    column=name,
                )
            )
    return problems


def _to_frame(
    file: str,
    records: list[Record],
    *,
    strict_width: bool,
    allow_no_rows: bool,
    known: Collection[str] | None,
) -> pd.DataFrame:
    records = [(number, cells) for number, cells in records if any(cells)]
    if not records:
        raise InputError(Problem(file, "file is empty (no header row)"))
    (header_row, header), *body = records
    names = [h.strip().casefold() for h in header]
    # The names a message may quote (see ``known`` in read_table).
    quotable = [n if n and (known is None or n in known) else None for n in names]
    width = len(names)
    if known is not None and not set(names) & set(known):
        # Personal data without a header row: the first row is data, so quote none of it.
        raise InputError(
            Problem(
                file,
                "the first row is not a header: it names none of the columns coupler reads "
                f"({', '.join(known)}); add a header row naming the columns",
                row=header_row,
            )
        )
    problems = _control_problems(file, records, quotable)
    if problems:
        raise InputError(problems)

    if strict_width:
        for number, cells in body:
            extra = cells[width:]
            if len(cells) < width or any(extra):
                problems.append(
                    Problem(file, f"has {len(cells)} cells but the header has {width}", row=number)
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
            label = quotable[index]
            what = f"column '{label}'" if label else "a header name"
            problems.append(
                Problem(
                    file,
                    f"{what} appears twice in the header "
                    f"(columns {seen[name] + 1} and {index + 1})",
                    row=header_row,
                    column=label,
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
