"""The transportation relaxation, solved as a min-cost flow with column generation.

Without side constraints the LP relaxation of the coupling model is a transportation problem:
persons flow from households to municipalities at value ``value / size`` per person, into a sink
through fill-balance tiers (the first ``floor(target)`` persons earn the fill weight each).
Broken hard criteria and uncoupled persons carry per-person penalties that dominate the soft
objective. OR-tools' min-cost flow solves it exactly on integer costs.

Only a few candidate arcs per household are built (its best municipalities); node potentials of the
optimal flow, found by Bellman-Ford on the small municipality graph the residual network contracts
to, price every other pair, and violating arcs are added until none is left, or until what they
could still add is negligible: raising each household's potential by its worst violation makes
the potentials feasible for every pair, so the restricted flow's value plus that rise (times the
household's persons) is a proven bound as well (weak duality), and the last re-solve is saved.
The bound (corrected for cost rounding) is a proven upper bound for the full pair set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from coupler.blocks import row_blocks
from coupler.engine.mip import penalties
from coupler.errors import CouplerError
from coupler.model import CouplingModel

#: Cost scale: per-person values are rounded to 1 / SCALE.
SCALE = 1_000_000
#: Column generation stops once the pairs left out could add at most this fraction of the soft
#: score (the bound then includes it). Half year: the fifth min-cost flow (0.6-1 s) added one
#: arc and moved the value by 0.0036 of 18,260.8; it is no longer solved.
TOLERANCE = 1e-5


@dataclass(frozen=True, eq=False)
class FlowRelaxation:
    """An optimal flow of the relaxation, over the candidate pairs it needed.

    ``flow[k]`` persons of household ``arc_h[k]`` go to ``arc_m[k]``; ``uncoupled[h]`` persons of
    household h stay uncoupled. ``bound`` is a proven upper bound on the penalised objective
    ``soft - fill * shortfall - broken_penalty * broken - uncoupled_penalty * uncoupled`` of every
    plan (integral or not).
    """

    arc_h: np.ndarray
    arc_m: np.ndarray
    flow: np.ndarray
    uncoupled: np.ndarray
    bound: float
    broken_penalty: float
    uncoupled_penalty: float
    lp_broken: float
    lp_uncoupled: float
    reduced_cost: np.ndarray  # per candidate arc, scaled units (>= 0 at optimality)
    potential_m: np.ndarray  # municipality potentials (scaled units)
    potential_h: np.ndarray  # household potentials (scaled units)
    rounds: int
    seconds: float

    def reduced_value(self, model: CouplingModel) -> np.ndarray:
        """Per (household, municipality): how much coupling the whole household there costs
        against the relaxation's optimum, in objective units (>= 0; inf where forbidden).

        A plan that uses pair (h, m) is worth at most ``bound - reduced_value[h, m]``, so pairs
        whose reduced value exceeds the gap can be left out without losing a better plan.
        """
        size = model.size.astype(np.float64)
        # In place: one matrix of float64 (and a bool mask), not five.
        rc = scaled_cost(model, self.broken_penalty)
        with np.errstate(invalid="ignore"):
            rc += self.potential_h[:, None]
            rc -= self.potential_m[None, :]
            rc /= SCALE
            rc *= size[:, None]
        finite = np.isfinite(rc)
        np.maximum(rc, 0.0, out=rc)
        rc[~finite] = 0.0
        del finite
        rc[model.forbidden] = np.inf
        return rc

    def split_households(self) -> np.ndarray:
        """Households whose persons are spread over more than one place."""
        n_h = len(self.uncoupled)
        places = np.bincount(self.arc_h[self.flow > 0], minlength=n_h) + (self.uncoupled > 0)
        return np.flatnonzero(places > 1)

    def rounded_assignment(self) -> np.ndarray:
        """Municipality per household where the flow is integral; -2 for split households."""
        n_h = len(self.uncoupled)
        out = np.full(n_h, -1, dtype=np.int64)
        pos = self.flow > 0
        out[self.arc_h[pos]] = self.arc_m[pos]
        out[self.split_households()] = -2
        return out


def scaled_cost(model: CouplingModel, broken_penalty: float) -> np.ndarray:
    """Per-person cost of each pair in scaled integer units (minimisation), a block at a time.

    ``-rint(SCALE * (value / size - broken_penalty * breaks * broken_weight / size))``: breaking
    a household costs its weight in the shortage order's measure (default: persons). Forbidden
    pairs are not marked here.
    """
    return _scaled_cost_and_error(model, broken_penalty)[0]


def _scaled_cost_and_error(model: CouplingModel, broken_penalty: float) -> tuple[np.ndarray, float]:
    """:func:`scaled_cost`, and in the same pass the largest distance (scaled units) between a
    pair's cost and its rounding: at most 1/2, 0 when every cost is a whole number of units (as
    in batches without soft data)."""
    n_h, n_m = model.n_households, model.n_municipalities
    cost = np.empty((n_h, n_m))
    worst = 0.0
    for b in row_blocks(n_h, n_m):
        block = _unrounded_cost(model, broken_penalty, b)
        rounded = np.rint(block)
        block -= rounded
        worst = max(worst, float(np.abs(block).max(initial=0.0)))
        np.negative(rounded, out=cost[b])
    return cost, worst


def _unrounded_cost(model: CouplingModel, broken_penalty: float, rows: slice) -> np.ndarray:
    """``SCALE * (value / size - broken_penalty * breaks * broken_weight / size)`` for ``rows``
    (per person: the negated cost before rounding)."""
    size = model.size[rows].astype(np.int64)
    block = model.value[rows] / size[:, None]
    penalty = broken_penalty * (model.broken_weight[rows] / size)
    np.subtract(block, penalty[:, None], out=block, where=model.breaks[rows])
    block *= SCALE
    return block


def _spread(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Tie-breaking spread below half a cost unit for the pairs ``rows`` x ``cols``:
    ``((row * 7919 + col * 104729) mod 997) / 1994``, summed from the residues of row and
    column (the same integers, so the same numbers, in small integer arithmetic)."""
    r = (rows * 7919 % 997).astype(np.int16)
    c = (cols * 104729 % 997).astype(np.int16)
    s = r[:, None] + c[None, :]
    np.subtract(s, 997, out=s, where=s >= 997)
    return s / 1994.0


