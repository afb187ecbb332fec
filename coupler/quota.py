"""The taakstelling: a national total divided over municipalities by population.

Largest-remainder (Hamilton) rounding keeps the sum exactly equal to the total; ties in the
remainder go to the larger population, then to the lower position, so the result is deterministic.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from coupler.errors import InputError, Problem

#: Default national half-year total: the 2016-II peak of 23,000 persons plus the carried backlog of
#: 5,283, rounded (DOMAIN.md section 2).
DEFAULT_NATIONAL_TOTAL = 28_000


def proportional_quotas(population: npt.ArrayLike, total: int) -> np.ndarray:
    """Split ``total`` persons over municipalities in proportion to ``population``.

    Parameters
    ----------
    population
        Inhabitants per municipality (non-negative, not all zero).
    total
        National total in persons (>= 0).

    Returns
    -------
    numpy.ndarray
        Integer quotas (int64) that sum exactly to ``total``; each differs from its exact share
        by less than one person.
    """
    pop = np.asarray(population, dtype=np.float64)
    if total < 0:
        raise ValueError(f"total must be >= 0; got {total}")
    if pop.ndim != 1 or (pop < 0).any() or pop.sum() <= 0:
        raise ValueError("population must be a non-empty vector of non-negative numbers, not all 0")
    # Exact integer arithmetic for the shares avoids float ties going astray.
    pop_int = np.round(pop).astype(np.int64)
    numer = pop_int * int(total)
    denom = int(pop_int.sum())
    base = numer // denom
    remainder = numer - base * denom
    short = int(total - base.sum())
    # Order: largest remainder, then largest population, then position.
    order = np.lexsort((np.arange(len(pop)), -pop_int, -remainder))
    quotas = base.copy()
    quotas[order[:short]] += 1
    return quotas


def fill_quotas(municipalities: pd.DataFrame, total: int | None, source: str) -> pd.DataFrame:
    """Fill ``quota`` (from ``total`` by population when the file has none) and ``remaining``.

    ``remaining`` = quota + backlog (persons carried over; a negative backlog is a surplus),
    never below 0. A quota column that is only partly filled is an error, never a silent 0.
    """
    m = municipalities.copy()
    has_quota = "quota" in m and m["quota"].notna().any()
    if has_quota and total is not None:
        raise InputError(Problem(source, "has a quota column; do not also give a national total"))
    if has_quota:
        missing = m.index[m["quota"].isna()]
        if len(missing):
            raise InputError(
                [
                    Problem(
                        source,
                        "quota is missing; give every municipality a quota or none",
                        row=int(i) + 2,
                        column="quota",
                    )
                    for i in missing
                ]
            )
        quota = m["quota"].to_numpy(dtype=np.int64)
    else:
        quota = proportional_quotas(
            m["population"].to_numpy(), DEFAULT_NATIONAL_TOTAL if total is None else total
        )
    m["quota"] = quota
    backlog = m["backlog"].fillna(0).to_numpy(dtype=np.int64) if "backlog" in m else 0
    m["remaining"] = np.maximum(quota + backlog, 0)
    return m
