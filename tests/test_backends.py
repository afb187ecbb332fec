"""Backend conformance suite: every backend solves the same tiny problems to the same optimum.

Like cvxpy's ``solver_test_helpers``: each case is a small :class:`MipProblem` whose optimum is
worked out by hand below. Feasibility of every returned plan is checked here, independently of
the solver.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from coupler.engine.backends import BACKENDS, available_backends, get_backend
from coupler.engine.base import MipProblem, MipSolution
from coupler.errors import CouplerError
from coupler.result import Status

INF = np.inf
TOL = 1e-6
SOLVE: dict[str, Any] = {"time_limit": 20.0, "gap": 0.0, "seed": 0}
BACKEND_NAMES = available_backends()


def mip(
    c: list[float],
    A: list[list[float]],
    row_lo: list[float],
    row_hi: list[float],
    col_lo: list[float],
    col_hi: list[float],
    integer: list[bool],
    offset: float = 0.0,
    start: list[float] | None = None,
) -> MipProblem:
    """A MipProblem from dense lists (tests only)."""
    n = len(c)
    return MipProblem(
        c=np.array(c, dtype=float),
        A=sp.csr_matrix(np.array(A, dtype=float).reshape(len(A), n)),
        row_lo=np.array(row_lo, dtype=float),
        row_hi=np.array(row_hi, dtype=float),
        col_lo=np.array(col_lo, dtype=float),
        col_hi=np.array(col_hi, dtype=float),
        integer=np.array(integer, dtype=bool),
        offset=offset,
        start=None if start is None else np.array(start, dtype=float),
    )


def assignment(
    sizes: list[int],
    capacity: list[int],
    value: np.ndarray,
    allowed: np.ndarray | None = None,
) -> tuple[MipProblem, list[tuple[int, int]]]:
    """coupler's shape: each household goes to exactly one allowed municipality, and the persons
    sent to a municipality stay within its capacity. Columns are the allowed (h, m) pairs only."""
    n_h, n_m = value.shape
    if allowed is None:
        allowed = np.ones((n_h, n_m), dtype=bool)
    hh, mm = np.nonzero(allowed)
    k = hh.size
    cols = np.arange(k)
    one_each = sp.csr_matrix((np.ones(k), (hh, cols)), shape=(n_h, k))
    persons = sp.csr_matrix((np.asarray(sizes, float)[hh], (mm, cols)), shape=(n_m, k))
    problem = MipProblem(
        c=value[hh, mm].astype(float),
        A=sp.vstack([one_each, persons]).tocsr(),
        row_lo=np.concatenate([np.ones(n_h), np.full(n_m, -INF)]),
        row_hi=np.concatenate([np.ones(n_h), np.asarray(capacity, float)]),
        col_lo=np.zeros(k),
        col_hi=np.ones(k),
        integer=np.ones(k, dtype=bool),
    )
    return problem, list(zip(hh.tolist(), mm.tolist(), strict=True))


@dataclass(frozen=True)
class Case:
    """A problem, its expected status and (when feasible) its known optimum."""

    name: str
    problem: MipProblem
    status: Status
    optimum: float = float("nan")


def _cases() -> list[Case]:
    knapsack = mip(
        c=[10, 13, 7, 8],
        A=[[5, 6, 3, 4]],
        row_lo=[-INF],
        row_hi=[10],
        col_lo=[0] * 4,
        col_hi=[1] * 4,
        integer=[True] * 4,
    )
    # Households of 1, 2 and 3 persons, two municipalities of 3 persons: the 3-person household
    # fills one alone, so either {h2}->m0 + {h0,h1}->m1 (6+1+2 = 9) or the mirror (6+4+5 = 15).
    couple, _ = assignment([1, 2, 3], [3, 3], np.array([[4, 1], [5, 2], [6, 6]]))
    return [
        # {1, 3}: weight 10, value 21; every three items weigh at least 12.
        Case("knapsack", knapsack, Status.OPTIMAL, 21.0),
        Case("assignment_capacity", couple, Status.OPTIMAL, 15.0),
        # y integer <= 4, s >= 0 shortfall with y - s <= 2.5: y = 4, s = 1.5 -> 20 - 2.25.
        Case(
            "mixed_integer_continuous",
            mip(
                c=[5, -1.5],
                A=[[1, -1]],
                row_lo=[-INF],
                row_hi=[2.5],
                col_lo=[0, 0],
                col_hi=[4, INF],
                integer=[True, False],
            ),
            Status.OPTIMAL,
            17.75,
        ),
        # 3a + 5b + 7c = 23 has integer points (6,1,0) (1,4,0) (2,2,1) (3,0,2): best is (3,0,2).
        Case(
            "equality",
            mip(
                c=[1, 2, 3.5],
                A=[[3, 5, 7]],
                row_lo=[23],
                row_hi=[23],
                col_lo=[0] * 3,
                col_hi=[10] * 3,
                integer=[True] * 3,
            ),
            Status.OPTIMAL,
            10.0,
        ),
        # 1 <= x + y <= 2 and -1 <= x - 2y <= 7 with x in [-3, 3], y in [-2, 4]:
        # x - y is best at x = 3, y = -2 (x + y = 1, x - 2y = 7).
        Case(
            "ranged_rows_negative_bounds",
            mip(
                c=[1, -1],
                A=[[1, 1], [1, -2]],
                row_lo=[1, -1],
                row_hi=[2, 7],
                col_lo=[-3, -2],
                col_hi=[3, 4],
                integer=[True, True],
            ),
            Status.OPTIMAL,
            5.0,
        ),
        # 2a + 2b = 3 has fractional points but no integer one.
        Case(
            "infeasible",
            mip(
                c=[1, 1],
                A=[[2, 2]],
                row_lo=[3],
                row_hi=[3],
                col_lo=[0, 0],
                col_hi=[5, 5],
                integer=[True, True],
            ),
            Status.INFEASIBLE,
        ),
        # Vertex (3, 1): 3*3 + 2*1.
        Case(
            "lp",
            mip(
                c=[3, 2],
                A=[[1, 1], [1, 3]],
                row_lo=[-INF, -INF],
                row_hi=[4, 6],
                col_lo=[0, 0],
                col_hi=[3, INF],
                integer=[False, False],
            ),
            Status.OPTIMAL,
            11.0,
        ),
        # a + b <= 1: take b (3); c costs 1; plus the offset 7.25.
        Case(
            "offset",
            mip(
                c=[2, 3, -1],
                A=[[1, 1, 0]],
                row_lo=[-INF],
                row_hi=[1],
                col_lo=[0] * 3,
                col_hi=[1] * 3,
                integer=[True] * 3,
                offset=7.25,
            ),
            Status.OPTIMAL,
            10.25,
        ),
        # The knapsack from a feasible but suboptimal start ({1, 2}: value 20).
        Case(
            "warm_start",
            mip(
                c=[10, 13, 7, 8],
                A=[[5, 6, 3, 4]],
                row_lo=[-INF],
                row_hi=[10],
                col_lo=[0] * 4,
                col_hi=[1] * 4,
                integer=[True] * 4,
                start=[0, 1, 1, 0],
            ),
            Status.OPTIMAL,
            21.0,
        ),
    ]


CASES = _cases()


def check_plan(problem: MipProblem, solution: MipSolution) -> None:
    """Independent checker: x meets every row, bound and integrality; objective matches x."""
    x = solution.x
    assert x is not None
    assert x.shape == (problem.n_cols,)
    activity = problem.A @ x
    assert np.all(activity >= problem.row_lo - TOL), "row lower bound violated"
    assert np.all(activity <= problem.row_hi + TOL), "row upper bound violated"
    assert np.all(x >= problem.col_lo - TOL), "column lower bound violated"
    assert np.all(x <= problem.col_hi + TOL), "column upper bound violated"
    xi = x[problem.integer]
    assert np.all(np.abs(xi - np.round(xi)) <= TOL), "integrality violated"
    assert solution.objective == pytest.approx(problem.c @ x + problem.offset, abs=TOL)
    if np.isfinite(solution.bound):
        assert solution.bound >= solution.objective - TOL, "bound below a feasible plan"


def test_all_backends_available() -> None:
    """Every registered backend can run here, so the suite covers all of them."""
    assert set(BACKEND_NAMES) == set(BACKENDS) == {"highs", "ortools", "cbc"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_conformance(backend: str, case: Case) -> None:
    """Each backend reaches the known status and optimum, with a feasible plan and honest bound."""
    solution = get_backend(backend).solve(case.problem, **SOLVE)
    assert solution.backend == backend
    assert solution.status == case.status, solution.native_status
    if case.status is Status.INFEASIBLE:
        assert solution.x is None
        assert np.isnan(solution.objective)
        return
    check_plan(case.problem, solution)
    assert solution.objective == pytest.approx(case.optimum, abs=TOL)
    assert solution.gap <= TOL


def _snapshot(problem: MipProblem) -> dict[str, np.ndarray]:
    arrays = {
        name: np.array(getattr(problem, name), copy=True)
        for name in ("c", "row_lo", "row_hi", "col_lo", "col_hi", "integer", "start")
    }
    arrays["A.data"] = problem.A.data.copy()
    arrays["A.indices"] = problem.A.indices.copy()
    arrays["A.indptr"] = problem.A.indptr.copy()
    return arrays


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_problem_not_modified(backend: str) -> None:
    """A backend never changes any array of the problem it is handed (warm start included)."""
    for case in CASES:
        before = _snapshot(case.problem)
        get_backend(backend).solve(case.problem, **SOLVE)
        after = _snapshot(case.problem)
        for key, value in before.items():
            np.testing.assert_array_equal(after[key], value, err_msg=f"{case.name}: {key}")


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_thread_count_can_change(backend: str) -> None:
    """Solves in one process may ask for different thread counts (HiGHS shares one pool)."""
    knapsack = CASES[0].problem
    for threads in (1, 2, 1):
        solution = get_backend(backend).solve(knapsack, **SOLVE, threads=threads)
        assert solution.status == Status.OPTIMAL, (threads, solution.native_status)
        assert solution.objective == pytest.approx(CASES[0].optimum, abs=TOL)


def test_unknown_backend() -> None:
    """An unknown name is a CouplerError that lists the known backends."""
    with pytest.raises(CouplerError, match="cbc, highs, ortools"):
        get_backend("gurobi")


def test_backend_names_match_registry() -> None:
    """Each backend instance carries the name it is registered under."""
    for name in BACKENDS:
        assert get_backend(name).name == name


def brute_force(
    sizes: list[int], capacity: list[int], value: np.ndarray, allowed: np.ndarray
) -> float | None:
    """Best total value over every way to send each household to one allowed municipality."""
    n_h, n_m = value.shape
    best = None
    for choice in itertools.product(range(n_m), repeat=n_h):
        if not all(allowed[h, m] for h, m in enumerate(choice)):
            continue
        load = np.zeros(n_m)
        for h, m in enumerate(choice):
            load[m] += sizes[h]
        if np.any(load > capacity):
            continue
        total = float(sum(value[h, m] for h, m in enumerate(choice)))
        best = total if best is None else max(best, total)
    return best


@st.composite
def assignment_instances(draw: st.DrawFn) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """Up to 6 households x 4 municipalities; some pairs forbidden; tight or short capacity."""
    n_h = draw(st.integers(1, 6))
    n_m = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 4), min_size=n_h, max_size=n_h))
    capacity = draw(st.lists(st.integers(0, 8), min_size=n_m, max_size=n_m))
    value = np.array(
        draw(st.lists(st.integers(-3, 9), min_size=n_h * n_m, max_size=n_h * n_m))
    ).reshape(n_h, n_m)
    allowed = np.array(
        draw(st.lists(st.booleans(), min_size=n_h * n_m, max_size=n_h * n_m))
    ).reshape(n_h, n_m)
    return sizes, capacity, value, allowed


@settings(derandomize=True, max_examples=25, deadline=None)
@given(assignment_instances())
def test_assignment_matches_brute_force(
    instance: tuple[list[int], list[int], np.ndarray, np.ndarray],
) -> None:
    """Every backend's optimum equals brute-force enumeration; infeasible exactly when it is."""
    sizes, capacity, value, allowed = instance
    expected = brute_force(sizes, capacity, value, allowed)
    problem, pairs = assignment(sizes, capacity, value, allowed)
    for backend in BACKEND_NAMES:
        solution = get_backend(backend).solve(problem, **SOLVE)
        if expected is None:
            assert solution.status == Status.INFEASIBLE, (backend, solution.native_status)
            continue
        assert solution.status == Status.OPTIMAL, (backend, solution.native_status)
        check_plan(problem, solution)
        assert solution.objective == pytest.approx(expected, abs=TOL), backend
        # No forbidden pair is used: columns exist only for allowed pairs.
        assert solution.x is not None
        for (h, m), xv in zip(pairs, solution.x, strict=True):
            assert xv < 0.5 or allowed[h, m]