def _reduced_block(
    cost: np.ndarray,
    cand: np.ndarray,
    d_h: np.ndarray,
    d_m: np.ndarray,
    rows: slice | np.ndarray,
    cols: slice | np.ndarray,
) -> np.ndarray:
    """Reduced costs of the pairs ``rows`` x ``cols``; 0 for candidates and unpriced pairs.

    At most one of ``rows`` and ``cols`` is an index array (the other a slice), so the block is
    their cross product and only the block is copied.
    """
    c = cost[rows, cols]
    with np.errstate(invalid="ignore"):
        rc = c + d_h[rows][:, None]
        rc -= d_m[cols][None, :]
    mask = ~np.isfinite(c)
    mask |= cand[rows, cols]
    unpriced = ~np.isfinite(d_m[cols])
    if unpriced.any():
        mask |= unpriced[None, :]
    np.copyto(rc, 0.0, where=mask)
    return rc


def flow_penalties(model: CouplingModel) -> tuple[float, float]:
    """Per-person penalties (broken, uncoupled) in objective units for the relaxation."""
    broken, _ = penalties(model)
    # Leaving a person out must cost more than breaking any household's criteria per person.
    per_person = float((model.broken_weight / model.size).max()) if model.n_households else 1.0
    return broken, 4.0 * broken * max(1.0, per_person)


def flow_network(
    size: np.ndarray,
    n_m: int,
    arc_h: np.ndarray,
    arc_m: np.ndarray,
    arc_cost: np.ndarray,
    unc_arc_cap: np.ndarray,
    cost_u: int,
    tiers: tuple[np.ndarray, np.ndarray, np.ndarray],
    unc_cap: int,
    uncoupled: int | None = None,
) -> min_cost_flow.SimpleMinCostFlow:
    """The transportation network, ready to solve.

    Nodes: households ``0..n_h-1`` (supply: their persons), municipalities ``n_h..n_h+n_m-1``,
    the sink ``n_h+n_m`` and the uncoupled node after it. Arcs, in this order (so that
    ``flows`` can be read back by position): household to municipality (capacity its persons,
    ``arc_cost`` per person), one per household to the uncoupled node (capacity
    ``unc_arc_cap``, ``cost_u`` per person), the fill tiers into the sink, and the uncoupled
    node into the sink (capacity ``unc_cap``). With ``uncoupled``, exactly that many persons go
    through the uncoupled node.
    """
    n_h = len(size)
    tier_m, tier_cap, tier_cost = tiers
    sink, out = n_h + n_m, n_h + n_m + 1
    starts = np.concatenate([arc_h, np.arange(n_h), n_h + tier_m, [out]])
    ends = np.concatenate([n_h + arc_m, np.full(n_h, out), np.full(len(tier_m), sink), [sink]])
    caps = np.concatenate([size[arc_h], unc_arc_cap, tier_cap, [unc_cap]])
    costs = np.concatenate([arc_cost, np.full(n_h, cost_u), tier_cost, [0]])
    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(
        starts.astype(np.int32),
        ends.astype(np.int32),
        caps.astype(np.int64),
        costs.astype(np.int64),
    )
    total = int(size.sum())
    supplies = np.zeros(n_h + n_m + 2, dtype=np.int64)
    supplies[:n_h] = size
    supplies[sink] = -total
    if uncoupled is not None:
        supplies[sink] = -(total - uncoupled)
        supplies[out] = -uncoupled
    smcf.set_nodes_supplies(np.arange(len(supplies), dtype=np.int32), supplies)
    return smcf


