"""CBC backend: the plain PuLP model a user would write, kept as the reference baseline.

This is the one backend that builds the model with a Python loop per variable and per row, on
purpose: it is what coupler is measured against, and it writes readable models using
``problem.names``.

``problem.start`` is not passed to CBC: the binary PuLP bundles (CBC 2.10.3) returned a poor
warm start as "optimal" in 6 of 49 random tiny batches of look-alike households (ids, sizes and
an azc), so its proof, and the bound derived from it, were false
(``tests/test_backends.py::test_cbc_is_not_misled_by_a_poor_start``). Without the start every
answer there was right.

CBC run through PuLP does not report its dual bound. The bound is therefore derived: when CBC
proves optimality within ``gapRel`` it stops once ``bound - objective <= gapRel * max(|objective|,
|bound|)``, which gives the conservative bound used here. When CBC stops without proof the bound
is ``inf``.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pulp

from coupler.engine.base import MipProblem, MipSolution
from coupler.result import Status

__all__ = ["CbcBackend"]

_SEED_MODULUS = 2_147_483_646  # CBC's randomCbcSeed: 0 means "seed from the clock", so add 1
_ROW_TOL = 1e-9


class CbcBackend:
    """Solve a :class:`MipProblem` with CBC via ``pulp.PULP_CBC_CMD`` (the bundled binary).

    ``time_limit``, ``gap`` (``gapRel``), ``threads`` and ``seed`` (``randomCbcSeed``) are passed
    on; ``problem.start`` is not (see the module docstring).
    """

    name = "cbc"

    @staticmethod
    def available() -> bool:
        """Whether PuLP can find its CBC binary."""
        return bool(pulp.PULP_CBC_CMD(msg=False).available())

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
            Relative gap at which CBC may stop and report optimal.
        seed
            Random seed for CBC.
        threads
            Threads CBC may use.
        max_nodes
            At most this many branch-and-bound nodes (CBC's ``maxNodes``); None for no limit.
        heuristics
            Ignored (CBC runs its heuristics).

        Returns
        -------
        MipSolution
            ``objective`` is ``c @ x + offset`` recomputed from ``x``. ``bound`` is derived from
            the gap when CBC reports optimal and ``inf`` otherwise (see the module docstring).

        Raises
        ------
        pulp.PulpSolverError
            When the CBC binary itself fails.
        """
        started = time.perf_counter()
        c = np.asarray(problem.c, dtype=np.float64)
        A = problem.A.tocsr()
        integer = np.asarray(problem.integer, dtype=bool)

        # An empty row that excludes 0 makes the problem infeasible; PuLP cannot write it.
        row_len = np.diff(A.indptr)
        empty_bad = (row_len == 0) & ((problem.row_lo > _ROW_TOL) | (problem.row_hi < -_ROW_TOL))
        if empty_bad.any() or (problem.col_lo > problem.col_hi).any():
            return _no_plan(Status.INFEASIBLE, "infeasible before solving", started)

        lp = pulp.LpProblem("coupler", pulp.LpMaximize)
        names = _column_names(problem)
        # PuLP >= 3.3 attaches variables to the model; older PuLP only has LpVariable.
        new_var = getattr(lp, "add_variable", pulp.LpVariable)
        xs = []
        for j in range(problem.n_cols):
            lo, hi = float(problem.col_lo[j]), float(problem.col_hi[j])
            var = new_var(
                names[j],
                lowBound=lo if np.isfinite(lo) else None,
                upBound=hi if np.isfinite(hi) else None,
                cat=pulp.LpInteger if integer[j] else pulp.LpContinuous,
            )
            xs.append(var)
        lp += pulp.lpSum(float(c[j]) * xs[j] for j in np.flatnonzero(c)) + float(problem.offset)

        for i in range(problem.n_rows):
            lo, hi = float(problem.row_lo[i]), float(problem.row_hi[i])
            cols = A.indices[A.indptr[i] : A.indptr[i + 1]]
            vals = A.data[A.indptr[i] : A.indptr[i + 1]]
            if cols.size == 0:
                continue
            expr = pulp.lpSum(float(v) * xs[j] for j, v in zip(cols, vals, strict=True))
            if lo == hi:
                lp += expr == lo, f"r{i}"
                continue
            if np.isfinite(lo):
                lp += expr >= lo, f"r{i}_lo"
            if np.isfinite(hi):
                lp += expr <= hi, f"r{i}_hi"

        options = [f"randomCbcSeed {int(seed) % _SEED_MODULUS + 1}"]
        if max_nodes is not None:
            options.append(f"maxNodes {int(max_nodes)}")
        cmd = pulp.PULP_CBC_CMD(
            msg=False,
            timeLimit=float(time_limit) if np.isfinite(time_limit) else None,
            gapRel=float(gap),
            threads=int(threads),
            options=options,
        )
        lp.solve(cmd)
        native = f"{pulp.LpStatus[lp.status]}/{pulp.LpSolution.get(lp.sol_status, lp.sol_status)}"

        if lp.status == pulp.LpStatusOptimal and lp.sol_status == pulp.LpSolutionOptimal:
            status = Status.OPTIMAL
        elif lp.sol_status == pulp.LpSolutionIntegerFeasible:
            status = Status.FEASIBLE
        elif lp.status == pulp.LpStatusInfeasible:
            return _no_plan(Status.INFEASIBLE, native, started)
        else:
            return _no_plan(Status.UNKNOWN, native, started)

        x = np.array([v.varValue if v.varValue is not None else 0.0 for v in xs], dtype=float)
        x[integer] = np.round(x[integer])
        x = np.clip(x, problem.col_lo, problem.col_hi)
        objective = float(c @ x + problem.offset)
        if status is Status.OPTIMAL:
            if integer.any():
                # CBC stops when bound - obj <= gap * max(|obj|, |bound|); solve for bound.
                g = min(float(gap), 0.5)
                slack = g * abs(objective) / (1.0 - g)
                bound = objective + slack + 1e-9 * max(1.0, abs(objective))
            else:
                bound = objective
        else:
            bound = float("inf")
        return MipSolution(
            status=status,
            x=x,
            objective=objective,
            bound=bound,
            seconds=time.perf_counter() - started,
            backend=CbcBackend.name,
            native_status=native,
            # PuLP does not say which limit stopped CBC: a stop at the clock's end is the clock.
            hit_time_limit=status is not Status.OPTIMAL
            and time.perf_counter() - started >= 0.95 * time_limit,
        )


def _column_names(problem: MipProblem) -> list[str]:
    """Readable, unique, LP/MPS-safe column names: ``x{j}`` or ``x{j}_{name}``."""
    if problem.names is None or len(problem.names) != problem.n_cols:
        return [f"x{j}" for j in range(problem.n_cols)]
    return [f"x{j}_{re.sub(r'[^A-Za-z0-9_]', '_', n)}" for j, n in enumerate(problem.names)]


def _no_plan(status: Status, native: str, started: float) -> MipSolution:
    return MipSolution(
        status=status,
        x=None,
        objective=float("nan"),
        bound=float("nan") if status is Status.INFEASIBLE else float("inf"),
        seconds=time.perf_counter() - started,
        backend=CbcBackend.name,
        native_status=native,
    )