def test_new_highs_from_many_threads_leaves_stdout_as_it_was() -> None:
    """``new_highs`` mutes file descriptor 1 while HiGHS prints its banner. Called from several
    threads at once (the window search solves windows side by side), every call restores the
    descriptor it found, so stdout is the same file afterwards (it used to end up on /dev/null:
    each thread saved the other's muted descriptor)."""
    import os
    import threading

    from coupler.engine.highs import new_highs

    before = os.fstat(1)
    go = threading.Barrier(4)

    def make() -> None:
        go.wait()
        for _ in range(25):
            new_highs()

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_cbc_is_not_misled_by_a_poor_start(backend: str) -> None:
    """Started from the worst plan that couples everybody, every backend still reaches the
    brute-force optimum and reports a bound at least that high. (CBC 2.10.3, given this start
    through PuLP, called the start itself optimal: a false proof.)"""
    from factories import LINE, all_plans, instance

    from coupler import Policy, build_model
    from coupler.engine.mip import build_mip

    inst = instance(LINE[:3], [3, 2, 4], [1, 1, 1, 2, 2], azc=[0, 0, 2, 0, 0])
    model = build_model(inst, Policy().with_(quota={"fill_balance": 2.0}))
    plans = all_plans(model)
    ok = plans.feasible & (plans.uncoupled == 0) & (plans.broken == 0)
    best = float(plans.objective[ok].max())
    worst = plans.assignment[np.flatnonzero(ok)[np.argmin(plans.objective[ok])]]
    ph, pm = np.nonzero(~model.forbidden & ~model.breaks)
    problem, _ = build_mip(model, ph, pm, objective="soft", allow_uncoupled=False, start=worst)
    solution = get_backend(backend).solve(problem, **SOLVE)
    assert solution.objective == pytest.approx(best, abs=TOL)
    assert solution.bound >= best - TOL
