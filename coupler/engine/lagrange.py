"""A Lagrangian bound that sees whole households: one knapsack per municipality.

The transportation relaxation (:mod:`coupler.engine.flow`) lets a household split, so a large
family can fill several fill-balance targets with slivers of persons, and its bound is weak for
monthly batches. Relaxing only the assignment rows (each household exactly once) with multipliers
``u[h]`` leaves, per municipality m, a 0/1 knapsack over whole households::

    knap_m(u) = max  sum_{h in S} (value[h, m] - u[h]) + fill * min(persons(S), target[m])
                s.t. persons(S) <= cap[m],  (h, m) neither forbidden nor breaking a hard criterion

and for every ``u`` (equality rows: no sign restriction)::

    L(u) = sum_h u[h] + sum_m knap_m(u) - fill * sum_m target[m]

bounds ``soft - fill * shortfall`` of every plan with no broken and no uncoupled persons. Side
constraints only remove plans, so the bound holds with them too.

Multipliers come from the flow's optimal potentials: with ``d`` the shortest-path distances of
the residual network from the sink (scaled units), the flow's optimality conditions read
``value[h, m] / size[h] <= (d_h - d_m) / SCALE`` (up to cost rounding), so ``d_h / SCALE`` is the
per-person price of household h and ``u[h] = size[h] * d_h / SCALE`` its price as a whole. With
these, ``L(u)`` is at most the LP bound (up to rounding); a few subgradient steps then lower it.
"""

from __future__ import annotations

import time

import numpy as np

from coupler.engine.flow import SCALE, FlowRelaxation
from coupler.model import CouplingModel

#: Items whose best gain is at most this (objective units, per item) are left out of the dynamic
#: programme; their gains are added to the bound instead, so it stays valid.
_TINY = 1e-6


def knapsack_bound(
    model: CouplingModel,
    flow: FlowRelaxation,
    *,
    steps: int = 0,
    lower: float | None = None,
    deadline: float | None = None,
    multipliers: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
    uncoupled: int = 0,
    broken: int = 0,
) -> float:
    """Upper bound on ``soft - fill * shortfall`` over plans with at most ``broken`` broken
    (the shortage order's measure) and at most ``uncoupled`` uncoupled persons (0 by
    default).

    Parameters
    ----------
    model
        The coupling model.
    flow
        The optimal transportation relaxation of ``model`` (its potentials give the multipliers).
    steps
        Subgradient steps after the flow's multipliers (0: the flow's multipliers only).
    lower
        Objective of a known plan; the subgradient step sizes aim at it (Polyak). Without it the
        steps aim 1 % below the best bound so far.
    deadline
        ``time.perf_counter()`` value after which no further step is taken.
    multipliers
        Multipliers per household to start from instead of the flow's (e.g. the duals of the LP
        with whole-household fill rows, which start lower).
    pairs
        A boolean (household x municipality) array; when given, every pair some knapsack takes
        on the way is set in it. Those are the pairs whole households use at good prices: a MIP
        over them (and a plan's own) holds a good plan where the LP's reduced costs point
        elsewhere (tight quotas with a score per municipality, 397 households: 1,249 such
        pairs after 100 steps hold a plan 0.01 % below the optimum; the 16,000 pairs cheapest
        by the LP's reduced costs, one 0.08 % below).
    uncoupled
        Persons that may stay uncoupled: they go to one more knapsack of that capacity, where
        household h is worth ``-u[h]``. ``flow`` must then leave at most that many out.
    broken
        The budget of broken criteria (the shortage order's measure, as stage 1 counts it).
        Breaking pairs enter the knapsacks at their value minus ``mu`` times the household's
        measure, and ``mu * broken`` is added: a second multiplier, ``mu >= 0``, on the budget
        row, stepped with ``u`` (it starts at the flow's penalty per unit).

    Returns
    -------
    float
        ``min(flow.bound, best L(u))``; ``inf`` when the relaxation needs more broken or
        uncoupled persons than the budgets (the bound is then not about this objective).
    """
    if flow.lp_broken > broken + 0.5 or flow.lp_uncoupled > uncoupled + 0.5:
        return float("inf")
    # The flow's bound is on the penalised objective: plans within the budgets score at most
    # that plus their penalties on the soft objective.
    best = float(flow.bound) + flow.uncoupled_penalty * uncoupled + flow.broken_penalty * broken
    if multipliers is not None:
        u = np.asarray(multipliers, dtype=np.float64).copy()
    else:
        if not np.isfinite(flow.potential_h).all():
            return best
        u = flow_multipliers(model, flow)
    size = model.size.astype(np.int64)
    if broken > 0:
        usable = ~model.forbidden
        weight = np.where(model.breaks, model.broken_weight[:, None], 0.0)  # measure per pair
        mu = float(flow.broken_penalty)
    else:
        usable = ~model.forbidden & ~model.breaks
    # Polyak steps towards ``lower``; the step factor halves after 3 steps without a better bound
    # (Held and Karp's schedule).
    theta, stalled = 1.0, 0
    for it in range(steps + 1):
        g_mu = 0.0
        value, chosen, taken = knapsacks(
            model,
            u,
            usable,
            patterns=broken > 0 or pairs is not None,
            value=model.value - mu * weight if broken > 0 else None,
        )
        if taken is not None:
            # Every (household, municipality) some knapsack took, as two index arrays.
            th = np.concatenate(taken).astype(np.int64)
            tm = np.repeat(np.arange(len(taken)), [len(t) for t in taken])
            if pairs is not None:
                pairs[th, tm] = True
            if broken > 0:
                value += mu * broken
                g_mu = broken - float(weight[th, tm].sum())
        if uncoupled > 0:
            out = np.flatnonzero(u < 0)  # worth -u[h] > 0 when left out
            left, pick = _knapsack(-u[out], size[out], int(uncoupled), 0.0, 0.0)
            value += left
            chosen[out[pick]] += 1.0
        if value < best - 1e-9:
            best, stalled = value, 0
        else:
            stalled += 1
            if stalled >= 3:
                theta, stalled = theta / 2, 0
        if it == steps or (deadline is not None and time.perf_counter() > deadline):
            break
        if lower is not None and best - lower <= 1e-9 * max(1.0, abs(lower)):
            break  # the bound meets a known plan: nothing left to prove
        g = 1.0 - chosen
        if broken > 0 and mu <= 0.0:
            g_mu = min(g_mu, 0.0)  # mu stays at 0: only a step up counts
        norm = float((g * g).sum()) + g_mu * g_mu
        if norm == 0.0:
            break  # the knapsacks pick every household once: the bound is that plan's value
        aim = lower if lower is not None and lower < best else best - 0.01 * max(1.0, abs(best))
        step = theta * (value - aim) / norm
        u = u - step * g
        if broken > 0:
            mu = max(0.0, mu - step * g_mu)
    return best


def flow_multipliers(model: CouplingModel, flow: FlowRelaxation) -> np.ndarray:
    """Per household, the relaxation's price of the whole household: its per-person potential
    times its persons (see the module docstring)."""
    return model.size.astype(np.float64) * (np.asarray(flow.potential_h, np.float64) / SCALE)


