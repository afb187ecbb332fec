"""HiGHS backend: the whole model goes to highspy in one array call.

The CSR arrays of :class:`~coupler.engine.base.MipProblem` are handed to ``Highs.passModel`` as
they are (row-wise format), so building the model costs no Python work per variable.
"""

from __future__ import annotations

import threading
import time

import highspy
import numpy as np
import scipy.sparse as sp

from coupler.engine.base import MipProblem, MipSolution
from coupler.result import Status

__all__ = ["HighsBackend", "WarmLP"]

_MODEL_STATUS = highspy.HighsModelStatus
# Statuses where HiGHS stopped at a limit: a plan, if any, is feasible but not proven optimal.
# Looked up by name: not every highspy version has every member (kHighsInterrupt is new).
_STOPPED = {
    getattr(_MODEL_STATUS, name)
    for name in (
        "kTimeLimit",
        "kIterationLimit",
        "kSolutionLimit",
        "kInterrupt",
        "kHighsInterrupt",
        "kObjectiveBound",
        "kObjectiveTarget",
        "kMemoryLimit",
    )
    if hasattr(_MODEL_STATUS, name)
}
_ERRORS = {
    _MODEL_STATUS.kLoadError,
    _MODEL_STATUS.kModelError,
    _MODEL_STATUS.kPresolveError,
    _MODEL_STATUS.kSolveError,
    _MODEL_STATUS.kPostsolveError,
}
_ROWWISE = 2  # HiGHS MatrixFormat::kRowwise
_MAXIMIZE = -1  # HiGHS ObjSense::kMaximize
_SEED_MODULUS = 2_147_483_647  # random_seed must fit in a C int


#: File descriptor 1 is shared by every thread: one ``new_highs`` at a time (two at once would
#: each save the other's /dev/null and leave stdout muted for good).
_MUTE = threading.Lock()


def new_highs() -> highspy.Highs:
    """A fresh ``Highs`` object, without the banner HiGHS prints on stdout when it is created.

    The banner is written by C++ straight to file descriptor 1, so it is muted at that level;
    coupler's own output (plan tables piped to stdout, JSON) stays clean. Safe to call from
    several threads at once.
    """
    import os
    import sys

    with _MUTE:
        sys.stdout.flush()
        try:
            saved = os.dup(1)
        except OSError:  # no real stdout (e.g. some embedded interpreters)
            return highspy.Highs()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            return highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)


class HighsBackend:
    """Solve a :class:`MipProblem` with HiGHS (branch and cut; simplex for pure LPs).

    Options set: ``time_limit``, ``mip_rel_gap``, ``random_seed``, ``threads``, ``mip_max_nodes``
    (when ``max_nodes`` is given), presolve on,
    output off. ``problem.start`` is passed with ``setSolution`` as a warm start.
    """

    name = "highs"

    @staticmethod
    def available() -> bool:
        """HiGHS ships inside the ``highspy`` wheel, so it is there when this module imports."""
        return True

    def solve(
        self,
        problem: MipProblem,
        *,
        time_limit: float,
        gap: float,
        seed: int,
        threads: int = 1,
        max_nodes: int | None = None,
        heuristics: bool = True,
    ) -> MipSolution:
        """Maximise ``problem``; never modifies it.

        Parameters
        ----------
        problem
            The MIP (or LP when no column is integer).
        time_limit
            Wall-clock seconds; ``inf`` for none.
        gap
            Relative gap at which HiGHS may stop and report optimal.
        seed
            Random seed (taken modulo ``2**31 - 1``).
        threads
            Threads HiGHS may use.
        max_nodes
            At most this many branch-and-bound nodes (``mip_max_nodes``); None for no limit.
        heuristics
            False: no primal heuristics (RINS, RENS, feasibility jump and the
            others), for MIPs whose start is already good and that should prove it.

        Returns
        -------
        MipSolution
            ``objective`` is ``c @ x + offset`` recomputed from ``x``; ``bound`` is HiGHS's dual
            bound plus the offset (upper bound, since we maximise), or ``inf`` when unknown.
        """
        started = time.perf_counter()
        h = new_highs()
        for option, value in (
            ("output_flag", False),
            ("presolve", "on"),
            ("time_limit", float(time_limit)),
            ("mip_rel_gap", float(gap)),
            ("random_seed", int(seed) % _SEED_MODULUS),
            ("threads", int(threads)),
        ):
            h.setOptionValue(option, value)
        if max_nodes is not None:
            h.setOptionValue("mip_max_nodes", int(max_nodes))
        if not heuristics:
            # With a good start, HiGHS's sub-MIP heuristics cost most of the time and find
            # nothing (small tier, proving MIP: 17 s, of which 13.7 s in sub-MIPs; without 3.9 s).
            h.setOptionValue("mip_heuristic_effort", 0.0)
            for option in _HEURISTICS:
                h.setOptionValue(option, False)

        if not _load(h, problem):
            return _no_plan(Status.ERROR, "passModel error", started)
        if problem.start is not None:
            start = np.asarray(problem.start, dtype=np.float64)
            h.setSolution(problem.n_cols, np.arange(problem.n_cols, dtype=np.int32), start)
        if problem.n_cols == 0:
            return _no_columns(problem, started)
        return _run(h, problem, started)


