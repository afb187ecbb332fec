"""The taakstelling (coupler.quota): largest-remainder quotas and filling a municipality table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import LINE, municipalities
from hypothesis import given, settings
from hypothesis import strategies as st

from coupler import InputError, load_scenario
from coupler.quota import DEFAULT_NATIONAL_TOTAL, fill_quotas, proportional_quotas


@settings(derandomize=True, deadline=None, max_examples=200)
@given(
    st.lists(st.integers(0, 1_000_000), min_size=1, max_size=60).filter(lambda p: sum(p) > 0),
    st.integers(0, 100_000),
)
def test_largest_remainder_is_exact_and_proportional(population, total):
    """Quotas sum exactly to the total and each is within 1 person of its exact share."""
    q = proportional_quotas(population, total)
    assert q.dtype == np.int64 and int(q.sum()) == total
    share = np.array(population, dtype=float) * total / sum(population)
    assert (np.abs(q - share) < 1.0 + 1e-9).all()
    assert (q >= np.floor(share - 1e-9)).all()


def test_ties_go_to_the_larger_population_then_the_lower_position():
    """One person over three equal remainders goes to the largest population; over equal
    populations to the first position."""
    assert proportional_quotas([1, 2, 1], 1).tolist() == [0, 1, 0]
    assert proportional_quotas([5, 5, 5], 1).tolist() == [1, 0, 0]
    assert proportional_quotas([5, 5, 5], 2).tolist() == [1, 1, 0]


@pytest.mark.parametrize(
    ("population", "total"),
    [([1, 2], -1), ([0, 0], 5), ([-1, 3], 5), ([], 5)],
    ids=["negative-total", "all-zero", "negative-population", "empty"],
)
def test_proportional_quotas_rejects_bad_input(population, total):
    """A negative total, an empty, all-zero or negative population is a ValueError."""
    with pytest.raises(ValueError, match="total|population"):
        proportional_quotas(population, total)


def test_national_default_total(nl_municipalities):
    """The embedded scenario's 342 quotas sum to the default half-year total (28,000 persons:
    the 2016-II peak plus backlog) and to --total when given."""
    assert len(nl_municipalities) == 342
    assert int(nl_municipalities["quota"].sum()) == DEFAULT_NATIONAL_TOTAL == 28_000
    assert int(load_scenario(total=17_600)[0]["quota"].sum()) == 17_600


def test_fill_quotas_keeps_a_given_quota_and_adds_the_backlog():
    """A quota column is kept as given; remaining = quota + backlog, never below 0."""
    m = municipalities(LINE[:3], [4, 0, 2], backlog=[1, 3, -5])
    out = fill_quotas(m, None, "municipalities.csv")
    assert out["quota"].tolist() == [4, 0, 2]
    assert out["remaining"].tolist() == [5, 3, 0]


def test_fill_quotas_divides_a_total_when_there_is_no_quota():
    """Without a quota column the total is divided by population (10,000 x (i + 1) here)."""
    m = municipalities(LINE[:3], [0, 0, 0]).drop(columns=["quota", "remaining"])
    out = fill_quotas(m, 60, "municipalities.csv")
    assert out["quota"].tolist() == [10, 20, 30]
    assert out["remaining"].tolist() == [10, 20, 30]


def test_fill_quotas_rejects_a_quota_and_a_total():
    """A file with a quota column and a national total too is an InputError naming the file."""
    m = municipalities(LINE[:2], [1, 2])
    with pytest.raises(InputError, match="municipalities.csv: has a quota column; do not also"):
        fill_quotas(m, 100, "municipalities.csv")


def test_fill_quotas_names_every_row_with_a_missing_quota():
    """A partly filled quota column is an error per missing cell, with its spreadsheet row
    (header = row 1) and the column, never a silent 0."""
    m = municipalities(LINE[:3], [1, 2, 3])
    m["quota"] = m["quota"].astype("Int64")
    m.loc[[0, 2], "quota"] = pd.NA
    with pytest.raises(InputError) as err:
        fill_quotas(m, None, "municipalities.csv")
    rows = [(p.row, p.column) for p in err.value.problems]
    assert rows == [(2, "quota"), (4, "quota")]
    assert "quota is missing" in str(err.value)
