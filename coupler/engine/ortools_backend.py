"""OR-tools backend: SCIP through OR-tools' model builder.

Why SCIP and not CP-SAT: coupler's model mixes integer columns with continuous shortfall columns
and fractional coefficients. CP-SAT needs integer coefficients and has no continuous columns, so
it would solve a scaled approximation. SCIP solves the model as it is and reports an exact dual
bound.

Why the model builder: ``ModelBuilderHelper.fill_model_from_sparse_data`` takes the bounds, the
objective and the CSR matrix as arrays in one call. Only integrality (and the warm-start hint)
need one C++ call per column; no Python object is made per variable or per term.
"""

from __future__ import annotations

import time
from typing import Any, cast

import numpy as np
import scipy.sparse as sp
from ortools.linear_solver.python import model_builder_helper as mbh

from coupler.engine.base import MipProblem, MipSolution
from coupler.result import Status

__all__ = ["OrtoolsBackend"]

_SOLVER = "scip"
_SEED_MODULUS = 2_147_483_647  # SCIP's randomseedshift is a C int
_NATIVE = mbh.SolveStatus
_ERRORS = {
    _NATIVE.ABNORMAL,
    _NATIVE.MODEL_INVALID,
    _NATIVE.INVALID_SOLVER_PARAMETERS,
    _NATIVE.SOLVER_TYPE_UNAVAILABLE,
    _NATIVE.INCOMPATIBLE_OPTIONS,
}


class OrtoolsBackend:
    """Solve a :class:`MipProblem` with SCIP via OR-tools (``model_builder``).

    ``time_limit`` and ``gap`` (SCIP ``limits/gap``) are honoured, ``seed`` sets SCIP's
    ``randomization/randomseedshift``, and ``problem.start`` becomes a solution hint. SCIP as
    bundled with OR-tools is single-threaded, so ``threads`` is accepted and ignored.
    """

    name = "ortools"

    @staticmethod
    def available() -> bool:
        """Whether this OR-tools build includes SCIP."""
        return bool(mbh.ModelSolverHelper(_SOLVER).solver_is_supported())

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
            Relative gap at which SCIP may stop and report optimal.
        seed
            Random seed shift for SCIP (taken modulo ``2**31 - 1``).
        threads
            Ignored (SCIP runs on one thread).
        max_nodes
            At most this many branch-and-bound nodes (SCIP's ``limits/nodes``); None for no
            limit.
        heuristics
            Ignored (SCIP runs its heuristics).

        Returns
        -------
        MipSolution
            ``objective`` is ``c @ x + offset`` recomputed from ``x``; ``bound`` is SCIP's dual
            (upper) bound plus the offset, or ``inf`` when unknown.
        """
        started = time.perf_counter()
        model = mbh.ModelBuilderHelper()
        # fill_model_from_sparse_data wants float64 CSR; this copies only when it must, and
        # the problem's own matrix is only read.
        A = sp.csr_matrix(problem.A, dtype=np.float64)
        # cast: OR-tools' stubs spell the array type wrongly (ndarray[float64, ...]).
        cast(Any, model).fill_model_from_sparse_data(
            np.asarray(problem.col_lo, dtype=np.float64),
            np.asarray(problem.col_hi, dtype=np.float64),
            np.asarray(problem.c, dtype=np.float64),
            np.asarray(problem.row_lo, dtype=np.float64),
            np.asarray(problem.row_hi, dtype=np.float64),
            A,
        )
        for j in np.flatnonzero(problem.integer).tolist():
            model.set_var_integrality(j, True)
        model.set_maximize(True)
        if problem.start is not None:
            # A complete hint: SCIP then checks it as a full solution, not a partial one.
            for j, v in enumerate(np.asarray(problem.start, dtype=np.float64).tolist()):
                model.add_hint(j, v)

        solver = mbh.ModelSolverHelper(_SOLVER)
        solver.enable_output(False)
        if np.isfinite(time_limit):
            solver.set_time_limit_in_seconds(float(time_limit))
        solver.set_solver_specific_parameters(
            f"limits/gap = {float(gap)!r}\n"
            f"randomization/randomseedshift = {int(seed) % _SEED_MODULUS}\n"
            + (f"limits/nodes = {int(max_nodes)}\n" if max_nodes is not None else "")
        )
        solver.solve(model)
        native_status = solver.status()
        native = native_status.name
        has_plan = bool(solver.has_solution())

        if native_status == _NATIVE.OPTIMAL and has_plan:
            status = Status.OPTIMAL
        elif native_status in (_NATIVE.FEASIBLE, _NATIVE.NOT_SOLVED, _NATIVE.CANCELLED_BY_USER):
            status = Status.FEASIBLE if has_plan else Status.UNKNOWN
        elif native_status == _NATIVE.INFEASIBLE:
            status = Status.INFEASIBLE
        elif native_status in _ERRORS:
            status = Status.ERROR
        else:
            status = Status.UNKNOWN

        if status not in (Status.OPTIMAL, Status.FEASIBLE):
            return MipSolution(
                status=status,
                x=None,
                objective=float("nan"),
                bound=float("nan") if status is Status.INFEASIBLE else float("inf"),
                seconds=time.perf_counter() - started,
                backend=OrtoolsBackend.name,
                native_status=native,
            )

        x = np.array(solver.variable_values(), dtype=np.float64)
        integer = np.asarray(problem.integer, dtype=bool)
        x[integer] = np.round(x[integer])
        x = np.clip(x, problem.col_lo, problem.col_hi)
        objective = float(problem.c @ x + problem.offset)
        bound = float(solver.best_objective_bound()) + problem.offset
        if np.isnan(bound):
            bound = float("inf")
        # Any valid upper bound is >= the value of a feasible plan; clamp tolerance noise.
        bound = max(bound, objective)
        return MipSolution(
            status=status,
            x=x,
            objective=objective,
            bound=bound,
            seconds=time.perf_counter() - started,
            backend=OrtoolsBackend.name,
            native_status=native,
            # The model builder does not say which limit stopped SCIP: a stop at the clock's
            # end is the clock.
            hit_time_limit=status is not Status.OPTIMAL
            and time.perf_counter() - started >= 0.95 * time_limit,
        )
