"""Large-neighbourhood search: free a window of municipalities and re-solve it exactly.

A window is a seed municipality and its nearest neighbours. Every household coupled inside the
window is freed, together with households elsewhere (and uncoupled ones) whose best usable place
lies in the window; everybody else stays fixed. The MIP over the freed households' usable pairs
inside the window (plus each one's current place) is solved by the backend, warm-started from the
current plan, under the budgets the plan already meets (broken and uncoupled persons among the
freed households), so a window's answer is never worse. Windows are tried in order of how much
they could gain, until the plan is within the gap target of the bound, a full cycle brings
nothing, or the window count is used up (the deadline is only a safety net).

:func:`improve_reduced_windows` grows its windows along the relaxation's reduced costs instead of
the map (fill-balance batches, where the loss lies in how whole households meet the targets).

Every window MIP carries the model's rows with the rest of the plan fixed, bands and dwelling
capacities included, so a plan that meets the side constraints keeps meeting them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from coupler.engine.base import MipBackend, MipProblem, MipSolution
from coupler.engine.mip import MipLayout, build_mip
from coupler.model import CouplingModel

#: Municipalities per window.
WINDOW = 12
#: At most this many households are freed per window (the MIP stays small).
MAX_FREE = 300
#: Windows per search. A count, not a clock, bounds the search, so that the same inputs and seed
#: give the same plan on a busy machine too (the deadline only guards against runaway time).
MAX_WINDOWS = 200
#: The search stops after this many windows in a row without a gain.
STALL = 150
#: Seconds per window MIP; a safety limit that small windows do not reach.
WINDOW_SECONDS = 5.0
#: Branch-and-bound nodes per window MIP: the work limit that stops a hard window the same way on
#: every machine.
WINDOW_NODES = 200


def improve_windows(
    model: CouplingModel,
    assignment: np.ndarray,
    backend: MipBackend,
    *,
    bound: float,
    gap: float,
    deadline: float,
    seed: int,
    allow_broken: bool,
    max_windows: int = MAX_WINDOWS,
    say: Callable[[str], None] = lambda _: None,
    on_time_limit: Callable[[], None] = lambda: None,
) -> np.ndarray:
    """Return a plan at least as good as ``assignment`` (objective, same or fewer broken and
    uncoupled persons); ``assignment`` is not changed.

    Counts bound the search (``max_windows``, ``STALL``, ``WINDOW_NODES`` per window), so the
    plan does not depend on the machine's speed. ``deadline`` (a ``time.perf_counter()`` value)
    and ``WINDOW_SECONDS`` are safety nets; ``on_time_limit`` is called when one of them cut the
    search short (the plan may then differ between runs)."""
    a = np.asarray(assignment, dtype=np.int64).copy()
    n_m = model.n_municipalities
    usable = ~model.forbidden & (model.allowed | ~model.has_hard[:, None])
    if allow_broken:
        usable = ~model.forbidden
    dist = model.instance.distance_km
    best_place = np.where(usable, model.value, -np.inf).argmax(axis=1)

    current = model.evaluate(a).objective
    order = _seeds(model, a, usable, seed)
    tried_without_gain = 0
    rounds = 0
    while rounds < max_windows and tried_without_gain < STALL:
        if max(0.0, bound - current) / max(1.0, abs(current)) <= gap:
            break
        if time.perf_counter() >= deadline - 0.05:
            on_time_limit()
            break
        on = a >= 0
        assigned = np.bincount(a[on], weights=model.size[on], minlength=n_m)
        short = model.target - assigned
        if model.fill_weight > 0 and rounds % 2 == 1 and (short > 0.5).any():
            # A fill window: places short of their target with the places most over theirs.
            k = rounds // 2
            deficit = np.flatnonzero(short > 0.5)
            deficit = np.roll(deficit[np.argsort(-short[deficit], kind="stable")], -k * WINDOW // 2)
            excess = np.argsort(short, kind="stable")
            excess = np.roll(excess[short[excess] < -0.5], -k * WINDOW // 2)
            window = np.unique(np.concatenate([deficit[: WINDOW // 2], excess[: WINDOW // 2]]))
        else:
            centre = int(order[(rounds // 2) % n_m])
            window = np.argsort(dist[centre], kind="stable")[:WINDOW]
        rounds += 1
        in_window = np.zeros(n_m, dtype=bool)
        in_window[window] = True
        on = a >= 0
        inside = np.flatnonzero(on & in_window[np.maximum(a, 0)])
        coming = np.flatnonzero((~on | ~in_window[np.maximum(a, 0)]) & in_window[best_place])
        free = np.union1d(inside, coming)
        if len(free) > MAX_FREE:
            # Keep the households that could gain most by moving.
            gain = model.value[free, best_place[free]] - np.where(
                a[free] >= 0, model.value[free, np.maximum(a[free], 0)], 0.0
            )
            free = np.sort(free[np.argsort(-gain, kind="stable")[:MAX_FREE]])
        if len(free) == 0:
            tried_without_gain += 1
            continue
        sub_h, sub_m = np.nonzero(usable[free][:, window])
        limit = min(WINDOW_SECONDS, deadline - time.perf_counter())
        if limit < 0.05:
            on_time_limit()
            break
        found = _reoptimise(
            model,
            a,
            free,
            free[sub_h],
            window[sub_m],
            backend,
            seed=seed,
            limit=limit,
            on_time_limit=on_time_limit,
        )
        if found is not None and found[1] > current + 1e-9:
            (a, current), tried_without_gain = found, 0
        else:
            tried_without_gain += 1
    say(f"window search: {rounds} windows, objective {current:,.4f}")
    return a


#: Reduced-cost windows: municipalities per window, households freed at most, windows per
#: search, and windows in a row without a gain after which the search stops.
RC_WINDOW = 15
RC_MAX_FREE = 300
RC_MAX_WINDOWS = 80
RC_STALL = 30
#: Windows solved at the same time, each in its own thread (HiGHS releases the GIL while it
#: solves): the next windows in line whose municipalities are disjoint from those taken, among
#: the first RC_CANDIDATES in line; a household freed by one is fixed in the next. Their results
#: are applied one after the other, each only when the whole plan then still improves and keeps
#: every row. Only with HiGHS (checked: the same answers from two threads as from one); other
#: backends solve one window at a time.
RC_PARALLEL = 2
RC_CANDIDATES = 8


def improve_reduced_windows(
    model: CouplingModel,
    assignment: np.ndarray,
    backend: MipBackend,
    reduced: np.ndarray,
    *,
    bound: float,
    gap: float,
    deadline: float,
    seed: int,
    allow_broken: bool,
    max_windows: int = RC_MAX_WINDOWS,
    near_cost: float | None = None,
    say: Callable[[str], None] = lambda _: None,
    on_time_limit: Callable[[], None] = lambda: None,
) -> np.ndarray:
    """Like :func:`improve_windows`, with windows that follow the relaxation's reduced costs.

    ``reduced[h, m]`` is what coupling household h to m costs against the relaxation's optimum
    (:meth:`~coupler.engine.flow.FlowRelaxation.reduced_value`). A pair is *near* when that cost
    is at most the plan's gap per household: a better plan must use mostly near pairs. A window
    starts at the municipality whose households cost most against the relaxation (plus its fill
    shortfall) and grows along the near pairs of the households placed in it, so it holds the
    places between which households can trade persons cheaply, wherever they lie. Its freed
    households are those placed inside and those with a near pair into it; only near pairs are
    offered. Single persons are continuous in the window MIP when no freed household breaks a
    criterion (their part is a transportation problem, integral at a vertex; a fractional
    answer is refused). Counts bound the search, as in :func:`improve_windows`.

    With HiGHS, up to ``RC_PARALLEL`` windows that share no municipality are solved at the same
    time, one thread each (a household freed by one is fixed in the next). Their results are
    applied in line order, each only when the whole plan then gains and keeps every capacity,
    ban and side row. Every window MIP is node-limited and single-threaded, so the plan does not
    depend on which thread ends first.
    """
    a = np.asarray(assignment, dtype=np.int64).copy()
    n_h, n_m = model.n_households, model.n_municipalities
    usable = ~model.forbidden if allow_broken else ~model.forbidden & ~model.breaks
    current = model.evaluate(a).objective
    per_household = max(bound - current, 0.0) / max(n_h, 1) if near_cost is None else near_cost
    near = usable & (reduced <= max(per_household, 1e-9))
    singles = model.size == 1
    tie = np.random.default_rng(seed).permutation(n_m)
    tried = np.zeros(n_m, dtype=bool)
    rounds = stalled = 0
    side_by_side = RC_PARALLEL if backend.name == "highs" else 1
    with ThreadPoolExecutor(max_workers=side_by_side) as pool:
        while rounds < max_windows and stalled < RC_STALL:
            if max(0.0, bound - current) / max(1.0, abs(current)) <= gap:
                break
            limit = min(WINDOW_SECONDS, deadline - time.perf_counter())
            if limit < 0.05:
                on_time_limit()
                break
            on = a >= 0
            at = np.flatnonzero(on)
            assigned = np.bincount(a[at], weights=model.size[at], minlength=n_m)
            loss: np.ndarray = np.bincount(a[at], weights=reduced[at, a[at]], minlength=n_m)
            loss = loss + model.fill_weight * np.maximum(model.target - assigned, 0.0)
            order = np.lexsort((tie, -loss))
            order = order[~tried[order]]
            if len(order) == 0:
                break
            batch = _disjoint_windows(
                model,
                a,
                near,
                reduced,
                order[:RC_CANDIDATES],
                min(side_by_side, max_windows - rounds),
            )
            tried[[start for start, _, _, _ in batch]] = True
            rounds += len(batch)
            mips = [_window_mip(model, a, free, ph, pm, relax=singles) for _, free, ph, pm in batch]
            solve_one = partial(
                backend.solve, time_limit=limit, gap=0.0, seed=seed, max_nodes=WINDOW_NODES
            )
            sols = list(pool.map(solve_one, [problem for problem, _ in mips]))
            gained = False
            for (_, free, _, _), (_, layout), sol in zip(batch, mips, sols, strict=True):
                if sol.hit_time_limit:
                    on_time_limit()
                found = _read_window(model, a, free, sol, layout)
                # A window's MIP keeps every row with the rest of the plan fixed; one applied
                # after another of the same batch is checked on the whole plan.
                if (
                    found is not None
                    and found[1] > current + 1e-9
                    and model.keeps_capacities(found[0])
                    and model.meets_side_rows(found[0])
                ):
                    (a, current), gained = found, True
                    stalled = 0
                else:
                    stalled += 1
            if gained:
                tried[:] = False
    say(f"reduced-cost window search: {rounds} windows, objective {current:,.4f}")
    return a


def _disjoint_windows(
    model: CouplingModel,
    a: np.ndarray,
    near: np.ndarray,
    reduced: np.ndarray,
    starts: np.ndarray,
    count: int,
) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Up to ``count`` windows grown from ``starts`` in order (the first always), each sharing no
    municipality with those before it; households freed by one before are left out of the next
    one's ``free`` (fixed there). Each as ``(start, free, ph, pm)``."""
    n_m = model.n_municipalities
    on = a >= 0
    taken_m = np.zeros(n_m, dtype=bool)
    taken_h = np.zeros(model.n_households, dtype=bool)
    out: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    for start in starts:
        if len(out) >= count:
            break
        window = _grow(a, near, int(start))
        if taken_m[window].any():
            continue
        in_window = np.zeros(n_m, dtype=bool)
        in_window[window] = True
        inside = np.flatnonzero(on & in_window[np.maximum(a, 0)])
        coming = np.flatnonzero(~(on & in_window[np.maximum(a, 0)]) & near[:, window].any(axis=1))
        room = max(RC_MAX_FREE - len(inside), 0)
        if len(coming) > room:
            cheapest = np.where(near[coming][:, window], reduced[coming][:, window], np.inf).min(1)
            coming = np.sort(coming[np.argsort(cheapest, kind="stable")[:room]])
        free = np.union1d(inside, coming)
        free = free[~taken_h[free]]  # freed by a window before: fixed in this one
        if len(free) == 0:
            continue
        taken_m[window] = True
        taken_h[free] = True
        sub_h, sub_m = np.nonzero(near[free][:, window])
        out.append((int(start), free, free[sub_h], window[sub_m]))
    return out


