"""The Dantzig–Wolfe bound: the best bound one knapsack per municipality can give.

The Lagrangian bound of :mod:`coupler.engine.lagrange` holds for any multipliers ``u`` (one per
household); the best of them is the optimum of the *master LP*, whose columns are the knapsacks
themselves. A *pattern* p of municipality m is a set of whole households that fits its capacity;
it is worth ``c_p = sum_{h in p} value[h, m] - fill * max(target[m] - persons(p), 0)``::

    max  sum_p c_p z_p
    s.t. sum_{p contains h} z_p = 1     for every household h       (duals u[h])
         sum_{p of m} z_p = 1           for every municipality m   (duals mu[m]; the empty
                                                                    pattern is one of them)
         z >= 0

Every plan with no broken and no uncoupled persons is one pattern per municipality, so the LP's
optimum bounds the plan's ``soft - fill * shortfall`` (side constraints only remove plans). It
sees whole households filling the targets, which the transportation relaxation does not
(monthly batch, seed 0: 3,030.64 against the relaxation's 3,032.17; a plan of 3,029.85 exists).

Column generation: the master LP over the patterns found so far gives duals ``u``; the best
pattern per municipality at ``u`` is one knapsack each (:func:`~coupler.engine.lagrange.knapsacks`)
and enters when it pays against the duals. Whatever the number of rounds, ``L(u)`` at every
priced ``u`` is a valid bound (Lagrangian duality), so the bound returned is the least of them.

Plain column generation is slow here: the first master LPs are degenerate and their duals
jump. The duals are therefore kept in a box around a centre (*boxstep*, Marsten et al.): two
extra columns per household let a row be over- or under-covered at a price ``centre -/+
width``, which bounds its dual to that range. When no pattern pays any more and no extra column
is used, the box holds the master's optimum; when extra columns are used, the centre moves to
the best multipliers so far and the search goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import highspy
import numpy as np

from coupler.engine.highs import new_highs
from coupler.engine.lagrange import knapsacks
from coupler.model import CouplingModel

#: Half the width of the box around the centre, per household (objective units).
BOX = 0.02
#: A pattern enters when it pays more than this against the duals.
TOLERANCE = 1e-7


class DWBound(NamedTuple):
    """What :func:`dw_bound` returns."""

    #: The least Lagrangian bound found (``inf`` when the batch has no pattern for a household).
    bound: float
    #: Restricted master LPs solved.
    rounds: int
    #: Whether the column generation ended (no pattern pays, the box holds the optimum): the
    #: bound is then the master LP's optimum, up to tolerances.
    converged: bool
    #: The multipliers (one per household) at which ``bound`` was found.
    multipliers: np.ndarray


def dw_bound(
    model: CouplingModel,
    plan: np.ndarray,
    multipliers: np.ndarray,
    *,
    max_rounds: int,
    deadline: float = np.inf,
    say: Callable[[str], None] = lambda _: None,
) -> DWBound:
    """The Dantzig–Wolfe bound on ``soft - fill * shortfall`` over plans with no broken and no
    uncoupled persons, by at most ``max_rounds`` master LPs (a work limit: the same bound on
    every machine) and not past ``deadline`` (a safety net).

    ``plan``: a plan that couples everybody without breaking a criterion (its patterns make the
    first master LP feasible). ``multipliers``: one per household to start from (e.g. the
    transportation relaxation's prices, :func:`~coupler.engine.lagrange.flow_multipliers`).
    """
    usable = ~model.forbidden & ~model.breaks
    n_m = model.n_municipalities
    if not usable.any(axis=1).all():
        return DWBound(float("inf"), 0, False, np.asarray(multipliers, dtype=np.float64))
    master = _Master(model)
    for m in range(n_m):
        master.add(m, np.zeros(0, dtype=np.int64))
        master.add(m, np.flatnonzero(plan == m))
    centre = np.asarray(multipliers, dtype=np.float64).copy()
    best, _, patterns = knapsacks(model, centre, usable, patterns=True)
    best_u = centre.copy()
    assert patterns is not None
    for m in range(n_m):
        master.add(m, patterns[m])
    master.box(centre, BOX)
    rounds = 0
    converged = False
    while rounds < max_rounds and time.perf_counter() < deadline:
        solved = master.solve()
        rounds += 1
        if solved is None:
            break
        lp, u, mu, boxed = solved
        value, _, patterns = knapsacks(model, u, usable, patterns=True)
        assert patterns is not None
        if value < best:
            best, best_u = value, u.copy()
        added = 0
        for m in range(n_m):
            p = patterns[m]
            if master.cost(m, p) - float(u[p].sum()) - mu[m] > TOLERANCE:
                added += master.add(m, p)
        if rounds % 10 == 0 or added == 0:
            say(f"  Dantzig-Wolfe round {rounds}: master {lp:,.4f}, bound {best:,.4f}")
        if added == 0:
            if boxed <= 1e-9:
                converged = True
                break
            centre = best_u.copy()
            master.box(centre, BOX)
    return DWBound(float(best), rounds, converged, best_u)


class _Master:
    """The restricted master LP in HiGHS: columns are added and the LP re-solved from its last
    basis. Rows: one per household (= 1), then one per municipality (= 1)."""

    def __init__(self, model: CouplingModel) -> None:
        self.model = model
        self.n_h = model.n_households
        n_rows = self.n_h + model.n_municipalities
        h = new_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        empty = np.zeros(0, dtype=np.int32)
        h.addRows(n_rows, np.ones(n_rows), np.ones(n_rows), 0, empty, empty, np.zeros(0))
        # The box: per household a column covering its row (+1) and one uncovering it (-1).
        rows = np.repeat(np.arange(self.n_h, dtype=np.int32), 2)
        starts = np.arange(2 * self.n_h, dtype=np.int32)
        signs = np.tile([1.0, -1.0], self.n_h)
        h.addCols(
            2 * self.n_h,
            np.zeros(2 * self.n_h),
            np.zeros(2 * self.n_h),
            np.full(2 * self.n_h, highspy.kHighsInf),
            2 * self.n_h,
            starts,
            rows,
            signs,
        )
        self.h = h
        self.seen: set[tuple[int, bytes]] = set()

    def cost(self, m: int, members: np.ndarray) -> float:
        """What pattern ``members`` at municipality m is worth."""
        md = self.model
        persons = float(md.size[members].sum())
        short = max(float(md.target[m]) - persons, 0.0)
        return float(md.value[members, m].sum()) - float(md.fill_weight) * short

    def add(self, m: int, members: np.ndarray) -> int:
        """Add a pattern once (1), or nothing when it is there already or does not fit (0)."""
        members = np.sort(np.asarray(members, dtype=np.int64))
        key = (m, members.tobytes())
        if key in self.seen or self.model.size[members].sum() > self.model.cap[m]:
            return 0
        self.seen.add(key)
        idx = np.concatenate([members, [self.n_h + m]]).astype(np.int32)
        self.h.addCol(
            self.cost(m, members),
            0.0,
            highspy.kHighsInf,
            len(idx),
            idx,
            np.ones(len(idx)),
        )
        return 1

    def box(self, centre: np.ndarray, width: float) -> None:
        """Keep the household rows' duals within ``centre +/- width``."""
        cost = np.empty(2 * self.n_h)
        cost[0::2] = centre - width  # (reduced cost <= 0) u[h] >= centre - width
        cost[1::2] = -(centre + width)  # u[h] <= centre + width
        idx = np.arange(2 * self.n_h, dtype=np.int32)
        self.h.changeColsCost(len(idx), idx, cost)

    def solve(self) -> tuple[float, np.ndarray, np.ndarray, float] | None:
        """``(objective, household duals, municipality duals, box columns used)``, or None when
        HiGHS did not prove the LP optimal."""
        self.h.run()
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        sol = self.h.getSolution()
        y = np.array(sol.row_dual, dtype=np.float64)
        boxed = float(np.abs(np.array(sol.col_value[: 2 * self.n_h])).sum())
        objective = float(self.h.getInfo().objective_function_value)
        return objective, y[: self.n_h], y[self.n_h :], boxed
