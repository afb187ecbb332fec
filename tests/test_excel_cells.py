"""Spreadsheet-safe cells (coupler.excel): formulas neutralised, numbers untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coupler.excel import FORMULA_START, safe_frame, safe_text

#: The OWASP "CSV injection" list of characters that start a formula.
OWASP = ("=", "+", "-", "@", "\t", "\r")


def test_formula_start_is_the_owasp_list() -> None:
    """The module neutralises exactly the OWASP lead characters."""
    assert set(FORMULA_START) == set(OWASP)


@pytest.mark.parametrize("lead", OWASP, ids=["eq", "plus", "minus", "at", "tab", "cr"])
def test_every_lead_character_gets_an_apostrophe(lead: str) -> None:
    """Text starting with any OWASP lead character gets one leading apostrophe and is otherwise
    kept, in a single value and in every text cell and column name of a frame; a missing cell
    stays missing."""
    text = f'{lead}HYPERLINK("x")'
    assert safe_text(text) == "'" + text
    frame = pd.DataFrame(
        {
            text: pd.array([text, "plain"], dtype="string"),
            "obj": pd.Series([text, None], dtype=object),
        }
    )
    out = safe_frame(frame)
    assert list(out.columns) == ["'" + text, "obj"]
    assert out["'" + text].tolist() == ["'" + text, "plain"]
    assert out["obj"].iloc[0] == "'" + text
    assert pd.isna(out["obj"].iloc[1])


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.text())
def test_safe_text_changes_only_formula_text(text: str) -> None:
    """Any text: unchanged unless it starts with a lead character, then exactly one apostrophe
    is added; applying it twice changes nothing more (an apostrophe is not a lead character)."""
    out = safe_text(text)
    if text[:1] in OWASP:
        assert out == "'" + text
    else:
        assert out == text
    assert safe_text(out) == out


@pytest.mark.parametrize("value", [-3, -3.5, 0, 2**40, float("-inf"), np.int64(-7), None, True])
def test_numbers_and_non_text_are_untouched(value: object) -> None:
    """Numbers (negative ones too), None and booleans pass through as the same object."""
    assert safe_text(value) is value


def test_safe_frame_leaves_numeric_columns_and_the_input_alone() -> None:
    """Numeric columns keep their dtype and values (a negative count stays -3); the input frame
    is not changed."""
    frame = pd.DataFrame(
        {
            "count": np.array([-3, 4], dtype=np.int64),
            "share": [-0.5, 0.25],
            "nullable": pd.array([-1, None], dtype="Int64"),
            "code": pd.array(["-GM1", "GM2"], dtype="string"),
        }
    )
    before = frame.copy()
    out = safe_frame(frame)
    pd.testing.assert_frame_equal(frame, before)
    for col in ("count", "share", "nullable"):
        pd.testing.assert_series_equal(out[col], frame[col])
    assert out["code"].tolist() == ["'-GM1", "GM2"]