def _grow(a: np.ndarray, near: np.ndarray, start: int) -> np.ndarray:
    """Municipalities reached from ``start`` along the near pairs of the households placed in
    each (breadth first, the places most such pairs lead to first), at most ``RC_WINDOW``."""
    n_m = near.shape[1]
    taken = np.zeros(n_m, dtype=bool)
    taken[start] = True
    window = [start]
    queue = [start]
    while queue and len(window) < RC_WINDOW:
        here = near[a == queue.pop(0)]
        counts = here.sum(axis=0)
        counts[taken] = 0
        for m in np.argsort(-counts, kind="stable"):
            if counts[m] == 0 or len(window) >= RC_WINDOW:
                break
            taken[m] = True
            window.append(int(m))
            queue.append(int(m))
    return np.array(window, dtype=np.int64)


def _seeds(model: CouplingModel, a: np.ndarray, usable: np.ndarray, seed: int) -> np.ndarray:
    """Municipalities in the order their windows are tried: most to gain first.

    A municipality's pressure is its fill shortfall (times the fill weight) plus, over the
    households whose best usable place it is, how much they would gain by moving there. Ties
    follow a seeded shuffle.
    """
    n_m = model.n_municipalities
    on = a >= 0
    assigned = np.bincount(a[on], weights=model.size[on], minlength=n_m)
    pressure = model.fill_weight * np.maximum(model.target - assigned, 0.0)
    best = np.where(usable, model.value, -np.inf)
    place = best.argmax(axis=1)
    now = np.where(on, model.value[np.arange(len(a)), np.maximum(a, 0)], 0.0)
    gain = np.maximum(best[np.arange(len(a)), place] - now, 0.0)
    pressure += np.bincount(place, weights=np.where(np.isfinite(gain), gain, 0.0), minlength=n_m)
    tie = np.random.default_rng(seed).permutation(n_m)
    return np.lexsort((tie, -pressure))


