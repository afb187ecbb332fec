"""Integral plans from the transportation relaxation: plain rounding, and iterative rounding.

The relaxation (:mod:`coupler.engine.flow`) keeps most households whole; the few it splits are
placed whole here, and every single person is then re-flowed exactly: single persons have a supply
of 1, and a transportation problem with unit supplies has an integral optimum.

With fill balance on, the relaxation fills small targets with parts of families, and placing all
of those parts whole at once loses most where the families are large.
:func:`round_iteratively` therefore fixes the largest split households a few at a time and
re-solves the flow over its own arcs in between, so that the rest re-settles around them
(monthly batch of 4,700 persons, before the local search: 3,002.5 by plain rounding, 3,021.7
iteratively in 2 s; bound 3,032.2).
"""

from __future__ import annotations

import numpy as np

from coupler.engine.flow import (
    SCALE,
    FlowRelaxation,
    fill_tiers,
    flow_network,
    scaled_cost,
    solve_relaxation,
)
from coupler.model import CouplingModel, restrict

__all__ = ["FIX_PER_ROUND", "ROUNDS", "reflow_singles", "round_iteratively", "round_with_singles"]

#: Split households :func:`round_iteratively` fixes per re-solve. Fewer per round is slower and
#: mostly better: monthly batch, seeds 0 / 1, plan before the local search (bounds 3,032.2 /
#: 3,158.8): 3 -> 3,022.7 / 3,150.8 in about 4 s; 8 -> 3,021.7 / 3,151.3 in 2 s; 20 ->
#: 3,020.5 / 3,149.1 in 1 s. End-of-period batches rank the same way.
FIX_PER_ROUND = 8
#: Larger batches fix more per round, so that the first round's split households take about this
#: many rounds. (Half year, 28,000 persons: 28 rounds of 0.55 s each, gap 0.05 / 0.08 ->
#: 0.023 / 0.037 %; too slow for the engine's default, which rounds iteratively only up to
#: 10,000 persons.)
ROUNDS = 30


def reflow_singles(
    model: CouplingModel, fixed: np.ndarray, singles: np.ndarray
) -> np.ndarray | None:
    """Place every single person by an exact min-cost flow into the room ``fixed`` leaves."""
    n_m = model.n_municipalities
    out = fixed.copy()
    out[singles] = -1
    placed = out >= 0
    used = np.bincount(out[placed], weights=model.size[placed], minlength=n_m)
    room = model.cap - used.astype(np.int64)
    if (room < 0).any():
        return None
    if model.cap_single is not None:
        # Every single person is freed here, so single-dwelling capacities are room for them.
        room = np.minimum(room, model.cap_single).astype(np.int64)
    sub = restrict(model, singles, cap=room, target=np.maximum(model.target - used, 0.0))
    f2 = solve_relaxation(sub)
    carry = f2.flow > 0
    out[singles[f2.arc_h[carry]]] = f2.arc_m[carry]
    return out


def _place_whole(
    model: CouplingModel,
    flow: FlowRelaxation,
    rows: np.ndarray,
    local: np.ndarray,
    room: np.ndarray,
    out: np.ndarray,
) -> bool:
    """Place households ``rows`` of ``model`` whole, largest first, writing ``out`` and ``room``.

    ``local[i]`` is household ``rows[i]``'s index in ``flow`` (which may be a sub-model's). A
    household goes where the flow sends most of it, then to its cheapest arc, among places with
    room; without such an arc, to its best place with room at the flow's capacity prices.
    Returns False when one fits nowhere.
    """
    order = np.argsort(-model.size[rows], kind="stable")
    for i in order:
        h, k = int(rows[i]), int(local[i])
        s = int(model.size[h])
        arcs = np.flatnonzero(flow.arc_h == k)
        arcs = arcs[np.lexsort((flow.reduced_cost[arcs], -flow.flow[arcs]))]
        options = flow.arc_m[arcs]
        ok = options[room[options] >= s]
        if len(ok) == 0:
            usable = ~model.forbidden[h] & (room >= s)
            if not usable.any():
                return False
            price = (
                model.value[h] / s
                + flow.potential_m / 1e6
                - flow.broken_penalty * model.breaks[h] * (model.broken_weight[h] / s)
            )
            m = int(np.argmax(np.where(usable, price, -np.inf)))
        else:
            m = int(ok[0])
        out[h] = m
        room[m] -= s
    return True


def round_with_singles(model: CouplingModel, flow: FlowRelaxation) -> np.ndarray | None:
    """Round the relaxation: place split households whole, then re-flow every single person.

    Households the flow keeps whole stay where they are. Returns None when there are no single
    persons (nothing to re-flow) or a split household fits nowhere.
    """
    n_m = model.n_municipalities
    rounded = flow.rounded_assignment()
    split = flow.split_households()
    singles = np.flatnonzero(model.size == 1)
    if len(singles) == 0:
        return None
    fixed = rounded.copy()
    fixed[singles] = -1
    fixed[split] = -1
    placed = fixed >= 0
    used = np.bincount(fixed[placed], weights=model.size[placed], minlength=n_m)
    room = model.cap - used.astype(np.int64)
    if not _place_whole(model, flow, split, split, room, fixed):
        return None
    return reflow_singles(model, fixed, singles)


def round_iteratively(
    model: CouplingModel, flow: FlowRelaxation, *, keep_targets: bool = True
) -> np.ndarray | None:
    """Round split households a few at a time, re-solving the flow over its own arcs in between.

    Each round solves the min-cost flow over ``flow``'s candidate arcs with the households fixed
    so far on one arc each. Among the households the flow still splits (single persons never
    split), those of the largest size are fixed where the flow sends most of them, at most
    :data:`FIX_PER_ROUND` a round (more in large batches, see :data:`ROUNDS`), most decided
    first; whole households at least that large are fixed where they are. The others then
    re-settle around them in the next round, so smaller households (and at last the single
    persons, in an exact re-flow over every pair) fill what the large ones left. A round over
    the candidate arcs costs a few hundredths of a second.

    With ``keep_targets``: where the relaxation fills a municipality only up to its fill
    target, a family is fixed there only while the families fixed so far stay within that
    target (else at another of its places in the flow, or its cheapest place with room):
    persons above target belong where the relaxation puts its own excess. (Monthly batch, seed
    0: the best plan known puts 20 of its 24 excess places there, the engine's plan had spread
    the excess over 57; seeds 0-3, gap after the windows 0.27 / 0.23 / 0.37 / 0.26 % -> 0.22 /
    0.18 / 0.26 / 0.22 %.)

    A household the restricted flow must leave out gets every usable pair once; a family with
    no room on its own arcs goes to its cheapest usable place with room. When that does not
    help, returns None (the caller keeps another plan). Side constraints are not seen (the
    caller checks them).
    """
    singles = np.flatnonzero(model.size == 1)
    if len(singles) == 0:
        return None
    n_h, n_m = model.n_households, model.n_municipalities
    size = model.size.astype(np.int64)
    cost = scaled_cost(model, flow.broken_penalty)
    usable = ~model.forbidden & np.isfinite(cost)
    cost_u = int(round(flow.uncoupled_penalty * SCALE))
    tiers = fill_tiers(model)
    arc_h, arc_m = flow.arc_h.copy(), flow.arc_m.copy()
    widened = np.zeros(n_h, dtype=bool)
    fixed = np.full(n_h, -1, dtype=np.int64)
    fixed_used = np.zeros(n_m, dtype=np.int64)
    # Fixed families may fill a place up to its capacity; with ``keep_targets``, only up to
    # the target where the relaxation places no more persons than that.
    upto = model.cap.astype(np.int64)
    if keep_targets:
        in_flow = np.bincount(flow.arc_m, weights=flow.flow, minlength=n_m)
        within = in_flow <= model.target + 1e-9
        upto[within] = np.minimum(upto[within], np.ceil(model.target[within] - 1e-9))
    per_round = 0
    while True:
        solved = _restricted_flow(size, cost, cost_u, tiers, arc_h, arc_m, fixed, n_m)
        if solved is None:
            return None
        fh, fm, fq, unc = solved
        out = np.flatnonzero(unc > 0)
        if len(out):
            # Left out over these arcs: give those households every usable pair, once.
            if widened[out].all():
                return None
            widened[out] = True
            add_h, add_m = np.nonzero(usable[out])
            arc_h = np.concatenate([arc_h, out[add_h]])
            arc_m = np.concatenate([arc_m, add_m])
            pairs = np.unique(arc_h * n_m + arc_m)
            arc_h, arc_m = pairs // n_m, pairs % n_m
            continue
        on = fq > 0
        places = np.bincount(fh[on], minlength=n_h)
        split = np.flatnonzero((places > 1) & (size > 1))
        if len(split) == 0:
            break
        if per_round == 0:
            per_round = max(FIX_PER_ROUND, -(-len(split) // ROUNDS))
        largest = size[split].max()
        # Where the flow sends most of each household (ties: the cheaper arc, then the lower
        # municipality): sort carrying arcs by household, then flow down.
        order = np.lexsort((fm[on], cost[fh[on], fm[on]], -fq[on], fh[on]))
        h_on, m_on, q_on = fh[on][order], fm[on][order], fq[on][order]
        first = np.r_[True, h_on[1:] != h_on[:-1]]
        most = np.full(n_h, -1, dtype=np.int64)
        share = np.zeros(n_h)
        most[h_on[first]] = m_on[first]
        share[h_on[first]] = q_on[first] / size[h_on[first]]
        whole = np.flatnonzero((places == 1) & (size >= largest) & (size > 1) & (fixed < 0))
        fixed[whole] = most[whole]
        np.add.at(fixed_used, most[whole], size[whole])
        chosen = split[size[split] == largest]
        chosen = chosen[np.argsort(-share[chosen], kind="stable")]
        placed = 0
        for h in chosen:
            if placed == per_round:
                break
            m = int(most[h])
            if fixed_used[m] + size[h] > upto[m]:
                # Where else the flow sends it, most first, with room for it whole; else its
                # cheapest usable place with room (small capacities split a family of four
                # over places of one and two).
                options = m_on[h_on == h]
                room = fixed_used[options] + size[h] <= upto[options]
                if room.any():
                    m = int(options[np.argmax(room)])
                else:
                    fits = usable[h] & (fixed_used + size[h] <= model.cap)
                    if not fits.any():
                        continue
                    m = int(np.argmin(np.where(fits, cost[h], np.inf)))
            fixed[h] = m
            fixed_used[m] += size[h]
            placed += 1
        if placed == 0:
            return None
    plan = np.full(n_h, -1, dtype=np.int64)
    plan[fh[on]] = fm[on]
    return reflow_singles(model, plan, singles)  # it frees the single persons first


def _restricted_flow(
    size: np.ndarray,
    cost: np.ndarray,
    cost_u: int,
    tiers: tuple[np.ndarray, np.ndarray, np.ndarray],
    arc_h: np.ndarray,
    arc_m: np.ndarray,
    fixed: np.ndarray,
    n_m: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The min-cost flow over the given arcs, fixed households on their one arc: ``(household,
    municipality, persons)`` per arc and persons left out per household; None if infeasible."""
    n_h = len(size)
    free = fixed[arc_h] < 0
    on_fixed = np.flatnonzero(fixed >= 0)
    ah = np.concatenate([arc_h[free], on_fixed])
    am = np.concatenate([arc_m[free], fixed[on_fixed]])
    # Fixed households are never left out: their arc to the uncoupled node has no capacity.
    smcf = flow_network(
        size,
        n_m,
        ah,
        am,
        cost[ah, am].astype(np.int64),
        np.where(fixed < 0, size, 0),
        cost_u,
        tiers,
        int(size.sum()),
    )
    if smcf.solve() != smcf.OPTIMAL:
        return None
    q = smcf.flows(np.arange(len(ah) + n_h, dtype=np.int32))
    unc = q[len(ah) :].astype(np.int64)
    return ah, am, q[: len(ah)], unc