class WarmLP:
    """An LP kept in HiGHS between solves, for column generation: columns are added to it, and
    each solve starts from the last one's basis (dual simplex need not start over).

    Row duals and the objective are read as :meth:`HighsBackend.solve` reads them; the columns are
    in the order they were added.
    """

    def __init__(self, problem: MipProblem) -> None:
        if np.asarray(problem.integer, dtype=bool).any():
            raise ValueError("WarmLP takes an LP (no integer columns)")
        self.problem = problem
        self._h = new_highs()
        for option, value in (("output_flag", False), ("presolve", "on"), ("threads", 1)):
            self._h.setOptionValue(option, value)
        self._loaded = _load(self._h, problem)

    def add_columns(
        self, c: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray, columns: sp.csc_matrix
    ) -> None:
        """Append columns: objective ``c``, bounds, and their coefficients (one column of
        ``columns`` per new column, a row for every row of the LP)."""
        cols = sp.csc_matrix(columns)
        p = self.problem
        self.problem = MipProblem(
            c=np.concatenate([p.c, c]),
            A=sp.hstack([p.A, cols], format="csr"),
            row_lo=p.row_lo,
            row_hi=p.row_hi,
            col_lo=np.concatenate([p.col_lo, col_lo]),
            col_hi=np.concatenate([p.col_hi, col_hi]),
            integer=np.zeros(len(p.c) + len(c), dtype=bool),
            offset=p.offset,
        )
        if self._loaded and len(c):
            self._h.addCols(
                len(c),
                np.asarray(c, dtype=np.float64),
                np.asarray(col_lo, dtype=np.float64),
                np.asarray(col_hi, dtype=np.float64),
                int(cols.nnz),
                np.asarray(cols.indptr[:-1], dtype=np.int32),
                np.asarray(cols.indices, dtype=np.int32),
                np.asarray(cols.data, dtype=np.float64),
            )

    def solve(self, time_limit: float) -> MipSolution:
        """Solve the LP as it stands (optimal: with its row and column duals)."""
        started = time.perf_counter()
        if not self._loaded:
            return _no_plan(Status.ERROR, "passModel error", started)
        if self.problem.n_cols == 0:
            return _no_columns(self.problem, started)
        self._h.setOptionValue("time_limit", float(time_limit))
        return _run(self._h, self.problem, started)


def _load(h: highspy.Highs, problem: MipProblem) -> bool:
    """Pass ``problem`` to ``h`` (maximised, row-wise); False when HiGHS refused it."""
    A = problem.A.tocsr()
    integer = np.asarray(problem.integer, dtype=bool)
    status = h.passModel(
        problem.n_cols,
        problem.n_rows,
        int(A.nnz),
        _ROWWISE,
        _MAXIMIZE,
        0.0,  # the offset is added back below, the same way in every backend
        np.asarray(problem.c, dtype=np.float64),
        np.asarray(problem.col_lo, dtype=np.float64),
        np.asarray(problem.col_hi, dtype=np.float64),
        np.asarray(problem.row_lo, dtype=np.float64),
        np.asarray(problem.row_hi, dtype=np.float64),
        np.asarray(A.indptr[:-1], dtype=np.int32),
        np.asarray(A.indices, dtype=np.int32),
        np.asarray(A.data, dtype=np.float64),
        integer.astype(np.int32),
    )
    return bool(status != highspy.HighsStatus.kError)


