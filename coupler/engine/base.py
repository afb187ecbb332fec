"""The contract between the model and the MIP backends.

A :class:`MipProblem` is a plain sparse MIP in array form (maximise ``c @ x`` subject to
``row_lo <= A @ x <= row_hi`` and ``col_lo <= x <= col_hi``, some columns integer). Every backend
takes one and returns a :class:`MipSolution`; backends never change the problem they are handed.
Native statuses map onto :class:`Status`; an unknown native status becomes ``UNKNOWN``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from coupler.result import Status


@dataclass(frozen=True, eq=False)
class MipProblem:
    """maximise ``c @ x + offset`` s.t. ``row_lo <= A @ x <= row_hi``, ``col_lo <= x <= col_hi``.

    ``integer[j]`` marks integer columns. ``names`` is optional and only used by backends that
    write readable models (CBC). ``start`` is an optional feasible starting point (warm start).
    """

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    offset: float = 0.0
    start: np.ndarray | None = None
    names: tuple[str, ...] | None = None

    @property
    def n_cols(self) -> int:
        return int(self.c.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])


@dataclass(frozen=True, eq=False)
class MipSolution:
    """What a backend found. ``x`` is None when no feasible point was found."""

    status: Status
    x: np.ndarray | None
    objective: float  # c @ x + offset, or nan
    bound: float  # proven upper bound on the objective (maximisation), or nan/inf
    seconds: float
    backend: str
    native_status: str = ""
    info: dict[str, float] = field(default_factory=dict)
    #: Whether the wall-clock limit stopped the solver. A plan found so is not reproducible (a
    #: busy machine stops earlier); a node limit (``max_nodes``) stops at the same point always.
    hit_time_limit: bool = False
    #: Reduced cost per column of an optimal LP (no integer column), when the backend gives
    #: them (HiGHS); None otherwise.
    reduced_cost: np.ndarray | None = None
    #: Dual value per row of an optimal LP, when the backend gives them (HiGHS); None otherwise.
    row_dual: np.ndarray | None = None

    @property
    def gap(self) -> float:
        """Relative gap ``(bound - objective) / max(1, |objective|)``; inf when unknown."""
        if self.x is None or not np.isfinite(self.bound) or not np.isfinite(self.objective):
            return float("inf")
        return max(0.0, self.bound - self.objective) / max(1.0, abs(self.objective))


class MipBackend(Protocol):
    """A MIP solver behind one small interface."""

    name: str

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
        """Maximise ``problem``. ``max_nodes`` bounds the branch-and-bound nodes (a work limit
        that, unlike ``time_limit``, stops at the same point on any machine); None: no limit.
        ``heuristics=False``: the start is already good, spend the effort on the bound (a backend
        may ignore it)."""
        ...
