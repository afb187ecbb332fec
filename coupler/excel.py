"""Cells that are safe to open in Excel: the one place every writer neutralises text.

A spreadsheet program treats a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula (OWASP: CSV injection). Every text value coupler writes to a CSV
or xlsx file that a person may open goes through :func:`safe_text` (one value) or
:func:`safe_frame` (a whole table): such a value gets a leading apostrophe, which Excel shows as
text and never evaluates. Numbers stay numbers, so a negative count is still ``-3``.
:func:`write_csv` and :func:`write_xlsx` are the two table writers; both apply the rule.

>>> safe_text("=HYPERLINK(1)")
"'=HYPERLINK(1)"
>>> safe_text("H001")
'H001'
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

#: First characters that make a spreadsheet cell a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: Any) -> Any:
    """``value`` with a leading apostrophe when it is text that Excel would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) are :func:`safe_text`."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            out[col] = s.map(safe_text)
    out.columns = [safe_text(c) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``frame`` as CSV (UTF-8, ``\\n`` line ends, no index) with every text cell safe.

    A carriage return inside text becomes a line feed (as in xlsx), so the cell is quoted and
    the row stays one record for every reader.
    """
    out = safe_frame(frame)
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(_no_cr)
    out.to_csv(path, index=False, lineterminator="\n")


def _no_cr(value: Any) -> Any:
    if isinstance(value, str) and "\r" in value:
        return value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def _xlsx_cell(value: Any) -> Any:
    """A cell value openpyxl stores as itself: text safe and without illegal control characters."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    if isinstance(value, str):
        # openpyxl refuses control characters; U+FFFD marks where one was.
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", safe_text(value))
    return value


def write_xlsx(sheets: Mapping[str, pd.DataFrame], path: str | os.PathLike[str]) -> None:
    """Write each frame to a sheet of one workbook; every text cell is a string, never a formula.

    Text goes through :func:`safe_text`; control characters that a workbook cannot hold become
    U+FFFD, so a hostile id never stops the export.
    """
    wb = Workbook(write_only=True)
    for name, frame in sheets.items():
        ws = wb.create_sheet(title=name)
        ws.append([_text_cell(ws, _xlsx_cell(str(c))) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            ws.append([_text_cell(ws, _xlsx_cell(v)) for v in row])
    wb.save(path)


def _text_cell(ws: Any, value: Any) -> Any:
    """Text as an explicit string cell (data type 's'), so nothing is ever read as a formula."""
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell
