"""Cells that are safe to open in Excel: the one place every writer neutralises text.

A spreadsheet program treats a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula (OWASP: CSV injection). Every text value coupler writes to a CSV
or xlsx file that a person may open goes through :func:`safe_text` (one value) or
:func:`safe_frame` (a whole table): such a value gets a leading apostrophe, which Excel shows as
text and never evaluates. Numbers stay numbers, so a negative count is still ``-3``.

>>> safe_text("=HYPERLINK(1)")
"'=HYPERLINK(1)"
>>> safe_text("H001")
'H001'
"""

from __future__ import annotations

from typing import Any

import pandas as pd

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
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            out[col] = s.map(safe_text)
    out.columns = [safe_text(c) for c in out.columns]
    return out
