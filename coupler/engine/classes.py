"""An exact, smaller MIP: municipalities that look alike to every household are one class.

Two municipalities belong to one *class* when every household sees them the same: the same soft
value, the same usable pairs and the same broken criteria (their columns of ``value``,
``forbidden`` and ``breaks`` are equal). Batches scored per labour-market region (participation
scores, labour demand) have one class per region, or a few when hard criteria cut a region by
distance; with soft parts that differ per municipality every class is one municipality.

Within a class only the capacities (and fill targets) differ, so which municipality of the class
a household gets does not change the objective: what matters is whether the households given to
the class can be *packed* into its municipalities. The model is therefore exact with

* ``x[h, k]``: household h goes to class k (binary, one per usable pair);
* per class of several municipalities, an *arc-flow* packing network (Valério de Carvalho's
  formulation of bin packing): one path per municipality from node (first level, 0) through
  "take one more household of size s" arcs, level by level from the largest size down (so each
  multiset of sizes is one path, without order symmetry), to the municipality's kind
  (capacity, fill target) at its number of persons; the households of size s given to the class
  equal the flow on its size-s arcs;
* a class of one municipality keeps the plain capacity row (and the fill-shortfall column).

An integral flow splits into paths, one per municipality, and the households of each size are
then placed on the paths' slots (any household fits any slot of its size: the class's
municipalities look alike to it). So every solution is a plan of the same objective, and the
LP relaxation is a valid bound that is usually much stronger than the transportation relaxation
(it sees whole households and the packing).

Its MIPs are another matter: HiGHS spends seconds in root cuts on the packing networks (22 s on
a 1,600-person batch whose MIP had 961 household-class pairs). The MIPs that look for plans
therefore use the *count form* of the same model (:func:`build_count_model`): ``y[m, s]``
households of size s at member m, a capacity row per member. Households of one size are
interchangeable within a class, so it is exact too; its LP is weaker, but the bound comes from
the arc-flow LP. :func:`improve_by_classes` uses both: the arc-flow LP gives the bound and
reduced costs; a first count MIP over the pairs the LP uses (and the current plan's) often finds
a plan within the gap target already; count MIPs over the pairs whose reduced cost is small,
warm-started from the current plan, give better plans; once every pair that could still pay off
is in, the MIP's own bound is valid for the whole model.

Side constraints (bands, dwelling types) are not expressible per class; the engine calls this
only without them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from coupler.engine.base import MipBackend, MipProblem, MipSolution
from coupler.model import CouplingModel, restrict

#: Members of a class whose capacity exceeds this many persons are classes of their own (plain
#: capacity rows): their packing networks would be large and capacity rarely binds there.
MAX_PACKING_CAPACITY = 250
#: The class model is built only up to this many household-class columns.
MAX_COLUMNS = 250_000
#: Branch-and-bound nodes per improving MIP (a work limit: the same plan on every machine).
MIP_NODES = 1_000
#: Nodes of the first MIP, over the class LP's support only (0: skip it).
SUPPORT_NODES = 200
#: The first improving MIP keeps at most this many pairs per household (the cheapest by reduced
#: cost, at least MIN_PAIRS in all); each next one twice as many.
FIRST_PAIRS_PER_HOUSEHOLD = 5.0
MIN_PAIRS = 2_000
#: At most this many improving MIPs, and together at most this many pair columns per
#: household (at least PAIRS_BUDGET_MIN): work limits, so that plans do not depend on the clock.
MAX_ROUNDS = 5
PAIRS_BUDGET_PER_HOUSEHOLD = 20
PAIRS_BUDGET_MIN = 8_000
#: Windows of classes (see improve_class_windows): how many, nodes and seconds per window.
CLASS_WINDOWS = 60
CLASS_WINDOW_NODES = 300
CLASS_WINDOW_SECONDS = 5.0


@dataclass(frozen=True, eq=False)
class _Packing:
    """The arc-flow network of one class of several municipalities (column offsets into x)."""

    members: np.ndarray  # municipality indices
    sizes: np.ndarray  # household sizes, largest first (one level each)
    width: int  # nodes per level: 0..width-1 persons
    item_level: np.ndarray
    item_from: np.ndarray
    item_col: int  # first column of the size arcs
    down_level: np.ndarray
    down_at: np.ndarray
    down_col: int
    end_at: np.ndarray
    end_kind: np.ndarray
    end_col: int
    kinds: np.ndarray  # (capacity, target) per kind


@dataclass(frozen=True, eq=False)
class ClassModel:
    """The class MIP of a model and how to read a plan from (or write one into) its columns."""

    problem: MipProblem
    classes: tuple[np.ndarray, ...]  # municipalities per class
    pair_h: np.ndarray  # household per x column
    pair_k: np.ndarray  # class per x column
    class_of: np.ndarray  # class per municipality
    packings: dict[int, _Packing]
    u_col: int  # first uncoupled column, -1 if none
    n_households: int
    shortfall_col: dict[int, int]  # fill-shortfall column per single-municipality class

    @property
    def n_x(self) -> int:
        return int(len(self.pair_h))

    def assignment(self, model: CouplingModel, x: np.ndarray) -> np.ndarray:
        """The plan of an integral solution ``x`` (municipality per household, -1 uncoupled)."""
        out = np.full(self.n_households, -1, dtype=np.int64)
        on = x[: self.n_x] > 0.5
        size = model.size.astype(np.int64)
        for k, members in enumerate(self.classes):
            hs = self.pair_h[on & (self.pair_k == k)]
            pk = self.packings.get(k)
            if pk is None:
                out[hs] = members[0]
                continue
            out[hs] = _unpack(model, pk, x, hs, size)
        return out

    def start(self, model: CouplingModel, plan: np.ndarray) -> np.ndarray | None:
        """Columns of ``plan`` (a warm start), or None when the plan uses a pair not modelled."""
        x = np.zeros(self.problem.n_cols)
        n_k = len(self.classes)
        on = np.flatnonzero(plan >= 0)
        key = self.pair_h * n_k + self.pair_k
        want = on * n_k + self.class_of[plan[on]]
        pos = np.searchsorted(key, want)
        if (pos >= len(key)).any() or (key[np.minimum(pos, len(key) - 1)] != want).any():
            return None
        x[pos] = 1.0
        if self.u_col >= 0:
            x[self.u_col + np.flatnonzero(plan < 0)] = 1.0
        size = model.size.astype(np.int64)
        if self.shortfall_col:
            assigned = model.evaluate(plan).assigned
            for m, col in self.shortfall_col.items():
                x[col] = max(0.0, float(model.target[m]) - float(assigned[m]))
        for pk in self.packings.values():
            if not _pack(model, pk, plan, size, x):
                return None
        return x


def build_class_model(
    model: CouplingModel,
    *,
    allow_broken: bool,
    max_broken: int | None,
    allow_uncoupled: bool,
    max_uncoupled: int | None,
) -> ClassModel | None:
    """The class MIP of ``model`` (see the module docstring); None when it would be too large.

    Parameters
    ----------
    allow_broken
        Whether pairs that break a hard criterion are columns (under ``max_broken``).
    max_broken, max_uncoupled
        Budgets in the shortage order's measure and in persons (None: no row).
    allow_uncoupled
        Whether households may stay uncoupled (one column each).
    """
    n_h = model.n_households
    size = model.size.astype(np.int64)
    usable = ~model.forbidden if allow_broken else ~model.forbidden & ~model.breaks
    class_of = _classes(model, usable)
    groups: list[np.ndarray] = []
    for k in range(int(class_of.max(initial=-1)) + 1):
        members = np.flatnonzero(class_of == k)
        large = model.cap[members] > MAX_PACKING_CAPACITY
        if len(members) > 1 and large.any():
            # Members too large for a packing network are classes of their own.
            groups.extend(members[i : i + 1] for i in np.flatnonzero(large))
            if (~large).any():
                groups.append(members[~large])
        else:
            groups.append(members)
    class_of = np.empty(model.n_municipalities, dtype=np.int64)
    for k, members in enumerate(groups):
        class_of[members] = k
    first = np.array([g[0] for g in groups], dtype=np.int64)
    pair_h, pair_k = np.nonzero(usable[:, first])
    pair_h = pair_h.astype(np.int64)
    pair_k = pair_k.astype(np.int64)
    n_x = len(pair_h)
    if n_x > MAX_COLUMNS:
        return None

    b = _Builder()
    b.columns(model.value[pair_h, first[pair_k]], np.ones(n_x), integer=True)
    u_col = -1
    if allow_uncoupled:
        # Leaving a household out scores 0 (as in the objective); the budget row limits it.
        u_col = b.columns(np.zeros(n_h), np.ones(n_h), integer=True)
    # Assignment: every household once (or uncoupled).
    rows = [pair_h]
    cols = [np.arange(n_x)]
    if u_col >= 0:
        rows.append(np.arange(n_h))
        cols.append(u_col + np.arange(n_h))
    b.rows(np.concatenate(rows), np.concatenate(cols), None, np.ones(n_h), np.ones(n_h))

    lam = float(model.fill_weight)
    order = np.argsort(pair_k, kind="stable")
    starts = np.searchsorted(pair_k[order], np.arange(len(groups) + 1))
    packings: dict[int, _Packing] = {}
    shortfall_col: dict[int, int] = {}
    for k, members in enumerate(groups):
        sel = order[starts[k] : starts[k + 1]]
        if len(members) == 1:
            m = int(members[0])
            b.rows(np.zeros(len(sel), np.int64), sel, size[pair_h[sel]], [-np.inf], [model.cap[m]])
            _shortfall_row(b, model, m, sel, size[pair_h[sel]].astype(np.float64), shortfall_col)
            continue
        packings[k] = _packing(model, b, members, sel, pair_h, size, lam)

    _budget_rows(
        b,
        model,
        pair_h,
        first[pair_k],
        u_col,
        max_broken if allow_broken else None,
        max_uncoupled,
    )
    return ClassModel(
        problem=b.problem(),
        classes=tuple(groups),
        pair_h=pair_h,
        pair_k=pair_k,
        class_of=class_of,
        packings=packings,
        u_col=u_col,
        n_households=n_h,
        shortfall_col=shortfall_col,
    )


def improve_by_classes(
    model: CouplingModel,
    assignment: np.ndarray,
    mip: MipBackend,
    lp: MipBackend,
    *,
    allow_broken: bool,
    max_broken: int,
    max_uncoupled: int,
    gap: float,
    seed: int,
    deadline: float,
    say: Callable[[str], None] = lambda _: None,
    on_time_limit: Callable[[], None] = lambda: None,
    bound: float = float("inf"),
    pairs: np.ndarray | None = None,
) -> tuple[np.ndarray, float] | None:
    """A plan at least as good as ``assignment`` within the budgets, and a proven bound.

    The bound is on the soft objective (``soft - fill * shortfall``) of every plan with at most
    ``max_broken`` broken (shortage-order measure) and ``max_uncoupled`` uncoupled persons.
    ``lp`` must return reduced costs for an LP (HiGHS); ``mip`` solves the improving MIPs, each
    stopped by ``MIP_NODES`` (``deadline`` is a safety net; ``on_time_limit`` is called when it
    stopped one). ``bound`` is a bound known already (it only stops the MIPs earlier).
    ``pairs`` (household x municipality, boolean): pairs to offer the first MIP too, besides
    the class LP's support (e.g. those the knapsack bound's knapsacks took).
    Returns None when the class model is too large or finds nothing.
    """
    cm = build_class_model(
        model,
        allow_broken=allow_broken,
        max_broken=max_broken if allow_broken else None,
        allow_uncoupled=max_uncoupled > 0,
        max_uncoupled=max_uncoupled if max_uncoupled > 0 else None,
    )
    if cm is None:
        return None
    # A plan over the budgets (a fallback's) is no start: the MIPs then look for one within.
    valid = within_budgets(model, assignment, max_broken, max_uncoupled)
    problem = cm.problem
    if len(cm.classes) < model.n_municipalities:
        say(
            f"closing the gap: {len(cm.classes)} classes of alike municipalities, "
            f"{cm.n_x:,} household-class pairs"
        )
    else:
        say(f"closing the gap: no two municipalities alike, {cm.n_x:,} usable pairs")
    relaxed = dataclasses.replace(problem, integer=np.zeros(problem.n_cols, dtype=bool))
    sol = lp.solve(relaxed, time_limit=max(1.0, deadline - time.perf_counter()), gap=0.0, seed=seed)
    if sol.hit_time_limit:
        on_time_limit()
    if sol.x is None or sol.reduced_cost is None:
        return None
    plan = assignment
    best = _objective(model, plan) if valid else -np.inf
    lp_value = float(sol.objective)
    bound = min(lp_value, bound)
    rc = np.abs(sol.reduced_cost[: cm.n_x])
    used = sol.x[: cm.n_x] > 1e-9
    if valid:  # and the plan's own pairs
        at = assignment[cm.pair_h]
        used |= (at >= 0) & (cm.class_of[np.maximum(at, 0)] == cm.pair_k)
    if pairs is not None:
        in_class = np.zeros((model.n_households, len(cm.classes)), dtype=bool)
        ph, pm = np.nonzero(pairs)
        in_class[ph, cm.class_of[pm]] = True
        used |= in_class[cm.pair_h, cm.pair_k]
    cheapest = np.argsort(rc, kind="stable")
    budgets = (max_broken if allow_broken else None, max_uncoupled if max_uncoupled > 0 else None)
    if np.isfinite(best) and bound - best > gap * max(1.0, abs(best)) and SUPPORT_NODES > 0:
        # The LP's own support first (with the start's pairs, and ``pairs``): a small MIP that
        # often holds a plan within the gap already.
        res, read = _solve_counts(
            model,
            cm,
            used,
            plan,
            mip,
            budgets,
            gap=gap,
            seed=seed,
            nodes=SUPPORT_NODES,
            time_limit=max(0.2, deadline - time.perf_counter()),
        )
        if res.hit_time_limit:
            on_time_limit()
        if read is not None and read[1] > best + 1e-9:
            plan, best = read
        say(f"  the LP's support ({int(used.sum()):,} pairs): plan {best:,.4f}, bound {bound:,.4f}")
    limit = max(MIN_PAIRS, int(FIRST_PAIRS_PER_HOUSEHOLD * model.n_households))
    budget = max(PAIRS_BUDGET_MIN, PAIRS_BUDGET_PER_HOUSEHOLD * model.n_households)
    rounds = 0
    spent = 0
    while rounds < MAX_ROUNDS and spent < budget:
        if np.isfinite(best) and bound - best <= gap * max(1.0, abs(best)):
            break
        left = deadline - time.perf_counter()
        if left < 0.2:
            on_time_limit()
            break
        # The cheapest pairs (by reduced cost) among those that could still pay off: a pair
        # whose reduced cost exceeds the LP's own distance to the plan is in no better plan
        # (against the LP value, not a tighter bound from elsewhere).
        reach = lp_value - best
        could = cheapest[(rc[cheapest] <= reach + 1e-9) & ~used[cheapest]]
        take = could[: max(0, limit - int(used.sum()))]
        keep = used.copy()
        keep[take] = True
        complete = len(take) == len(could)  # every pair that could still pay off is in
        cutoff = float(rc[take].max(initial=0.0))
        res, read = _solve_counts(
            model,
            cm,
            keep,
            plan if np.isfinite(best) else None,
            mip,
            budgets,
            gap=gap / 2,
            seed=seed,
            nodes=MIP_NODES,
            time_limit=left,
        )
        if res.hit_time_limit:
            on_time_limit()
        if read is not None:
            if read[1] > best + 1e-9:
                plan, best = read
            if complete and np.isfinite(res.bound) and np.isfinite(best):
                # Pairs left out cost more than the gap, so no better plan uses them.
                bound = min(bound, max(float(res.bound), best))
        found = f"plan {best:,.4f}" if np.isfinite(best) else "no plan within the budgets yet"
        say(
            f"  pairs within {cutoff:.4g} of the bound's reduced costs: {int(keep.sum()):,}; "
            f"{found}, bound {bound:,.4f}"
        )
        rounds += 1
        spent += int(keep.sum())
        if complete or res.hit_time_limit:
            break  # (infeasible when complete: no plan within the budgets at all)
        limit *= 2
    if not np.isfinite(best):
        return None
    return plan, bound


# ---------------------------------------------------------------------------------------------


def improve_class_windows(
    model: CouplingModel,
    assignment: np.ndarray,
    mip: MipBackend,
    *,
    allow_broken: bool,
    bound: float,
    gap: float,
    seed: int,
    deadline: float,
    max_windows: int = CLASS_WINDOWS,
    say: Callable[[str], None] = lambda _: None,
    on_time_limit: Callable[[], None] = lambda: None,
) -> np.ndarray:
    """Re-solve windows of a few classes exactly, everyone else fixed; never worse.

    A window is a class and the two classes its households would gain most by moving to or from;
    every household coupled in the window (and every uncoupled one that may go there) is freed,
    and the class model of that part (its count form), under the budgets the plan already meets
    there, is solved by ``mip`` warm-started from the plan (``CLASS_WINDOW_NODES`` nodes).
    Windows are tried in order of how much their households could gain, until the plan is within
    ``gap`` of ``bound``, ``max_windows`` are used or a full cycle brings nothing (``deadline``
    is only a safety net). Large classes (whole regions) make these windows much stronger than
    windows of single municipalities when capacities are tight.
    """
    a = np.asarray(assignment, dtype=np.int64).copy()
    usable = ~model.forbidden if allow_broken else ~model.forbidden & ~model.breaks
    class_of = _classes(model, usable)
    n_k = int(class_of.max(initial=-1)) + 1
    if n_k < 2:
        return a
    first = np.array([np.flatnonzero(class_of == k)[0] for k in range(n_k)])
    worth = np.where(usable[:, first], model.value[:, first], -np.inf)  # households x classes
    best = _objective(model, a)
    stalled = 0
    windows = 0
    while windows < max_windows and stalled < n_k:
        if max(0.0, bound - best) <= gap * max(1.0, abs(best)):
            break
        if time.perf_counter() >= deadline - 0.05:
            on_time_limit()
            break
        on = a >= 0
        cur = np.where(on, class_of[np.maximum(a, 0)], -1)
        now = np.where(on, worth[np.arange(len(a)), np.maximum(cur, 0)], 0.0)
        gain = np.where(np.isfinite(worth), np.maximum(worth - now[:, None], 0.0), 0.0)
        # Gain flowing between classes: households of class i that would rather be in j.
        inflow = np.zeros((n_k, n_k))
        np.add.at(inflow, np.maximum(cur, 0)[on], gain[on])
        pressure = inflow.sum(axis=0) + inflow.sum(axis=1)
        order = np.lexsort((np.arange(n_k), -pressure))
        centre = int(order[windows % n_k])
        link = inflow[centre] + inflow[:, centre]
        link[centre] = -1.0
        partners = np.lexsort((np.arange(n_k), -link))[:2]
        window = np.union1d([centre], partners)
        windows += 1
        in_w = np.isin(class_of, window)
        free = np.flatnonzero((on & in_w[np.maximum(a, 0)]) | (~on & usable[:, in_w].any(axis=1)))
        if len(free) == 0:
            stalled += 1
            continue
        sub = restrict(
            model, free, cap=np.where(in_w, model.cap, 0), target=np.where(in_w, model.target, 0.0)
        )
        sub = dataclasses.replace(sub, forbidden=sub.forbidden | ~in_w[None, :])
        part = a[free]
        v = sub.evaluate(part)
        cm = build_class_model(
            sub,
            allow_broken=allow_broken and v.broken_measure > 0,
            max_broken=v.broken_measure if allow_broken and v.broken_measure > 0 else None,
            allow_uncoupled=v.uncoupled_persons > 0,
            max_uncoupled=v.uncoupled_persons if v.uncoupled_persons > 0 else None,
        )
        if cm is None:
            stalled += 1
            continue
        left = deadline - time.perf_counter()
        res, read = _solve_counts(
            sub,
            cm,
            np.ones(cm.n_x, dtype=bool),
            part,
            mip,
            (
                v.broken_measure if allow_broken and v.broken_measure > 0 else None,
                v.uncoupled_persons if v.uncoupled_persons > 0 else None,
            ),
            gap=0.0,
            seed=seed,
            nodes=CLASS_WINDOW_NODES,
            time_limit=min(CLASS_WINDOW_SECONDS, max(0.05, left)),
        )
        if res.hit_time_limit:
            on_time_limit()
        if read is None:
            stalled += 1
            continue
        plan = a.copy()
        plan[free] = read[0]
        value = _objective(model, plan)
        old = model.evaluate(a)
        ok = within_budgets(model, plan, old.broken_measure, old.uncoupled_persons)
        if ok and value > best + 1e-9:
            a, best, stalled = plan, value, 0
        else:
            stalled += 1
    say(f"class windows: {windows} windows, objective {best:,.4f}")
    return a


def count_classes(model: CouplingModel, *, allow_broken: bool) -> int:
    """How many classes of alike municipalities ``model`` has (before any split by capacity)."""
    usable = ~model.forbidden if allow_broken else ~model.forbidden & ~model.breaks
    return int(_classes(model, usable).max(initial=-1)) + 1


def _classes(model: CouplingModel, usable: np.ndarray) -> np.ndarray:
    """Class per municipality: equal value, usable and breaks columns (and target with fill)."""
    # Column by column (no transposed copy of the whole matrices: memory stays flat).
    seen: dict[tuple[bytes, bytes, bytes], int] = {}
    out = np.empty(model.n_municipalities, dtype=np.int64)
    breaks = model.breaks
    for m in range(model.n_municipalities):
        key = (
            hashlib.sha256(np.ascontiguousarray(model.value[:, m]).tobytes()).digest(),
            np.packbits(usable[:, m]).tobytes(),
            np.packbits(breaks[:, m]).tobytes(),
        )
        out[m] = seen.setdefault(key, len(seen))
    return out


def _packing(
    model: CouplingModel,
    b: _Builder,
    members: np.ndarray,
    sel: np.ndarray,
    pair_h: np.ndarray,
    size: np.ndarray,
    lam: float,
) -> _Packing:
    """Add the arc-flow network of one class of several municipalities."""
    caps = model.cap[members].astype(np.int64)
    targets = model.target[members] if lam > 0 else np.zeros(len(members))
    kinds, counts = np.unique(np.stack([caps, targets], axis=1), axis=0, return_counts=True)
    width = int(caps.max()) + 1
    sizes = np.unique(size[pair_h[sel]])[::-1]
    levels = len(sizes)
    item_level = np.concatenate(
        [np.full(max(0, width - int(s)), lv, np.int64) for lv, s in enumerate(sizes)]
        or [np.zeros(0, np.int64)]
    )
    item_from = np.concatenate(
        [np.arange(max(0, width - int(s)), dtype=np.int64) for s in sizes]
        or [np.zeros(0, np.int64)]
    )
    item_size = sizes[item_level] if len(item_level) else np.zeros(0, np.int64)
    down_level = np.repeat(np.arange(max(0, levels - 1), dtype=np.int64), width)
    down_at = np.tile(np.arange(width, dtype=np.int64), max(0, levels - 1))
    end_kind = np.concatenate([np.full(int(c) + 1, j, np.int64) for j, (c, _) in enumerate(kinds)])
    end_at = np.concatenate([np.arange(int(c) + 1, dtype=np.int64) for c, _ in kinds])
    end_cost = -lam * np.maximum(kinds[end_kind, 1] - end_at, 0.0)
    n_i, n_d, n_e = len(item_level), len(down_level), len(end_at)
    item_col = b.columns(np.zeros(n_i), np.full(n_i, np.inf), integer=True)
    down_col = b.columns(np.zeros(n_d), np.full(n_d, np.inf), integer=True)
    end_col = b.columns(end_cost, np.full(n_e, np.inf), integer=True)
    # Households of each size given to the class = flow on that level's arcs.
    hsize = size[pair_h[sel]]
    for lv, s in enumerate(sizes):
        xs = sel[hsize == s]
        arcs = item_col + np.flatnonzero(item_level == lv)
        b.rows(
            np.zeros(len(xs) + len(arcs), np.int64),
            np.concatenate([xs, arcs]),
            np.concatenate([np.ones(len(xs)), -np.ones(len(arcs))]),
            [0.0],
            [0.0],
        )
    # Flow conservation at every node (level, persons): in - out = -paths at the source.
    last = max(0, levels - 1)
    node_rows = np.concatenate(
        [
            item_level * width + item_from + item_size,
            item_level * width + item_from,
            (down_level + 1) * width + down_at,
            down_level * width + down_at,
            last * width + end_at,
        ]
    )
    node_cols = np.concatenate(
        [
            item_col + np.arange(n_i),
            item_col + np.arange(n_i),
            down_col + np.arange(n_d),
            down_col + np.arange(n_d),
            end_col + np.arange(n_e),
        ]
    )
    node_vals = np.concatenate(
        [np.ones(n_i), -np.ones(n_i), np.ones(n_d), -np.ones(n_d), -np.ones(n_e)]
    )
    rhs = np.zeros(max(1, levels) * width)
    rhs[0] = -float(len(members))
    b.rows(node_rows, node_cols, node_vals, rhs, rhs)
    # Paths ending at each kind = its municipalities.
    b.rows(
        end_kind,
        end_col + np.arange(n_e),
        None,
        counts.astype(np.float64),
        counts.astype(np.float64),
    )
    return _Packing(
        members=members,
        sizes=sizes,
        width=width,
        item_level=item_level,
        item_from=item_from,
        item_col=item_col,
        down_level=down_level,
        down_at=down_at,
        down_col=down_col,
        end_at=end_at,
        end_kind=end_kind,
        end_col=end_col,
        kinds=kinds,
    )


def _kind_slots(model: CouplingModel, pk: _Packing) -> list[list[int]]:
    """Municipalities of each kind (capacity, target), in index order."""
    lam = float(model.fill_weight)
    slots: list[list[int]] = [[] for _ in range(len(pk.kinds))]
    for m in pk.members:
        t = model.target[m] if lam > 0 else 0.0
        j = int(np.flatnonzero((pk.kinds[:, 0] == model.cap[m]) & (pk.kinds[:, 1] == t))[0])
        slots[j].append(int(m))
    return slots


def _unpack(
    model: CouplingModel, pk: _Packing, x: np.ndarray, households: np.ndarray, size: np.ndarray
) -> np.ndarray:
    """Municipality per household of ``households`` (given to this class) from the flow."""
    width = pk.width
    last = max(0, len(pk.sizes) - 1)
    out_arcs: dict[int, list[tuple[int, int]]] = {}
    for kind, col, level, at in (
        (0, pk.item_col, pk.item_level, pk.item_from),
        (1, pk.down_col, pk.down_level, pk.down_at),
        (2, pk.end_col, np.full(len(pk.end_at), last), pk.end_at),
    ):
        flow = np.rint(x[col : col + len(at)]).astype(np.int64)
        for a in np.flatnonzero(flow > 0):
            out_arcs.setdefault(int(level[a]) * width + int(at[a]), []).extend(
                [(kind, int(a))] * int(flow[a])
            )
    slots = _kind_slots(model, pk)
    pool = {int(s): list(households[size[households] == s]) for s in np.unique(size[households])}
    result = np.full(len(households), -1, dtype=np.int64)
    where = {int(h): i for i, h in enumerate(households)}
    for _ in range(len(pk.members)):
        node: int = 0
        taken: list[int] = []
        while True:
            kind, arc = out_arcs[node].pop()
            if kind == 0:
                s = int(pk.sizes[pk.item_level[arc]])
                taken.append(s)
                node += s
            elif kind == 1:
                node += width
            else:
                m = slots[int(pk.end_kind[arc])].pop()
                break
        for s in taken:
            result[where[int(pool[s].pop())]] = m
    return result


def _pack(
    model: CouplingModel, pk: _Packing, plan: np.ndarray, size: np.ndarray, x: np.ndarray
) -> bool:
    """Write the flow of ``plan``'s households in this class into ``x``; False if impossible."""
    last = max(0, len(pk.sizes) - 1)
    item = {
        (int(lv), int(i)): a
        for a, (lv, i) in enumerate(zip(pk.item_level, pk.item_from, strict=True))
    }
    down = {
        (int(lv), int(i)): a
        for a, (lv, i) in enumerate(zip(pk.down_level, pk.down_at, strict=True))
    }
    end = {(int(j), int(i)): a for a, (j, i) in enumerate(zip(pk.end_kind, pk.end_at, strict=True))}
    slots = _kind_slots(model, pk)
    kind_of = {m: j for j, ms in enumerate(slots) for m in ms}
    for m in pk.members:
        here = np.sort(size[plan == m])[::-1]
        at = 0
        for lv, s in enumerate(pk.sizes):
            for _ in range(int((here == s).sum())):
                a = item.get((lv, at))
                if a is None:
                    return False
                x[pk.item_col + a] += 1.0
                at += int(s)
            if lv < last:
                x[pk.down_col + down[(lv, at)]] += 1.0
        if at != int(here.sum()):
            return False  # a size this class's network does not know
        e = end.get((kind_of[int(m)], at))
        if e is None:
            return False
        x[pk.end_col + e] += 1.0
    return True