def lagrangian_value(
    model: CouplingModel, u: np.ndarray, usable: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """``L(u)`` and, per household, how many knapsacks chose it (a subgradient is 1 minus that)."""
    value, chosen, _ = knapsacks(model, u, usable, patterns=False)
    return value, chosen


def knapsacks(
    model: CouplingModel,
    u: np.ndarray,
    usable: np.ndarray | None = None,
    *,
    patterns: bool,
    value: np.ndarray | None = None,
) -> tuple[float, np.ndarray, list[np.ndarray] | None]:
    """:func:`lagrangian_value`, and with ``patterns`` the households each municipality's best
    knapsack takes (one array per municipality, in index order; None without). ``value``: the
    pairs' values to use instead of ``model.value``."""
    if usable is None:
        usable = ~model.forbidden & ~model.breaks
    size = model.size.astype(np.int64)
    lam = float(model.fill_weight)
    profit = (model.value if value is None else value) - u[:, None]
    # Taking an item gains at most its profit plus fill for each of its persons; items that cannot
    # gain are never needed in an optimal knapsack.
    gain = np.where(usable, profit + lam * size[:, None], -np.inf)
    chosen = np.zeros(model.n_households)
    total = float(u.sum()) - lam * float(model.target.sum())
    slack = 0.0
    tiny = (gain > 0) & (gain <= _TINY)
    if tiny.any():
        slack = float(gain[tiny].sum())
    keep = gain > _TINY

    # Every item of positive profit is taken while the capacity cannot bind; the others only buy
    # fill up to the target, so a best set of them weighs less than the rest of the target plus
    # its largest item (removing any item would keep the fill). Then only the most profitable
    # ``top // s`` items of each size s can matter: sort them once for all municipalities.
    cap = model.cap.astype(np.int64)
    target = np.rint(model.target).astype(np.int64)
    pos = keep & (profit > 0)
    neg = keep & ~pos
    w_pos = size @ pos
    s_all = np.where(keep, size[:, None], 0).max(axis=0, initial=0)
    s_neg = np.where(neg, size[:, None], 0).max(axis=0, initial=0)
    # Fractional targets (sub-models may carry them) go through the plain programme.
    whole = np.abs(model.target - target) < 1e-9
    free = (w_pos <= cap) & (target + s_all - 1 <= cap) & whole
    rest = target - w_pos
    top = np.where(free & (rest > 0) & (s_neg > 0), rest + s_neg - 1, 0)
    total += float(np.where(pos[:, free], profit[:, free], 0.0).sum())
    total += lam * float(np.minimum(w_pos[free], target[free]).sum())
    chosen += pos[:, free].sum(axis=1)
    taken: list[np.ndarray] | None = None
    if patterns:
        taken = [
            np.flatnonzero(pos[:, m]) if free[m] else np.zeros(0, dtype=np.int64)
            for m in range(model.n_municipalities)
        ]
    groups = []
    for s in np.unique(size):
        k_max = int(top.max(initial=0)) // int(s)
        if k_max == 0:
            continue
        rows = np.flatnonzero(size == s)
        q = np.where(neg[rows], profit[rows], -np.inf)
        order = np.argsort(-q, axis=0, kind="stable")[:k_max]
        prefix = np.vstack(
            [np.zeros((1, q.shape[1])), np.cumsum(np.take_along_axis(q, order, 0), 0)]
        )
        groups.append((int(s), rows, order, prefix))
    for m in np.flatnonzero(top > 0):
        v, picked = _fill_to_target(groups, int(m), int(top[m]), int(rest[m]), lam)
        total += v
        np.add.at(chosen, picked, 1.0)
        if taken is not None:
            taken[m] = np.concatenate([taken[m], picked])
    for m in np.flatnonzero(~free):
        hs = np.flatnonzero(keep[:, m])
        v, pick = _knapsack(profit[hs, m], size[hs], int(cap[m]), float(model.target[m]), lam)
        total += v
        chosen[hs[pick]] += 1.0
        if taken is not None:
            taken[m] = hs[pick]
    return total + slack, chosen, taken


def _fill_to_target(
    groups: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
    m: int,
    top: int,
    rest: int,
    lam: float,
) -> tuple[float, np.ndarray]:
    """Best items of profit <= 0 for municipality m, by size groups (bounded knapsack over counts):
    max profit + lam * min(persons, rest) over 0..top persons. Returns value and household rows."""
    best = np.full(top + 1, -np.inf)
    best[0] = 0.0
    n = np.arange(top + 1)
    taken = []
    for s, rows, order, prefix in groups:
        k = top // s
        if k == 0:
            continue
        pre = prefix[: k + 1, m]
        idx = n[None, :] - s * np.arange(len(pre))[:, None]
        cand = np.where(idx >= 0, best[np.maximum(idx, 0)] + pre[:, None], -np.inf)
        arg = np.argmax(cand, axis=0)
        best = cand[arg, n]
        taken.append((s, rows, order, arg))
    total = best + lam * np.minimum(n, rest)
    at = int(np.argmax(total))
    picked = []
    for s, rows, order, arg in reversed(taken):
        c = int(arg[at])
        picked.append(rows[order[:c, m]])
        at -= c * s
    out = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return float(total.max()), out


def _knapsack(
    q: np.ndarray, w: np.ndarray, cap: int, target: float, lam: float
) -> tuple[float, np.ndarray]:
    """max sum q[S] + lam * min(w(S), target) s.t. w(S) <= cap; returns value and a mask of S."""
    pos = q > 0
    whole = float(target).is_integer()
    if len(q) and whole and int(w[pos].sum()) <= cap and int(target) + int(w.max()) - 1 <= cap:
        return _knapsack_to_target(q, w, target, lam)
    return _knapsack_dp(q, w, cap, target, lam)


def _knapsack_to_target(
    q: np.ndarray, w: np.ndarray, target: float, lam: float
) -> tuple[float, np.ndarray]:
    """The knapsack when its capacity cannot bind (see :func:`_knapsack`).

    Every item of positive profit is taken. The others only buy fill up to the target, so a best
    set of them weighs less than the rest of the target plus the largest item; and of the items of
    one size only the most profitable few fit in that range. Items of one size are added at once
    with their profit prefix sums (a bounded knapsack over counts).
    """
    pick = q > 0
    w_pos = int(w[pick].sum())
    value = float(q[pick].sum())
    rest = int(target) - w_pos
    if rest <= 0:
        return value + lam * target, pick
    value += lam * w_pos
    neg = np.flatnonzero(~pick)
    if len(neg) == 0:
        return value, pick
    top = rest + int(w[neg].max()) - 1
    best = np.full(top + 1, -np.inf)
    best[0] = 0.0
    n = np.arange(top + 1)
    groups = []
    for s in np.unique(w[neg]):
        s = int(s)
        members = neg[w[neg] == s]
        members = members[np.argsort(-q[members], kind="stable")][: top // s]
        if len(members) == 0:
            continue
        prefix = np.concatenate([[0.0], np.cumsum(q[members])])
        idx = n[None, :] - s * np.arange(len(prefix))[:, None]
        cand = np.where(idx >= 0, best[np.maximum(idx, 0)] + prefix[:, None], -np.inf)
        k = np.argmax(cand, axis=0)
        best = cand[k, n]
        groups.append((s, members, k))
    total = best + lam * np.minimum(n, rest)
    at = int(np.argmax(total))
    value += float(total[at])
    for s, members, k in reversed(groups):
        c = int(k[at])
        pick[members[:c]] = True
        at -= c * s
    return value, pick


def _knapsack_dp(
    q: np.ndarray, w: np.ndarray, cap: int, target: float, lam: float
) -> tuple[float, np.ndarray]:
    """The knapsack by a plain 0/1 dynamic programme over persons 0..cap."""
    n = len(q)
    fill = lam * np.minimum(np.arange(cap + 1, dtype=np.float64), target)
    if n == 0 or cap <= 0:
        return 0.0, np.zeros(n, dtype=bool)
    # best[k]: most profit with exactly k persons; took[i, k]: item i raised best[k].
    best = np.full(cap + 1, -np.inf)
    best[0] = 0.0
    took = np.zeros((n, cap + 1), dtype=bool)
    for i in range(n):
        s = int(w[i])
        if s > cap:
            continue
        cand = best[: cap + 1 - s] + q[i]
        better = cand > best[s:]
        took[i, s:] = better
        best[s:] = np.where(better, cand, best[s:])
    total = best + fill
    k = int(np.argmax(total))
    value = float(total[k])
    pick = np.zeros(n, dtype=bool)
    for i in range(n - 1, -1, -1):
        if k > 0 and took[i, k]:
            pick[i] = True
            k -= int(w[i])
    return value, pick
