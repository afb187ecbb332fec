"""Households that look alike: one integer count per kind and municipality instead of one binary
per household.

Two households are of one *kind* when nothing in the model tells them apart: the same size, soft
value everywhere, forbidden and breaking pairs, pin and shortage-order weight. Batches given only
ids, sizes and an azc have few kinds (the small tier: 305 households, 130 kinds). A MIP with one
binary per household then holds every permutation of look-alike households as a different
solution of equal value, and branch-and-bound and its heuristics wander among them. The count
form has one integer ``z[k, m]`` in ``[0, n_k]`` per kind and usable municipality, and the
assignment row of kind k asks for ``n_k`` households; capacity and fill rows are linear in the
counts (the fill row's ``min(size, target)`` coefficient too: it is exact for any number of whole
households), so the count MIP has exactly the plans of the household MIP, up to which look-alike
household goes where.

Only for soft-objective MIPs without uncoupled persons, budgets or side constraints (the MIPs
that close the gap on small fill-balance batches: the kinds are found by comparing the dense
rows of every household); :func:`count_mip` returns None otherwise, and when no two households
are alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from coupler.engine.base import MipProblem
from coupler.engine.mip import build_mip
from coupler.model import CouplingModel


@dataclass(frozen=True, eq=False)
class Kinds:
    """The kinds of a model's households."""

    #: One representative household per kind (the lowest index), in kind order.
    first: np.ndarray
    #: Kind per household.
    kind: np.ndarray
    #: Households per kind.
    count: np.ndarray


def kinds(model: CouplingModel) -> Kinds:
    """Group the households that nothing in ``model`` tells apart."""
    key = np.hstack(
        [
            model.size[:, None].astype(np.float64),
            model.broken_weight[:, None].astype(np.float64),
            model.pinned[:, None].astype(np.float64),
            model.is_large[:, None].astype(np.float64),
            model.value,
            model.forbidden.astype(np.float64),
            model.breaks.astype(np.float64),
        ]
    )
    _, first, kind, count = np.unique(
        key, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    return Kinds(first.astype(np.int64), kind.ravel().astype(np.int64), count.astype(np.int64))


def count_columns(model: CouplingModel, keep: np.ndarray, found: Kinds | None = None) -> int:
    """How many integer columns the count MIP over ``keep`` has (kinds x municipalities where a
    household of the kind is kept; breaking pairs left out, as the engine leaves them out)."""
    found = found or kinds(model)
    kept = np.zeros((len(found.first), model.n_municipalities), dtype=bool)
    np.logical_or.at(kept, found.kind, keep & ~model.breaks)
    return int(kept.sum())


@dataclass(frozen=True, eq=False)
class CountMip:
    """A count MIP (see the module docstring) and how to read its plans back."""

    problem: MipProblem
    kinds: Kinds
    pair_k: np.ndarray  # kind per count column
    pair_m: np.ndarray  # municipality per count column
    start: np.ndarray  # the plan it was started from
    n_municipalities: int

    def assignment(self, x: np.ndarray) -> np.ndarray:
        """The plan of an integral solution: per kind, households already at a municipality the
        counts keep stay there (the first by index); the others fill the remaining places in
        index order, municipalities ascending. Counts that do not add up leave those households
        out (-1)."""
        kind, start = self.kinds.kind, self.start
        n = len(kind)
        z = np.zeros((len(self.kinds.count), self.n_municipalities), dtype=np.int64)
        z[self.pair_k, self.pair_m] = np.rint(x[: len(self.pair_k)]).astype(np.int64)
        # Rank of each household among those of its kind at its start municipality.
        order = np.lexsort((np.arange(n), start, kind))
        k_s, m_s = kind[order], start[order]
        new_group = np.r_[True, (k_s[1:] != k_s[:-1]) | (m_s[1:] != m_s[:-1])]
        first = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
        stay = np.zeros(n, dtype=bool)
        stay[order] = np.arange(n) - first < z[k_s, m_s]
        out = np.where(stay, start, -1)
        np.subtract.at(z, (kind[stay], start[stay]), 1)
        place_k, place_m = np.nonzero(z > 0)  # kind, then municipality ascending
        many = z[place_k, place_m]
        place_k, place_m = np.repeat(place_k, many), np.repeat(place_m, many)
        rest = np.flatnonzero(~stay)
        rest = rest[np.argsort(kind[rest], kind="stable")]
        if len(rest) == len(place_k) and (kind[rest] == place_k).all():
            out[rest] = place_m
        return out


def count_mip(
    model: CouplingModel,
    keep: np.ndarray,
    start: np.ndarray,
    found: Kinds | None = None,
) -> CountMip | None:
    """The count MIP over the pairs ``keep`` (bool per household and municipality; a kind keeps a
    municipality when any of its households does), warm-started from ``start`` (a plan coupling
    everybody within ``keep``), maximising the soft score less the fill shortfall.

    None when the model has side constraints, when ``start`` leaves somebody out or when no two
    households are alike (the household MIP is then the same model).
    """
    if model.has_side_constraints or (start < 0).any():
        return None
    found = found or kinds(model)
    if len(found.first) == model.n_households:
        return None
    n_k, n_m = len(found.first), model.n_municipalities
    kept = np.zeros((n_k, n_m), dtype=bool)
    np.logical_or.at(kept, found.kind, keep)
    pk, pm = np.nonzero(kept)
    problem, layout = build_mip(model, found.first[pk], pm, objective="soft", allow_uncoupled=False)
    n_x = layout.n_x
    # Assignment rows come first, one per representative in index order (build_mip's free
    # households): each asks for all households of its kind.
    free_kind = found.kind[layout.households]
    row_lo = problem.row_lo.copy()
    row_hi = problem.row_hi.copy()
    row_lo[: len(free_kind)] = found.count[free_kind]
    row_hi[: len(free_kind)] = found.count[free_kind]
    col_hi = problem.col_hi.copy()
    col_hi[:n_x] = found.count[pk]
    z = np.zeros((n_k, n_m))
    np.add.at(z, (found.kind, start), 1.0)
    x0 = np.zeros(problem.n_cols)
    x0[:n_x] = z[pk, pm]
    if x0[:n_x].sum() < len(start):
        return None  # start uses a pair not kept
    assigned = np.bincount(start, weights=model.size.astype(np.float64), minlength=n_m)
    x0[n_x:] = np.maximum(model.target - assigned, 0.0)[: problem.n_cols - n_x]
    problem = dataclasses.replace(problem, row_lo=row_lo, row_hi=row_hi, col_hi=col_hi, start=x0)
    return CountMip(problem, found, pk, pm, np.asarray(start, dtype=np.int64).copy(), n_m)
