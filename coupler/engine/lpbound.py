"""The LP with whole-household fill rows and every side row, by column generation.

Without side constraints it is the engine's *tight LP* (``_tight_lp`` in
:mod:`coupler.engine.solve`): the fill rows alone already bound small fill-balance batches far
better than the transportation relaxation.

Side constraints (province and region bands, pooled quotas, dwelling capacities) enter the
transportation relaxation only through prices (``_side_prices`` in :mod:`coupler.engine.solve`),
and the Lagrangian bound those prices give stays well above the LP with the side rows written
out (side tier, seed 0: 3,014.9 against 3,003.5). That LP over every usable pair has about
700,000 columns at 4,700 persons (30 s in HiGHS); most of them never matter.

:func:`lp_bound` builds the full LP once (:func:`~coupler.engine.mip.build_mip`, so it has the
same rows as every MIP of the engine), solves it over a few pairs per household, prices every
pair with the duals (``c - A^T y``, one sparse product) and adds the pairs that pay, until none
does. Whatever the number of rounds, the bound it returns is weak duality at the last duals:

    c x = y^T A x + (c - A^T y) x
        <= sum_r (y_r * row_hi_r if y_r > 0 else y_r * row_lo_r) + sum_j max(0, rc_j) * col_hi_j

for every ``x`` in the full LP, so it is valid whether or not the pricing converged, and equals
the LP's optimum when it did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from coupler.engine.base import MipBackend, MipProblem
from coupler.engine.highs import WarmLP
from coupler.engine.mip import build_mip
from coupler.model import CouplingModel
from coupler.result import Status

#: Pairs per household in the first restricted LP (besides the given ones), the cheapest first.
FIRST_PAIRS = 6
#: Pairs added per household and round, the best reduced costs first.
ADD_PAIRS = 4
#: At most this many restricted LPs.
MAX_ROUNDS = 12
#: A reduced cost below this counts as zero (HiGHS's dual feasibility tolerance is 1e-7).
TOLERANCE = 1e-7
#: Above this many usable pairs the full LP is not built (memory: about 0.6 kB a pair with its
#: transposed copy; 4,700 persons, 727,000 pairs: 430 MB peak in all).
MAX_PAIRS = 2_000_000


def lp_bound(
    model: CouplingModel,
    lp: MipBackend,
    start_h: np.ndarray,
    start_m: np.ndarray,
    order: np.ndarray,
    *,
    deadline: float,
    say: Callable[[str], None] = lambda _: None,
) -> LPBound:
    """A proven upper bound on every plan that couples every household, breaks nothing and
    meets every side row, and the reduced costs at its duals; ``inf`` (and None) when none was
    found in time or the batch has more than :data:`MAX_PAIRS` usable pairs.

    Parameters
    ----------
    lp
        An LP backend that returns row duals (HiGHS).
    start_h, start_m
        Pairs in the first restricted LP (the relaxation's arcs, the plan's pairs).
    order
        Per household, municipalities cheapest first (e.g. by the relaxation's reduced value);
        shape (households, k) with k >= :data:`FIRST_PAIRS`.
    deadline
        ``time.perf_counter()`` value after which no new restricted LP is started.
    """
    n_h, n_m = model.n_households, model.n_municipalities
    usable = ~model.forbidden & ~model.breaks
    if not usable.any(axis=1).all() or int(usable.sum()) > MAX_PAIRS:
        # A household with no usable pair needs other rows; very large batches, other memory.
        return LPBound(np.inf, None, None, None)
    ph, pm = np.nonzero(usable)
    problem, layout = build_mip(model, ph, pm, objective="soft", allow_uncoupled=False)
    n_x = layout.n_x
    # Column of pair (h, m) among the x columns (row-major, like np.nonzero): -1 if unusable.
    column = np.full(n_h * n_m, -1, dtype=np.int64)
    column[ph * n_m + pm] = np.arange(n_x)

    keep = np.zeros(problem.n_cols, dtype=bool)
    keep[n_x:] = True
    first = order[:, :FIRST_PAIRS]
    for h_idx, m_idx in ((start_h, start_m), (np.repeat(np.arange(n_h), first.shape[1]), first)):
        cols = column[np.asarray(h_idx) * n_m + np.asarray(m_idx).ravel()]
        keep[cols[cols >= 0]] = True

    A = problem.A.tocsc()
    at = A.T.tocsr()
    bound = np.inf
    rc = None
    side_y = None
    duals = None
    # HiGHS keeps the restricted LP between rounds: the added pairs start from the last basis
    # (Utrecht pooling variant, 4,700 persons: a round after the first 0.25 -> 0.07 s; the side LP
    # 1.7 -> 0.8 s).
    warm = WarmLP(_columns(problem, A, keep)) if lp.name == "highs" else None
    for rounds in range(1, MAX_ROUNDS + 1):
        if time.perf_counter() > deadline:
            break
        limit = max(1.0, deadline - time.perf_counter())
        if warm is not None:
            sol = warm.solve(limit)
        else:
            sol = lp.solve(_columns(problem, A, keep), time_limit=limit, gap=0.0, seed=0)
        if sol.status is not Status.OPTIMAL or sol.row_dual is None:
            break
        value, y = sol.objective, sol.row_dual
        # A dual of the wrong sign on a one-sided row (within the simplex's
        # tolerances) would make the bound infinite; weak duality holds for any duals
        # of the right signs, so such a dual counts as zero and the reduced costs follow.
        y = np.where(
            ((y > 0) & ~np.isfinite(problem.row_hi)) | ((y < 0) & ~np.isfinite(problem.row_lo)),
            0.0,
            y,
        )
        priced = problem.c - at @ y
        found = _dual_value(problem, y, priced)
        if found < bound:
            bound, rc, side_y = found, priced, y[layout.side_rows]
            duals = y[: len(layout.households)]
        paying = np.flatnonzero((priced[:n_x] > TOLERANCE) & ~keep[:n_x])
        say(
            f"  LP round {rounds}: {int(keep[:n_x].sum()):,} pairs, value "
            f"{value:,.4f}, bound {bound:,.4f}, {len(paying):,} pairs pay"
        )
        if len(paying) == 0:
            break
        # The best few per household.
        by_h = layout.pair_h[paying]
        ranked = paying[np.lexsort((-priced[paying], by_h))]
        h_sorted = layout.pair_h[ranked]
        first_of = np.searchsorted(h_sorted, h_sorted, side="left")
        added = ranked[np.arange(len(ranked)) - first_of < ADD_PAIRS]
        keep[added] = True
        if warm is not None:
            added = np.sort(added)
            warm.add_columns(
                problem.c[added], problem.col_lo[added], problem.col_hi[added], A[:, added]
            )
    if rc is None or side_y is None or duals is None:
        return LPBound(bound, None, None, None)
    # Maximisation: a pair whose reduced cost is r < 0 loses -r against the LP when used.
    reduced = np.full((n_h, n_m), np.inf)
    reduced[ph, pm] = np.maximum(-rc[:n_x], 0.0)
    # The side rows' share of each pair's reduced cost: what their duals charge for coupling
    # the household there (a band's price per person, a dwelling's per household).
    side_price = np.zeros((n_h, n_m))
    side_price[ph, pm] = -(A[layout.side_rows, :n_x].T @ side_y)
    # Every household has a usable pair, so the assignment rows are one per household in order.
    return LPBound(bound, reduced, side_price, duals)


def _columns(problem: MipProblem, A: sp.csc_matrix, keep: np.ndarray) -> MipProblem:
    """The restricted LP: ``problem`` over the columns ``keep`` marks, none of them integer."""
    return MipProblem(
        c=problem.c[keep],
        A=A[:, keep].tocsr(),
        row_lo=problem.row_lo,
        row_hi=problem.row_hi,
        col_lo=problem.col_lo[keep],
        col_hi=problem.col_hi[keep],
        integer=np.zeros(int(keep.sum()), dtype=bool),
        offset=problem.offset,
    )


class LPBound(NamedTuple):
    """What :func:`lp_bound` returns."""

    #: The proven bound (``inf``: none).
    bound: float
    #: Per pair, what coupling the household there costs against the bound's duals (>= 0; inf
    #: where unusable); None without duals.
    reduced: np.ndarray | None
    #: Per pair, the value the side rows' duals add to coupling the household there (0 where
    #: no side row counts it; added to the soft values, it prices the side rows into the
    #: transportation relaxation); None without duals.
    side_price: np.ndarray | None
    #: Per household, the dual of its assignment row at the bound's duals (multipliers for the
    #: Lagrangian bound with one knapsack per municipality); None without duals.
    duals: np.ndarray | None


def _dual_value(problem: MipProblem, y: np.ndarray, rc: np.ndarray) -> float:
    """Weak duality at row duals ``y`` (see the module docstring); ``inf`` when a dual points at
    an infinite side of its row or an unbounded column pays.

    Each column counts ``rc * col_hi`` where its reduced cost is positive and ``rc * col_lo``
    where negative. Columns without an upper bound (fill shortfalls) are in every restricted LP,
    so their reduced costs are at most HiGHS's tolerance there; up to :data:`TOLERANCE` they
    count as zero.
    """
    side = np.where(y > 0, problem.row_hi, problem.row_lo)
    active = y != 0
    if not np.isfinite(side[active]).all():
        return np.inf
    hi, lo = problem.col_hi, problem.col_lo
    up = rc > 0
    if (up & ~np.isfinite(hi) & (rc > TOLERANCE)).any():
        return np.inf
    down = rc < 0
    if (down & ~np.isfinite(lo) & (rc < -TOLERANCE)).any():
        return np.inf
    up &= np.isfinite(hi)
    down &= np.isfinite(lo)
    value = float(side[active] @ y[active])
    value += float(rc[up] @ hi[up]) + float(rc[down] @ lo[down])
    return value + problem.offset
