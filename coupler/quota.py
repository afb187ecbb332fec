"""The taakstelling: a national total divided over municipalities by population.

Largest-remainder (Hamilton) rounding keeps the sum exactly equal to the total; ties in the
remainder go to the larger population, then to the lower position, so the result is deterministic.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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