def _run(h: highspy.Highs, problem: MipProblem, started: float) -> MipSolution:
    """Run ``h`` (which holds ``problem``) and read its answer as a :class:`MipSolution`."""
    is_mip = bool(np.asarray(problem.integer, dtype=bool).any())
    if h.run() == highspy.HighsStatus.kError and h.getModelStatus() == _MODEL_STATUS.kNotset:
        # HiGHS keeps one process-wide thread pool sized by the first solve; a later solve
        # asking for another thread count is refused until that pool is reset.
        highspy.Highs.resetGlobalScheduler(True)
        h.run()
    model_status = h.getModelStatus()
    native = h.modelStatusToString(model_status)
    info = h.getInfo()
    has_plan = info.primal_solution_status == 2  # kSolutionStatusFeasible

    if model_status == _MODEL_STATUS.kOptimal and has_plan:
        status_out = Status.OPTIMAL
    elif model_status in _STOPPED:
        status_out = Status.FEASIBLE if has_plan else Status.UNKNOWN
    elif model_status == _MODEL_STATUS.kInfeasible:
        return _no_plan(Status.INFEASIBLE, native, started)
    elif model_status == _MODEL_STATUS.kUnboundedOrInfeasible and _all_bounded(problem):
        # With every column bounded the problem cannot be unbounded.
        return _no_plan(Status.INFEASIBLE, native, started)
    elif model_status in _ERRORS:
        return _no_plan(Status.ERROR, native, started)
    else:
        return _no_plan(Status.UNKNOWN, native, started)
    if not has_plan:
        return _no_plan(
            status_out, native, started, hit_time_limit=model_status == _MODEL_STATUS.kTimeLimit
        )

    x = _polish(np.array(h.getSolution().col_value, dtype=np.float64), problem)
    objective = float(problem.c @ x + problem.offset)
    reduced_cost = row_dual = None
    if not is_mip:
        bound = objective if status_out is Status.OPTIMAL else float("inf")
        if status_out is Status.OPTIMAL:
            reduced_cost = np.array(h.getSolution().col_dual, dtype=np.float64)
            row_dual = np.array(h.getSolution().row_dual, dtype=np.float64)
    else:
        bound = float(info.mip_dual_bound) + problem.offset
        if np.isnan(bound):
            bound = float("inf")
    # Any valid upper bound is >= the value of a feasible plan; clamp tolerance noise.
    bound = max(bound, objective)
    return MipSolution(
        status=status_out,
        x=x,
        objective=objective,
        bound=bound,
        seconds=time.perf_counter() - started,
        backend=HighsBackend.name,
        native_status=native,
        info={"nodes": float(info.mip_node_count), "native_gap": float(info.mip_gap)},
        hit_time_limit=model_status == _MODEL_STATUS.kTimeLimit,
        reduced_cost=reduced_cost,
        row_dual=row_dual,
    )


#: HiGHS's primal heuristics, switched off for proving MIPs.
_HEURISTICS = (
    "mip_heuristic_run_rins",
    "mip_heuristic_run_rens",
    "mip_heuristic_run_root_reduced_cost",
    "mip_heuristic_run_feasibility_jump",
    "mip_heuristic_run_zi_round",
    "mip_heuristic_run_shifting",
)


def _polish(x: np.ndarray, problem: MipProblem) -> np.ndarray:
    """Round integer columns (HiGHS returns e.g. 0.9999999) and clip to the column bounds."""
    integer = np.asarray(problem.integer, dtype=bool)
    x[integer] = np.round(x[integer])
    return np.clip(x, problem.col_lo, problem.col_hi)


def _no_columns(problem: MipProblem, started: float) -> MipSolution:
    """HiGHS calls a model without columns "Empty"; it is feasible iff every row admits 0."""
    if np.any(problem.row_lo > 0) or np.any(problem.row_hi < 0):
        return _no_plan(Status.INFEASIBLE, "no columns", started)
    return MipSolution(
        status=Status.OPTIMAL,
        x=np.zeros(0),
        objective=float(problem.offset),
        bound=float(problem.offset),
        seconds=time.perf_counter() - started,
        backend=HighsBackend.name,
        native_status="no columns",
    )


def _all_bounded(problem: MipProblem) -> bool:
    return bool(np.isfinite(problem.col_lo).all() and np.isfinite(problem.col_hi).all())


def _no_plan(
    status: Status, native: str, started: float, *, hit_time_limit: bool = False
) -> MipSolution:
    bound = float("nan") if status is Status.INFEASIBLE else float("inf")
    return MipSolution(
        status=status,
        x=None,
        objective=float("nan"),
        bound=bound,
        seconds=time.perf_counter() - started,
        backend=HighsBackend.name,
        native_status=native,
        hit_time_limit=hit_time_limit,
    )
