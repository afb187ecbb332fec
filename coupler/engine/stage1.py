"""Stage 1 of the lexicographic objective: the fewest uncoupled, then broken, persons.

Only households with a hard criterion (or a ban or pin) need their own variables here. Every other
household only uses capacity, and households of the same size are interchangeable for that, so
they are aggregated into integer counts per (size, municipality). The result is an exact MIP over a
few thousand columns even at national scale, with every side constraint (dwellings, bands).

A broken household joins the pool of its size: it may then go anywhere. (A broken household that
also has bans is treated as unrestricted here; stage 2 enforces its bans and reports any excess.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from coupler.engine.base import MipBackend, MipProblem
from coupler.model import CouplingModel
from coupler.result import Status


@dataclass(frozen=True)
class Stage1:
    """Minimum uncoupled persons and broken measure, and whether that minimum is proven.

    ``broken`` is in the shortage order's measure (``model.broken_weight``; persons by
    default); ``broken_persons`` counts the persons of that plan's broken households.
    """

    uncoupled: int
    broken: int
    proven: bool
    status: Status
    seconds: float
    broken_persons: int = 0
    #: Whether the wall-clock limit (not the node limit) stopped the MIP.
    hit_time_limit: bool = False
    #: A plan with exactly these uncoupled persons and this broken measure (municipality per
    #: household, -1 = uncoupled): the MIP's counts per size handed to the pooled households,
    #: each to its best place with a count left. None when the MIP found no plan. A broken
    #: household with bans may sit at a banned place here (stage 1 lets it go anywhere).
    plan: np.ndarray | None = None


def solve_stage1(
    model: CouplingModel,
    backend: MipBackend,
    *,
    time_limit: float,
    seed: int,
    start: np.ndarray | None = None,
    max_nodes: int | None = None,
) -> Stage1:
    """Minimise uncoupled persons, then the broken measure, exactly (see the module docstring).

    ``start`` (municipality per household, -1 = uncoupled), when given, warm-starts the MIP, so
    a plan is known even when the time limit stops it early. ``max_nodes`` bounds the
    branch-and-bound work, so that the answer does not depend on the machine's speed.
    """
    n_m = model.n_municipalities
    size = model.size
    special = model.has_hard | model.forbidden.any(axis=1)
    sp_idx = np.flatnonzero(special)
    ok = ~model.forbidden[sp_idx] & model.allowed[sp_idx]
    ph_local, pm = np.nonzero(ok)
    ph = sp_idx[ph_local]
    n_x = len(ph)
    hard_sp = sp_idx[model.has_hard[sp_idx]]
    n_b = len(hard_sp)
    n_w = len(sp_idx)
    pool = ~special
    sizes = np.unique(size)
    n_s = len(sizes)
    size_pos = {int(s): i for i, s in enumerate(sizes)}
    count = np.array([int((pool & (size == s)).sum()) for s in sizes])
    # Columns: x | b | w | n[s, m] | u[s]
    o_b, o_w, o_n, o_u = n_x, n_x + n_b, n_x + n_b + n_w, n_x + n_b + n_w + n_s * n_m
    n_cols = o_u + n_s
    P = float(model.broken_weight.sum())

    c = np.zeros(n_cols)
    c[o_b:o_w] = -model.broken_weight[hard_sp]
    c[o_w:o_n] = -(P + 1) * size[sp_idx]
    c[o_u:] = -(P + 1) * sizes

    rows, cols, vals, lo, hi = [], [], [], [], []
    r0 = 0

    def add(r, cc, v, low, h):  # type: ignore[no-untyped-def]
        nonlocal r0
        rows.append(np.asarray(r) + r0)
        cols.append(np.asarray(cc))
        vals.append(np.asarray(v, dtype=float))
        lo.append(np.asarray(low, dtype=float))
        hi.append(np.asarray(h, dtype=float))
        r0 += len(low)

    pos_sp = np.searchsorted(sp_idx, ph)
    b_pos = np.searchsorted(sp_idx, hard_sp)
    # Special households: x + b + w = 1.
    add(
        np.concatenate([pos_sp, b_pos, np.arange(n_w)]),
        np.concatenate([np.arange(n_x), o_b + np.arange(n_b), o_w + np.arange(n_w)]),
        np.ones(n_x + n_b + n_w),
        np.ones(n_w),
        np.ones(n_w),
    )
    # Pool balance per size: sum_m n[s, m] + u[s] - broken specials of size s = count[s].
    s_of_b = np.array([size_pos[int(s)] for s in size[hard_sp]], dtype=np.int64)
    n_cols_idx = o_n + np.arange(n_s * n_m)
    add(
        np.concatenate([np.repeat(np.arange(n_s), n_m), np.arange(n_s), s_of_b]),
        np.concatenate([n_cols_idx, o_u + np.arange(n_s), o_b + np.arange(n_b)]),
        np.concatenate([np.ones(n_s * n_m), np.ones(n_s), -np.ones(n_b)]),
        count,
        count,
    )
    n_m_of = np.tile(np.arange(n_m), n_s)
    n_size = np.repeat(sizes, n_m).astype(float)
    # Capacity.
    add(
        np.concatenate([pm, n_m_of]),
        np.concatenate([np.arange(n_x), n_cols_idx]),
        np.concatenate([size[ph].astype(float), n_size]),
        np.full(n_m, -np.inf),
        model.cap,
    )
    # Dwellings (counted in households).
    large = model.policy.quota.large_household_size
    for caps, is_kind, size_kind in (
        (model.cap_large, size >= large, sizes >= large),
        (model.cap_single, size == 1, sizes == 1),
    ):
        if caps is None:
            continue
        rel = np.isfinite(caps)
        idx = np.cumsum(rel) - 1
        sx = is_kind[ph] & rel[pm]
        sn = np.repeat(size_kind, n_m) & rel[n_m_of]
        add(
            np.concatenate([idx[pm[sx]], idx[n_m_of[sn]]]),
            np.concatenate([np.flatnonzero(sx), n_cols_idx[sn]]),
            np.ones(int(sx.sum() + sn.sum())),
            np.full(int(rel.sum()), -np.inf),
            caps[rel],
        )
    for band in model.bands:
        sx = band.members[pm]
        sn = band.members[n_m_of]
        add(
            np.zeros(int(sx.sum() + sn.sum()), dtype=np.int64),
            np.concatenate([np.flatnonzero(sx), n_cols_idx[sn]]),
            np.concatenate([size[ph][sx].astype(float), n_size[sn]]),
            [band.lo],
            [band.hi],
        )

    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, n_cols)
    )
    col_hi = np.ones(n_cols)
    col_hi[o_n:o_u] = np.repeat(count + np.bincount(s_of_b, minlength=n_s), n_m)
    col_hi[o_u:] = count + np.bincount(s_of_b, minlength=n_s)
    # Warm start: the given plan (broken specials join their size's pool where they sit).
    a = np.full(len(size), -1, dtype=np.int64) if start is None else np.asarray(start, np.int64)
    x0 = np.zeros(n_cols)
    on_sp = a[sp_idx] >= 0
    pair_key = ph * n_m + pm
    sp_key = sp_idx * n_m + np.maximum(a[sp_idx], 0)
    pos = np.searchsorted(pair_key, sp_key)
    hit = on_sp & (pos < n_x)
    if n_x:
        hit &= pair_key[np.minimum(pos, n_x - 1)] == sp_key
    x0[pos[hit]] = 1.0
    broke = on_sp & ~hit & model.has_hard[sp_idx]
    x0[o_w + np.flatnonzero(~hit & ~broke)] = 1.0
    x0[o_b + np.searchsorted(hard_sp, sp_idx[broke])] = 1.0
    in_pool = np.zeros(len(size), dtype=bool)
    in_pool[pool] = True
    in_pool[sp_idx[broke]] = True
    placed = in_pool & (a >= 0)
    s_pos = np.searchsorted(sizes, size)
    np.add.at(x0, o_n + s_pos[placed] * n_m + a[placed], 1.0)
    np.add.at(x0, o_u + s_pos[pool & (a < 0)], 1.0)
    problem = MipProblem(
        c=c,
        A=A,
        row_lo=np.concatenate(lo),
        row_hi=np.concatenate(hi),
        col_lo=np.zeros(n_cols),
        col_hi=col_hi,
        integer=np.ones(n_cols, dtype=bool),
        start=None if start is None else x0,
    )
    sol = backend.solve(problem, time_limit=time_limit, gap=0.0, seed=seed, max_nodes=max_nodes)
    if sol.x is None:
        return Stage1(
            uncoupled=-1,
            broken=-1,
            proven=False,
            status=sol.status,
            seconds=sol.seconds,
            hit_time_limit=sol.hit_time_limit,
        )
    x = sol.x
    unc = int(round(float(size[sp_idx] @ x[o_w:o_n] + sizes @ x[o_u:])))
    broken = int(round(float(model.broken_weight[hard_sp] @ x[o_b:o_w])))
    broken_persons = int(round(float(size[hard_sp] @ x[o_b:o_w])))
    # Integral objective: a bound within 1 of the objective proves it.
    proven = sol.status is Status.OPTIMAL or (
        np.isfinite(sol.bound) and sol.bound - sol.objective < 1 - 1e-6
    )
    # The plan: specials where x puts them; pooled households (and broken specials) of each
    # size to the places the counts n[s, m] hold, best value first.
    plan = np.full(len(size), -1, dtype=np.int64)
    on = x[:n_x] > 0.5
    plan[ph[on]] = pm[on]
    pooled = pool.copy()
    pooled[hard_sp[x[o_b:o_w] > 0.5]] = True
    counts = np.rint(x[o_n:o_u]).astype(np.int64).reshape(n_s, n_m)
    for i, s in enumerate(sizes):
        left = counts[i].copy()
        hs = np.flatnonzero(pooled & (size == s))
        order = hs[np.argsort(-model.value[hs].max(axis=1, initial=0.0), kind="stable")]
        for h in order:
            if not left.any():
                break
            m = int(np.argmax(np.where(left > 0, model.value[h], -np.inf)))
            plan[h] = m
            left[m] -= 1
    return Stage1(
        uncoupled=unc,
        broken=broken,
        proven=bool(proven),
        status=sol.status,
        seconds=sol.seconds,
        broken_persons=broken_persons,
        hit_time_limit=sol.hit_time_limit,
        plan=plan,
    )