def fill_tiers(model: CouplingModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arcs from each municipality into the sink: ``(municipality, capacity, scaled cost)``.

    The first ``floor(target)`` persons earn the fill weight each, a fractional rest of the
    target its share, and the rest of the capacity nothing.
    """
    n_m = model.n_municipalities
    t = np.minimum(model.target, model.cap)
    t_floor = np.floor(t + 1e-9).astype(np.int64)
    frac = t - t_floor
    has_frac = (frac > 1e-9) & (t_floor < model.cap)
    lam = model.fill_weight
    tier_m = np.concatenate([np.arange(n_m), np.arange(n_m), np.arange(n_m)])
    tier_cap = np.concatenate([t_floor, has_frac.astype(np.int64), model.cap - t_floor - has_frac])
    tier_cost = np.concatenate(
        [
            np.full(n_m, -round(lam * SCALE)),
            -np.rint(lam * frac * SCALE).astype(np.int64),
            np.zeros(n_m, np.int64),
        ]
    ).astype(np.int64)
    keep = tier_cap > 0
    return tier_m[keep], tier_cap[keep], tier_cost[keep]


def solve_relaxation(
    model: CouplingModel,
    *,
    arcs_per_household: int = 10,
    add_per_round: int = 6,
    max_rounds: int = 50,
    uncoupled: int | None = None,
    broken_penalty: float | None = None,
    tolerance: float = TOLERANCE,
) -> FlowRelaxation:
    """Solve the transportation relaxation of ``model`` (see the module docstring).

    Column generation stops when the pairs left out could add at most ``tolerance`` times the
    flow's soft score to its value (0: only when none is left); ``bound`` includes what they
    could add, so it stays a proven upper bound for every pair.

    With ``uncoupled`` given, exactly that many persons stay uncoupled (stage 1's minimum when
    integral plans need more than the relaxation), which keeps the bound tight.
    ``broken_penalty`` replaces the dominating per-person penalty on broken criteria (the
    engine's Lagrangian bound for a budget of broken persons uses smaller ones).
    """
    t0 = time.perf_counter()
    n_h, n_m = model.n_households, model.n_municipalities
    size = model.size.astype(np.int64)
    P = int(size.sum())
    pen_b, pen_u = flow_penalties(model)
    if broken_penalty is not None:
        pen_b = float(broken_penalty)
    # Per-person cost matrix in scaled integer units (minimisation); forbidden pairs excluded.
    cost, cost_error = _scaled_cost_and_error(model, pen_b)
    cost[model.forbidden] = np.inf
    cost_u = int(round(pen_u * SCALE))

    lam = model.fill_weight
    tier_m, tier_cap, tier_cost = fill_tiers(model)

    # Initial candidates: each household's best arcs. Costs are whole units; a spread below half
    # a unit breaks ties (batches without soft data) towards different places per household.
    # Full-size temporaries are avoided: the matrices are worked through a block of rows at a
    # time (each row, and below each column, is ranked on its own, so the result is the same).
    k0 = min(arcs_per_household, n_m)
    all_h, all_m = np.arange(n_h), np.arange(n_m)
    cand = np.zeros((n_h, n_m), dtype=bool)
    for b in row_blocks(n_h, n_m):
        rows_b = all_h[b]
        best = (
            np.argpartition(cost[b] + _spread(rows_b, all_m), k0 - 1, axis=1)[:, :k0]
            if k0 < n_m
            else np.tile(all_m, (len(rows_b), 1))
        )
        cand[rows_b[:, None], best] = True
        cand[b] &= np.isfinite(cost[b])

    # The uncoupled option's huge cost slows the cost-scaling solver down; leave it out while the
    # candidate arcs alone can carry everybody, and bring it in when they cannot.
    with_unc = uncoupled is not None or int(model.cap.sum()) < 1.1 * P
    rounds = 0
    dense = False
    while True:
        rounds += 1
        arc_h, arc_m = np.nonzero(cand)
        arc_cost = cost[arc_h, arc_m].astype(np.int64)
        n_a = len(arc_h)
        unc_cap = P if uncoupled is None else 0
        unc_arc_cap = size if with_unc else np.zeros(n_h, dtype=np.int64)
        smcf = flow_network(
            size,
            n_m,
            arc_h,
            arc_m,
            arc_cost,
            unc_arc_cap,
            cost_u if with_unc else 0,
            (tier_m, tier_cap, tier_cost),
            unc_cap,
            uncoupled,
        )
        status = smcf.solve()
        if status == smcf.INFEASIBLE and not with_unc:
            with_unc = True
            continue
        if status == smcf.INFEASIBLE and not dense:
            # With exactly ``uncoupled`` persons left out, the candidate arcs alone may not
            # carry everybody else: price nothing, use every usable pair once.
            cand = np.isfinite(cost)
            dense = True
            continue
        if status != smcf.OPTIMAL:
            raise CouplerError(f"min-cost flow failed with status {status}")
        flows = smcf.flows(np.arange(n_a + n_h + len(tier_m) + 1, dtype=np.int32))
        f_arc = flows[:n_a]
        f_unc = flows[n_a : n_a + n_h]
        f_tier = flows[n_a + n_h : n_a + n_h + len(tier_m)]
        f_uncT = flows[-1]

        d_m, d_unc = _potentials(
            n_h,
            n_m,
            arc_h,
            arc_m,
            arc_cost,
            f_arc,
            size,
            f_unc,
            cost_u,
            tier_m,
            tier_cap,
            tier_cost,
            f_tier,
            f_uncT,
            unc_cap,
            unc_arc_cap,
        )
        # Household potential: through any arc that carries its flow.
        d_h = np.full(n_h, np.inf)
        carry = f_arc > 0
        np.minimum.at(d_h, arc_h[carry], d_m[arc_m[carry]] - arc_cost[carry])
        has_u = f_unc > 0
        d_h[has_u] = np.minimum(d_h[has_u], d_unc - cost_u)
        # A municipality no household can reach yet has no potential: give it arcs from the
        # households that value it most (every household carries flow, so all are reachable).
        unreachable = np.flatnonzero(~np.isfinite(d_m))
        if len(unreachable) and rounds < max_rounds:
            k = min(3, n_h)
            sub = cost[:, unreachable]
            best_h = (
                np.argpartition(sub, k - 1, axis=0)[:k]
                if k < n_h
                else np.tile(np.arange(n_h)[:, None], (1, len(unreachable)))
            )
            add_h = best_h.ravel()
            add_m = np.tile(unreachable, k)
            ok = np.isfinite(cost[add_h, add_m])
            if ok.any() and not cand[add_h[ok], add_m[ok]].all():
                cand[add_h[ok], add_m[ok]] = True
                continue
        # Price every pair not yet a candidate, a block of rows at a time, and pick each
        # violated household's best new arcs on the way. New arcs are added only after the
        # column pass below, which prices against the same candidate set.
        viol_h = np.zeros(n_h, dtype=bool)
        viol_m = np.zeros(n_m, dtype=bool)
        # Per household: by how much (scaled units per person) its potential must rise for
        # every pair to price out.
        rise = np.zeros(n_h)
        new_h: list[np.ndarray] = []
        new_m: list[np.ndarray] = []
        k = min(add_per_round, n_m)
        for b in row_blocks(n_h, n_m):
            rc = _reduced_block(cost, cand, d_h, d_m, b, slice(None))
            viol = rc < -0.5
            viol_h[b] = viol.any(axis=1)
            np.maximum(-rc.min(axis=1, initial=0.0), 0.0, out=rise[b])
            viol_m |= viol.any(axis=0)
            local = np.flatnonzero(viol_h[b])
            if len(local) == 0 or dense:
                continue
            rb = all_h[b][local]
            sub = rc[local] + _spread(rb, all_m)
            pick = (
                np.argpartition(sub, k - 1, axis=1)[:, :k]
                if k < n_m
                else np.tile(all_m, (len(rb), 1))
            )
            ok = sub[np.arange(len(rb))[:, None], pick] < -0.5
            new_h.append(np.repeat(rb, k)[ok.ravel()])
            new_m.append(pick.ravel()[ok.ravel()])
        if not viol_h.any() or dense:
            rise[:] = 0.0
            break
        if (
            np.isfinite(d_m).all()
            and np.isfinite(d_h).all()
            and float(rise @ size)
            <= tolerance * SCALE * max(1.0, abs(_soft(model, arc_h, arc_m, f_arc)))
        ):
            # What the pairs left out could add is negligible: keep this flow; its potentials,
            # raised by ``rise``, price every pair (the bound below adds the rise).
            break
        if rounds >= max_rounds:
            # Safety net: every usable pair at once; that flow is optimal by construction.
            cand = np.isfinite(cost)
            dense = True
            continue
        # Also the best households of every violated municipality: with tied costs (no soft
        # data) the rows alone all pick the same few places and would need a round per place.
        # A block of columns at a time, every household in each.
        cols = np.flatnonzero(viol_m)
        k = min(add_per_round, n_h)
        for b in row_blocks(len(cols), n_h):
            cb = cols[b]
            sub = _reduced_block(cost, cand, d_h, d_m, slice(None), cb) + _spread(all_h, cb)
            pick = (
                np.argpartition(sub, k - 1, axis=0)[:k]
                if k < n_h
                else np.tile(all_h[:, None], (1, len(cb)))
            )
            ok = sub[pick, np.arange(len(cb))[None, :]] < -0.5
            new_h.append(pick[ok])
            new_m.append(np.tile(cb, (k, 1))[ok])
        cand[np.concatenate(new_h), np.concatenate(new_m)] = True

    # Value of this flow in true (unrounded) units, then the rounding allowance.
    f = f_arc.astype(np.float64)
    soft = _soft(model, arc_h, arc_m, f_arc)
    broken = float((model.breaks[arc_h, arc_m] * f * (model.broken_weight / size)[arc_h]).sum())
    unc = float(f_unc.sum())
    assigned = np.bincount(arc_m, weights=f, minlength=n_m)
    shortfall = float(np.maximum(model.target - assigned, 0.0).sum())
    value = soft - lam * shortfall - pen_b * broken - pen_u * unc
    # The flow is optimal for the rounded costs. Against any other flow g, its true value can
    # fall short by at most the rounding on f's arcs plus that on g's: per person one household
    # arc and one fill tier's arc (or the uncoupled arc), plus the fractional tiers (one person
    # each). Batches without soft data round nothing on household arcs, so their bound is exact
    # up to the fractional fill targets (was P / SCALE: a 4.9 % gap on an objective of 0).
    # Raising each household's potential by its rise makes the potentials feasible for every
    # pair: the dual objective, and so the bound, grows by the rise times its persons.
    d_h = d_h + rise
    bound = value + float(rise @ size) / SCALE
    bound += _rounding_allowance(model, cost_error, cost_u, pen_u, P)
    # An arc between a household and a municipality both without a finite potential (the
    # household's flow goes through no arc whose municipality is reachable, e.g. all of it
    # uncoupled) has no defined reduced cost: it counts as never worth using.
    with np.errstate(invalid="ignore"):
        rc_arc = arc_cost + d_h[arc_h] - d_m[arc_m]
    rc_arc[np.isnan(rc_arc)] = np.inf
    return FlowRelaxation(
        arc_h=arc_h,
        arc_m=arc_m,
        flow=f_arc.astype(np.int64),
        uncoupled=f_unc.astype(np.int64),
        bound=bound,
        broken_penalty=pen_b,
        uncoupled_penalty=pen_u,
        lp_broken=broken,
        lp_uncoupled=unc,
        reduced_cost=rc_arc,
        potential_m=d_m,
        potential_h=d_h,
        rounds=rounds,
        seconds=time.perf_counter() - t0,
    )


def _soft(model: CouplingModel, arc_h: np.ndarray, arc_m: np.ndarray, f_arc: np.ndarray) -> float:
    """The soft score of a flow (persons times the per-person value of their pair)."""
    f = f_arc.astype(np.float64)
    return float((model.value[arc_h, arc_m] / model.size[arc_h] * f).sum())


def _rounding_allowance(
    model: CouplingModel, cost_error: float, cost_u: int, pen_u: float, persons: int
) -> float:
    """What rounding costs to whole scaled units can hide of the relaxation's optimum, in
    objective units (see the end of :func:`solve_relaxation`); ``cost_error``: the largest
    rounding of a household arc's cost (:func:`_scaled_cost_and_error`)."""
    lam = model.fill_weight
    t = np.minimum(model.target, model.cap)
    frac = t - np.floor(t + 1e-9)
    lam_s = lam * SCALE
    e_floor = abs(lam_s - round(lam_s))
    frac_s = lam * frac[frac > 1e-9] * SCALE
    e_frac = float(np.abs(frac_s - np.rint(frac_s)).sum())
    e_u = abs(pen_u * SCALE - cost_u)
    per_person = max(cost_error + e_floor, e_u)
    return 2.0 * (persons * per_person + e_frac) / SCALE


def _potentials(
    n_h: int,
    n_m: int,
    arc_h: np.ndarray,
    arc_m: np.ndarray,
    arc_cost: np.ndarray,
    f_arc: np.ndarray,
    size: np.ndarray,
    f_unc: np.ndarray,
    cost_u: int,
    tier_m: np.ndarray,
    tier_cap: np.ndarray,
    tier_cost: np.ndarray,
    f_tier: np.ndarray,
    f_uncT: int,
    P: int,
    unc_arc_cap: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Shortest-path distances from the sink in the residual network, contracted to places.

    Places are the municipalities, the uncoupled node and the sink. A household h carrying flow at
    place a links a to every place b it still has residual capacity to, at cost c(h,b) - c(h,a).
    """
    UNC, T = n_m, n_m + 1
    n = n_m + 2
    W = np.full((n, n), np.inf)
    # Arcs of households, with the uncoupled option as place UNC.
    hh = np.concatenate([arc_h, np.arange(n_h)])
    pl = np.concatenate([arc_m, np.full(n_h, UNC)])
    cc = np.concatenate([arc_cost, np.full(n_h, cost_u)]).astype(np.float64)
    ff = np.concatenate([f_arc, f_unc])
    carry = ff > 0
    resid = ff < np.concatenate([size[arc_h], unc_arc_cap])
    # Pair every residual arc of a household with every carrying arc of the same household.
    order = np.argsort(hh[carry], kind="stable")
    c_h, c_pl, c_cc = hh[carry][order], pl[carry][order], cc[carry][order]
    starts = np.searchsorted(c_h, np.arange(n_h))
    counts = np.bincount(c_h, minlength=n_h)
    r_h, r_pl, r_cc = hh[resid], pl[resid], cc[resid]
    for j in range(int(counts.max()) if len(counts) else 0):
        has = counts[r_h] > j
        src = starts[r_h[has]] + j
        a, b = c_pl[src], r_pl[has]
        w = r_cc[has] - c_cc[src]
        ok = a != b
        np.minimum.at(W, (a[ok], b[ok]), w[ok])
    # Tier arcs place -> sink, and back where they carry flow.
    fwd = f_tier < tier_cap
    np.minimum.at(W, (tier_m[fwd], np.full(int(fwd.sum()), T)), tier_cost[fwd].astype(float))
    back = f_tier > 0
    np.minimum.at(W, (np.full(int(back.sum()), T), tier_m[back]), -tier_cost[back].astype(float))
    if f_uncT < P:
        W[UNC, T] = min(W[UNC, T], 0.0)
    if f_uncT > 0:
        W[T, UNC] = min(W[T, UNC], 0.0)
    # Bellman-Ford from the sink (no negative cycles at optimality).
    d = np.full(n, np.inf)
    d[T] = 0.0
    for _ in range(n):
        nd = np.minimum(d, (d[:, None] + W).min(axis=0))
        if np.array_equal(nd, d):
            break
        d = nd
    return d[:n_m], float(d[UNC])