@dataclass(frozen=True, eq=False)
class CountModel:
    """The count form of a class MIP, over some of its household-class pairs.

    Households of one size given to a class are interchangeable there, so ``y[m, s]`` (how many
    households of size s go to member m, under m's capacity) packs them exactly, with far fewer
    integer columns than the arc-flow networks (measured: 2,706 columns against 40,698). Its LP
    is weaker (the arc-flow LP gives the bound); its MIPs find plans in a fraction of the time.
    """

    problem: MipProblem
    pairs: np.ndarray  # the class model's x columns kept, in this problem's column order
    counts: dict[int, tuple[int, np.ndarray]]  # class -> (first y column, sizes); members x sizes
    u_col: int  # first uncoupled column, -1 if none
    shortfall_col: dict[int, int]  # fill-shortfall column per municipality with a target
    n_households: int

    def assignment(self, model: CouplingModel, cm: ClassModel, x: np.ndarray) -> np.ndarray | None:
        """The plan of an integral solution, or None when its counts do not add up."""
        out = np.full(self.n_households, -1, dtype=np.int64)
        on = x[: len(self.pairs)] > 0.5
        ph = cm.pair_h[self.pairs[on]]
        pk = cm.pair_k[self.pairs[on]]
        size = model.size.astype(np.int64)
        for k, members in enumerate(cm.classes):
            hs = np.sort(ph[pk == k])
            if k not in self.counts:
                out[hs] = members[0]
                continue
            col, sizes = self.counts[k]
            y = np.rint(x[col : col + len(members) * len(sizes)]).astype(np.int64)
            y = y.reshape(len(members), len(sizes))
            if not np.isin(size[hs], sizes).all():
                return None
            for j, s in enumerate(sizes):
                these = hs[size[hs] == s]
                if int(y[:, j].sum()) != len(these):
                    return None
                out[these] = np.repeat(members, y[:, j])
        return out

    def start(self, model: CouplingModel, cm: ClassModel, plan: np.ndarray) -> np.ndarray | None:
        """Columns of ``plan``, or None when it uses a pair not kept here."""
        x = np.zeros(self.problem.n_cols)
        n_k = len(cm.classes)
        on = np.flatnonzero(plan >= 0)
        key = cm.pair_h[self.pairs] * n_k + cm.pair_k[self.pairs]
        want = on * n_k + cm.class_of[plan[on]]
        order = np.argsort(key, kind="stable")
        pos = np.searchsorted(key[order], want)
        pos = np.minimum(pos, len(key) - 1)
        if len(key) == 0 or (key[order][pos] != want).any():
            return None
        x[order[pos]] = 1.0
        # Households per (member, size) of each packed class: one count per household.
        member = np.full(len(cm.class_of), -1, dtype=np.int64)
        for members in cm.classes:
            member[members] = np.arange(len(members))
        hs = on[np.isin(cm.class_of[plan[on]], list(self.counts))]
        for k in np.unique(cm.class_of[plan[hs]]):
            col, sizes = self.counts[int(k)]
            these = hs[cm.class_of[plan[hs]] == k]
            j = np.searchsorted(-sizes, -model.size[these])  # sizes run largest first
            np.add.at(x, col + member[plan[these]] * len(sizes) + j, 1.0)
        if self.u_col >= 0:
            x[self.u_col + np.flatnonzero(plan < 0)] = 1.0
        assigned = model.evaluate(plan).assigned
        for m, c in self.shortfall_col.items():
            x[c] = max(0.0, float(model.target[m]) - float(assigned[m]))
        return x


def build_count_model(
    model: CouplingModel,
    cm: ClassModel,
    keep: np.ndarray,
    *,
    max_broken: int | None,
    max_uncoupled: int | None,
) -> CountModel:
    """The count form of ``cm`` over the x columns ``keep`` (see :class:`CountModel`)."""
    size = model.size.astype(np.int64)
    n_h = cm.n_households
    pairs = np.flatnonzero(keep)
    ph = cm.pair_h[pairs]
    pk = cm.pair_k[pairs]
    first = np.array([g[0] for g in cm.classes], dtype=np.int64)
    b = _Builder()
    b.columns(model.value[ph, first[pk]], np.ones(len(pairs)), integer=True)
    u_col = -1
    if cm.u_col >= 0:
        u_col = b.columns(np.zeros(n_h), np.ones(n_h), integer=True)
    rows = [ph]
    cols = [np.arange(len(pairs))]
    if u_col >= 0:
        rows.append(np.arange(n_h))
        cols.append(u_col + np.arange(n_h))
    b.rows(np.concatenate(rows), np.concatenate(cols), None, np.ones(n_h), np.ones(n_h))
    counts: dict[int, tuple[int, np.ndarray]] = {}
    shortfall: dict[int, int] = {}
    order = np.argsort(pk, kind="stable")
    starts = np.searchsorted(pk[order], np.arange(len(cm.classes) + 1))
    for k, members in enumerate(cm.classes):
        sel = order[starts[k] : starts[k + 1]]
        hsize = size[ph[sel]]
        if len(members) == 1:
            m = int(members[0])
            b.rows(np.zeros(len(sel), np.int64), sel, hsize, [-np.inf], [model.cap[m]])
            load_cols, load_vals = sel, hsize.astype(np.float64)
            loads = [(m, load_cols, load_vals)]
        else:
            sizes = np.unique(hsize)[::-1]
            n_m, n_s = len(members), len(sizes)
            caps = model.cap[members].astype(np.int64)
            hi = (caps[:, None] // np.maximum(sizes[None, :], 1)).astype(np.float64).ravel()
            col = b.columns(np.zeros(n_m * n_s), hi, integer=True)
            counts[k] = (col, sizes)
            grid = col + np.arange(n_m * n_s).reshape(n_m, n_s)
            for j, s in enumerate(sizes):
                xs = sel[hsize == s]
                b.rows(
                    np.zeros(len(xs) + n_m, np.int64),
                    np.concatenate([xs, grid[:, j]]),
                    np.concatenate([np.ones(len(xs)), -np.ones(n_m)]),
                    [0.0],
                    [0.0],
                )
            w = np.tile(sizes.astype(np.float64), n_m)
            b.rows(np.repeat(np.arange(n_m), n_s), grid.ravel(), w, np.full(n_m, -np.inf), caps)
            loads = [(int(m), grid[i], sizes.astype(np.float64)) for i, m in enumerate(members)]
        for m, load_cols, load_vals in loads:
            _shortfall_row(b, model, m, load_cols, load_vals, shortfall)
    _budget_rows(b, model, ph, first[pk], u_col, max_broken, max_uncoupled)
    return CountModel(
        problem=b.problem(),
        pairs=pairs,
        counts=counts,
        n_households=n_h,
        u_col=u_col,
        shortfall_col=shortfall,
    )


def _shortfall_row(
    b: _Builder,
    model: CouplingModel,
    m: int,
    cols: np.ndarray,
    persons: np.ndarray,
    shortfall_col: dict[int, int],
) -> None:
    """With the fill balance on and a target at ``m``: a shortfall column (objective
    ``-fill_weight``, recorded in ``shortfall_col``) and the row ``persons @ x[cols] + shortfall
    >= target``."""
    lam = float(model.fill_weight)
    if lam <= 0 or model.target[m] <= 0:
        return
    s_col = b.columns(np.array([-lam]), np.array([np.inf]), integer=False)
    shortfall_col[m] = s_col
    b.rows(
        np.zeros(len(cols) + 1, np.int64),
        np.append(cols, s_col),
        np.append(persons, 1.0),
        [model.target[m]],
        [np.inf],
    )


def _budget_rows(
    b: _Builder,
    model: CouplingModel,
    pair_h: np.ndarray,
    pair_m: np.ndarray,
    u_col: int,
    max_broken: int | None,
    max_uncoupled: int | None,
) -> None:
    """The broken-persons budget over the x columns (household ``pair_h[j]`` at a municipality
    of the class of ``pair_m[j]``; x column j is column j) and the uncoupled-persons budget over
    the uncoupled columns from ``u_col``; None: no row."""
    if max_broken is not None:
        hit = np.flatnonzero(model.breaks[pair_h, pair_m])
        b.rows(
            np.zeros(len(hit), np.int64),
            hit,
            model.broken_weight[pair_h[hit]].astype(np.float64),
            [-np.inf],
            [float(max_broken)],
        )
    if u_col >= 0 and max_uncoupled is not None:
        n_h = model.n_households
        b.rows(
            np.zeros(n_h, np.int64),
            u_col + np.arange(n_h),
            model.size.astype(np.float64),
            [-np.inf],
            [float(max_uncoupled)],
        )


def _solve_counts(
    model: CouplingModel,
    cm: ClassModel,
    keep: np.ndarray,
    plan: np.ndarray | None,
    mip: MipBackend,
    budgets: tuple[int | None, int | None],
    *,
    gap: float,
    seed: int,
    nodes: int,
    time_limit: float,
) -> tuple[MipSolution, tuple[np.ndarray, float] | None]:
    """Solve the count form of ``cm`` over the pairs ``keep``, warm-started from ``plan``; the
    solution and its plan with objective (None when there is none, or it does not check out)."""
    count = build_count_model(model, cm, keep, max_broken=budgets[0], max_uncoupled=budgets[1])
    x0 = None if plan is None else count.start(model, cm, plan)
    res = mip.solve(
        dataclasses.replace(count.problem, start=x0),
        time_limit=time_limit,
        gap=gap,
        seed=seed,
        max_nodes=nodes,
    )
    if res.x is None:
        return res, None
    found = count.assignment(model, cm, res.x)
    if found is None:
        return res, None
    max_broken = np.iinfo(np.int64).max if budgets[0] is None else budgets[0]
    max_uncoupled = 0 if budgets[1] is None else budgets[1]
    if not within_budgets(model, found, max_broken, max_uncoupled):
        return res, None
    value = _objective(model, found)
    if abs(value - res.objective) > 1e-6 * max(1.0, abs(value)):
        return res, None
    return res, (found, value)


def _objective(model: CouplingModel, plan: np.ndarray) -> float:
    return float(model.evaluate(plan).objective)


def within_budgets(
    model: CouplingModel, plan: np.ndarray, max_broken: int, max_uncoupled: int
) -> bool:
    """Whether ``plan`` keeps every capacity, ban and lock, and the broken and uncoupled budgets."""
    v = model.evaluate(plan)
    return bool(
        v.broken_measure <= max_broken
        and v.uncoupled_persons <= max_uncoupled
        and model.keeps_capacities(plan)
    )


class _Builder:
    """Columns and rows of a sparse MIP, added in blocks."""

    def __init__(self) -> None:
        self._c: list[np.ndarray] = []
        self._hi: list[np.ndarray] = []
        self._int: list[np.ndarray] = []
        self._n = 0
        self._r: list[np.ndarray] = []
        self._k: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._lo_r: list[np.ndarray] = []
        self._hi_r: list[np.ndarray] = []
        self._m = 0

    def columns(self, cost: np.ndarray, upper: np.ndarray, *, integer: bool) -> int:
        """Add columns (lower bound 0); returns the index of the first."""
        first = self._n
        self._c.append(np.asarray(cost, dtype=np.float64))
        self._hi.append(np.asarray(upper, dtype=np.float64))
        self._int.append(np.full(len(cost), integer))
        self._n += len(cost)
        return first

    def rows(
        self,
        row: np.ndarray,
        col: np.ndarray,
        val: np.ndarray | None,
        lo: np.ndarray | list[float],
        hi: np.ndarray | list[float],
    ) -> None:
        """Add ``len(lo)`` rows; entries (row, col, val) with rows numbered from 0 here."""
        lo_a = np.asarray(lo, dtype=np.float64)
        self._r.append(np.asarray(row, dtype=np.int64) + self._m)
        self._k.append(np.asarray(col, dtype=np.int64))
        self._v.append(np.ones(len(row)) if val is None else np.asarray(val, dtype=np.float64))
        self._lo_r.append(lo_a)
        self._hi_r.append(np.asarray(hi, dtype=np.float64))
        self._m += len(lo_a)

    def problem(self) -> MipProblem:
        A = sp.csr_matrix(
            (np.concatenate(self._v), (np.concatenate(self._r), np.concatenate(self._k))),
            shape=(self._m, self._n),
        )
        return MipProblem(
            c=np.concatenate(self._c),
            A=A,
            row_lo=np.concatenate(self._lo_r),
            row_hi=np.concatenate(self._hi_r),
            col_lo=np.zeros(self._n),
            col_hi=np.concatenate(self._hi),
            integer=np.concatenate(self._int),
        )