def _reoptimise(
    model: CouplingModel,
    a: np.ndarray,
    free: np.ndarray,
    ph: np.ndarray,
    pm: np.ndarray,
    backend: MipBackend,
    *,
    seed: int,
    limit: float,
    on_time_limit: Callable[[], None],
    relax: np.ndarray | None = None,
) -> tuple[np.ndarray, float] | None:
    """Re-solve the ``free`` households over pairs ``(ph, pm)`` (plus each one's current place)
    exactly, everybody else fixed, under the broken and uncoupled budgets the freed households
    meet now. Returns the new plan and its objective when it keeps those budgets, else None."""
    problem, layout = _window_mip(model, a, free, ph, pm, relax=relax)
    sol = backend.solve(problem, time_limit=limit, gap=0.0, seed=seed, max_nodes=WINDOW_NODES)
    if sol.hit_time_limit:
        on_time_limit()
    return _read_window(model, a, free, sol, layout)


def _window_mip(
    model: CouplingModel,
    a: np.ndarray,
    free: np.ndarray,
    ph: np.ndarray,
    pm: np.ndarray,
    *,
    relax: np.ndarray | None,
) -> tuple[MipProblem, MipLayout]:
    """The MIP of one window (see :func:`_reoptimise`), warm-started from ``a``."""
    n_m = model.n_municipalities
    coupled = free[a[free] >= 0]
    ph = np.concatenate([ph, coupled])
    pm = np.concatenate([pm, a[coupled]])
    pairs = np.unique(ph * n_m + pm)
    ph, pm = pairs // n_m, pairs % n_m
    free_broken = int(model.broken_weight[coupled][model.breaks[coupled, a[coupled]]].sum())
    free_unc = int(model.size[free][a[free] < 0].sum())
    return build_mip(
        model,
        ph,
        pm,
        fixed=a,
        objective="soft",
        allow_uncoupled=free_unc > 0,
        max_broken=free_broken,
        max_uncoupled=free_unc,
        start=a,
        # A budget row on broken persons would make relaxed singles split; keep them integral.
        relax=relax if free_broken == 0 else None,
    )


def _read_window(
    model: CouplingModel, a: np.ndarray, free: np.ndarray, sol: MipSolution, layout: MipLayout
) -> tuple[np.ndarray, float] | None:
    """``a`` with the ``free`` households placed as a window MIP's solution says, and its
    objective; None when there is no solution, a relaxed single is split, or the plan has more
    uncoupled or broken persons than ``a``."""
    if sol.x is None:
        return None
    x = sol.x[: layout.n_x]
    if np.abs(x - np.round(x)).max(initial=0.0) > 1e-6:
        return None  # a relaxed single split (not a vertex): refuse rather than round
    plan = a.copy()
    plan[free] = layout.assignment(sol.x, model.n_households)[free]
    new, old = model.evaluate(plan), model.evaluate(a)
    if (new.uncoupled_persons, new.broken_measure) > (old.uncoupled_persons, old.broken_measure):
        return None
    return plan, new.objective
