"""The engine: flow relaxation, stage 1, rounding, local search and MIPs where they pay.

``method="auto"``:

1. solve the transportation relaxation exactly (:mod:`coupler.engine.flow`): a proven bound;
2. when the relaxation (or later an integral plan) needs uncoupled or broken persons, find the
   true integer minimum of both with the aggregated stage-1 MIP (:mod:`coupler.engine.stage1`),
   and re-solve the relaxation with exactly that many uncoupled (no MIP when nothing breaks and
   the rounded plan leaves exactly the relaxation's uncoupled persons out: that is the minimum);
3. round (:mod:`coupler.engine.rounding`): households the flow keeps whole stay; the few split
   households are placed whole and every single person is re-flowed exactly (unit supplies make
   that flow integral); fill-balance batches up to 10,000 persons are also rounded a few split
   households at a time, largest first, the flow re-solved over its own arcs in between, and
   the better plan is kept;
4. when the gap is still open, move whole households by a vectorised local search
   (:mod:`coupler.engine.local`); then, when the batch is small enough, the exact *class model*
   (:mod:`coupler.engine.classes`: municipalities that look alike to every household form one
   class, packed whole by an arc-flow network) gives a tighter LP bound, and MIPs over the pairs
   its reduced costs keep (in the model's count form) close the gap (batches scored per
   labour-market region, tight quotas, shortage); otherwise the MIP over the pairs that
   reduced-cost fixing cannot exclude, if there are few enough (small fill-balance batches fix
   against the LP with whole-household fill rows, a much tighter bound than the flow's, after a
   MIP over each household's cheapest pairs against that LP; households that look alike are
   counted there, not told apart: :mod:`coupler.engine.alike`); then
   the knapsack bound and a window search (:mod:`coupler.engine.lns`: windows of nearby
   municipalities up to 3,000 persons, windows along the relaxation's reduced costs above)
   while the gap is open;
5. if rounding cannot meet the stage-1 budgets, re-place split households and their neighbours by a
   small MIP, then the class model from a greedy plan; the last resort is the penalised MIP over
   the pairs that matter, warm-started from the greedy plan.

With side constraints (dwelling types, bands) the fast plan is kept when it meets them; otherwise
they are priced into the relaxation (Lagrangian: a price per person in a band, per large household
and per single person at a municipality; every priced relaxation is a proven bound), single
persons are re-flowed within their dwelling capacities, a small MIP repairs what is left, the LP
with every side row written out (:mod:`coupler.engine.lpbound`, by column generation) tightens
the bound, and windows along that LP's reduced costs improve the plan with every side row kept.
Only when that finds no plan does the stage-2 MIP run over the relaxation's candidate pairs. The
flow bound stays valid because side constraints only remove plans. ``method="mip"`` solves the
whole model as one MIP with the chosen backend.

Determinism: every step that decides which plan is returned is bounded by work, not by time
(branch-and-bound nodes per MIP, a count of bisection and subgradient steps, of windows and of
class-model pairs),
so the same inputs and seed give the same plan on an idle or a busy machine. The wall clock
(``time_limit``) is only an outer safety net; when it stops a step, the result says so (status
``feasible``, ``info["time_limit_hit"]`` naming the steps) because the plan may then differ
between runs. ``polish_time`` only switches the improving MIPs and the window search on (> 0).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from coupler.engine.alike import Kinds, count_columns, count_mip, kinds
from coupler.engine.backends import get_backend
from coupler.engine.base import MipBackend, MipProblem, MipSolution
from coupler.engine.classes import (
    MAX_COLUMNS,
    count_classes,
    improve_by_classes,
    improve_class_windows,
    within_budgets,
)
from coupler.engine.dwbound import dw_bound
from coupler.engine.flow import FlowRelaxation, flow_penalties, solve_relaxation
from coupler.engine.lagrange import flow_multipliers, knapsack_bound, lagrangian_value
from coupler.engine.lns import improve_reduced_windows, improve_windows
from coupler.engine.local import improve
from coupler.engine.lpbound import FIRST_PAIRS as LP_FIRST_PAIRS
from coupler.engine.lpbound import LPBound, lp_bound
from coupler.engine.mip import all_pairs, build_mip
from coupler.engine.rounding import reflow_singles, round_iteratively, round_with_singles
from coupler.engine.stage1 import Stage1, solve_stage1
from coupler.errors import CouplerError
from coupler.model import CouplingModel
from coupler.policy import SolveParams
from coupler.result import Result, Status, make_result

Progress = Callable[[str], None]

#: Up to this many persons fill-balance batches are also rounded iteratively
#: (:func:`~coupler.engine.rounding.round_iteratively`: restricted flows, about 2 s at 4,700
#: persons; monthly batch 3,002.5 -> 3,021.7 before the local search, bound 3,032.2).
_ITERATIVE_ROUNDING_PERSONS = 10_000
#: Up to this many persons the knapsack Lagrangian bound is computed when the gap is open (it
#: takes about 2 s at 1,000 persons and gains little on larger batches).
_KNAPSACK_PERSONS = 3_000
#: The window search runs up to this many persons (or after the fallback): on monthly batches it
#: gained 0.1-0.2 % for about 10 s on a 2-core machine, against a 2 s target.
_WINDOW_PERSONS = 3_000
#: With the fill balance on, windows that follow the relaxation's reduced costs run up to this
#: many persons: on the monthly batch (4,700 persons) they took the gap from 0.86 % to 0.56 % in
#: about 2 s, where 40 geographic windows gained about half of that in 11 s.
_RC_WINDOW_PERSONS = 30_000
#: Stage 1 gets at least this many seconds, even past the deadline: without it there is no plan.
_STAGE1_SECONDS = 5.0
#: Work limits (branch-and-bound nodes) of the MIPs; they, not the clock, stop them normally.
_STAGE1_NODES = 5_000
_POLISH_NODES = 200
#: Fill-balance batches with at most this many usable pairs (about 1,200 households) get the LP
#: with whole-household fill rows as their bound (300 households: 116.8 where the flow gives
#: 134.8, optimum 116.1; by column generation, 0.3-1.2 s up to 2,000 persons). The polishing
#: MIP first takes each household's ``_TIGHT_NEAREST`` cheapest pairs against that LP (root node
#: only), then, pruned by the LP's reduced costs, proves its plan when at most
#: ``_TIGHT_MIP_PAIRS`` pairs are left (300-household batches: proven optimal where the flow's
#: bound left a 2-3 % gap). 1,200 / 2,000 persons of ids, sizes and an azc: gap 0.94 / 3.5 %
#: (the MIP over the flow's candidate pairs, or none) -> 0.37 / 0.92 %, 17.5 / 29 -> 18 / 35 s.
_TIGHT_LP_PAIRS = 400_000
_TIGHT_MIP_PAIRS = 150_000
#: An 880-person batch: 30 gave 164.26, 50 gave 164.29 in 2.5 times as long.
_TIGHT_NEAREST = 30
#: Above ``_TIGHT_MIP_PAIRS``, the proving MIP still runs when look-alike households counted
#: (:mod:`coupler.engine.alike`) leave at most this many columns. Small kind (ids, sizes, an
#: azc): 1,000 / 1,200 persons, 54,648 / 57,518 columns: proven optimal in 10 / 26 s where the
#: windows left 0.45 / 0.37 % in 8 / 18 s; 2,000 persons, 70,452 columns: 200 nodes in 23 s
#: left 0.7 %, so not there.
_TIGHT_COUNT_COLUMNS = 60_000
#: Batches with side constraints up to this many households end with a MIP over each
#: household's ``_SIDE_NEAREST`` cheapest pairs against the side LP (Utrecht pooling variant,
#: 1,000 / 2,000 persons: gap 1.53 / 0.92 -> 0.42 / 0.24 %, total 4.6 / 7.0 -> 7.9 / 17.1 s).
_SIDE_NEAREST_HOUSEHOLDS = 1_200
_SIDE_NEAREST = 8
_REPAIR_NODES = 500
_FALLBACK_NODES = 200
_SIDE_NODES = 5_000
#: Bisection steps of the soft bound under a broken-persons budget (one relaxation each).
_BUDGET_STEPS = 8
#: Subgradient steps of the knapsack bound.
_KNAPSACK_STEPS = 30
#: Its steps when the pairs its knapsacks take seed the class MIPs (tight quotas, a score per
#: municipality, 397 households: 30 steps -> a first MIP 0.21 % below the optimum, 100 -> 0.01
#: %, at about 0.03 s a step).
_KNAPSACK_PAIR_STEPS = 100
#: Relaxations priced for side constraints (bands, pooled quotas, dwelling capacities), and the
#: first price step per counted unit (objective units).
_BAND_STEPS = 12
_BAND_STEP = 0.05
#: Pricing stops after this many relaxations without a better bound, once a plan within the
#: budgets is in hand (on the side tier the bound stopped moving after 3 of them).
_SIDE_STALL = 2


#: Stage 1's answer when the relaxation needs no uncoupled and no broken persons.
_NOTHING_NEEDED = Stage1(uncoupled=0, broken=0, proven=True, status=Status.OPTIMAL, seconds=0.0)


def _quiet(_: str) -> None:
    pass


class _Clock:
    """The outer wall-clock safety net: the overall deadline, and the steps it stopped.

    Work limits decide where each step stops; a step the clock stopped instead is recorded, and
    the result then says that its plan depends on the machine's speed.
    """

    def __init__(self, time_limit: float) -> None:
        self.deadline = time.perf_counter() + time_limit
        self.hits: list[str] = []

    def left(self) -> float:
        """Seconds until the deadline (negative past it)."""
        return self.deadline - time.perf_counter()

    def hit(self, step: str) -> None:
        """Record that the clock stopped ``step``."""
        if step not in self.hits:
            self.hits.append(step)

    def solve(
        self,
        mip: MipBackend,
        step: str,
        problem: MipProblem,
        *,
        time_limit: float,
        gap: float,
        seed: int,
        max_nodes: int,
        heuristics: bool = True,
    ) -> MipSolution:
        """``mip.solve`` under a node limit, recording ``step`` when the clock stopped it."""
        sol = mip.solve(
            problem,
            time_limit=time_limit,
            gap=gap,
            seed=seed,
            max_nodes=max_nodes,
            heuristics=heuristics,
        )
        if sol.hit_time_limit:
            self.hit(step)
        return sol


class _NoPlan(Exception):
    """Internal: the engine proved there is no plan, or found none in time."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def solve(
    model: CouplingModel,
    params: SolveParams | None = None,
    *,
    progress: Progress | None = None,
) -> Result:
    """Couple every household of ``model``; see the module docstring for the method.

    Parameters
    ----------
    model
        The coupling model (:func:`coupler.model.build_model`).
    params
        Backend, method and limits; by default the policy's ``[solver]`` table
        (``model.policy.solver``).
    progress
        Called with a short line at each step.

    Returns
    -------
    Result
        Always a result: when no plan exists (side constraints that no plan meets) or none was
        found in time, its status says so (``infeasible`` or ``unknown``), every household is
        uncoupled and ``info["message"]`` says why. Exceptions mean a real failure.
    """
    params = model.policy.solver if params is None else params
    t0 = time.perf_counter()
    try:
        return _solve(model, params, progress or _quiet)
    except _NoPlan as exc:
        return make_result(
            model,
            np.full(model.n_households, -1, dtype=np.int64),
            status=exc.status,
            bound=math.inf,
            broken_lower_bound=0,
            uncoupled_lower_bound=0,
            backend=params.backend,
            method="none",
            seconds={"total": time.perf_counter() - t0},
            info={"message": exc.message},
        )


def _solve(model: CouplingModel, params: SolveParams, say: Progress) -> Result:
    backend_name = params.backend
    method = params.method
    time_limit = params.time_limit
    gap = params.gap
    seed = params.seed
    mip: MipBackend = get_backend(backend_name)
    clock = _Clock(time_limit)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    say("solving the transportation relaxation (min-cost flow)")
    flow = solve_relaxation(model)
    seconds["relaxation"] = time.perf_counter() - t

    def run_stage1() -> Stage1:
        t1 = time.perf_counter()
        say("minimising uncoupled persons and broken hard criteria exactly (stage 1)")
        # A warm start keeps a plan in hand if the limit stops stage 1 early. Only HiGHS gets
        # it: CBC through PuLP was seen to return the start of this MIP as optimal.
        start = None
        if mip.name == "highs":
            if not model.has_side_constraints:
                start = rounded if rounded is not None else round_with_singles(model, flow)
            start = np.full(model.n_households, -1, dtype=np.int64) if start is None else start
        st = solve_stage1(
            model,
            mip,
            time_limit=max(_STAGE1_SECONDS, clock.left()),
            seed=seed,
            start=start,
            max_nodes=_STAGE1_NODES,
        )
        if st.hit_time_limit:
            clock.hit("stage1")
        seconds["stage1"] = seconds.get("stage1", 0.0) + time.perf_counter() - t1
        if st.broken < 0:
            found = "exists" if st.status is Status.INFEASIBLE else "was found in time"
            raise _NoPlan(
                Status.INFEASIBLE if st.status is Status.INFEASIBLE else Status.UNKNOWN,
                f"no plan {found} under the side constraints, even leaving households uncoupled "
                f"({st.status}); check the policy's bands and the dwelling capacities",
            )
        return st

    def tighten(st: Stage1) -> None:
        # Integral plans must leave more persons uncoupled than the relaxation did: re-solve it
        # with exactly that many uncoupled, so rounding and the bound start from the right place.
        nonlocal flow
        if st.proven and st.uncoupled > flow.lp_uncoupled + 0.5:
            t2 = time.perf_counter()
            flow = solve_relaxation(model, uncoupled=st.uncoupled)
            seconds["relaxation"] += time.perf_counter() - t2

    tried_classes = False
    used_method = ""
    tight: _TightLP | None = None

    alike_memo: dict[bool, bool] = {}

    def has_alike(allow_broken: bool) -> bool:
        # Whether municipalities merge into classes (at most half as many), counted once.
        if allow_broken not in alike_memo:
            n = count_classes(model, allow_broken=allow_broken)
            alike_memo[allow_broken] = n <= model.n_municipalities // 2
        return alike_memo[allow_broken]

    def try_classes(plan: np.ndarray, st: Stage1) -> tuple[np.ndarray, float] | None:
        # The exact class model (whole households packed into alike municipalities): its LP is
        # a much tighter bound, and MIPs over the pairs its reduced costs keep close the gap.
        nonlocal tried_classes, used_method
        alike = has_alike(st.broken > 0)
        if not alike and model.fill_weight > 0 and not _over_budget(model, plan, st):
            # Without alike municipalities the class model is the plain MIP; with the fill
            # balance on, the flow-priced polish and the window search improved plans better
            # (measured on 300-household batches with an azc each). A plan over stage 1's
            # budgets (a fallback's) still goes to the class model, which finds one within.
            return None
        tried_classes = True
        t3 = time.perf_counter()
        hint = np.inf
        taken: np.ndarray | None = None
        if model.persons <= _KNAPSACK_PERSONS and not alike:
            # No alike municipalities: the class LP is the plain LP, and the knapsack bound is
            # the stronger one (it tells the class MIPs when to stop). The pairs its knapsacks
            # take go to the first class MIP: where quotas are tight the LP's reduced costs
            # point away from the pairs whole households need.
            # Above MAX_COLUMNS usable pairs the class model is not built: no pairs then, and
            # no bound either where the final one (without uncoupled persons) will not reuse it
            # (a MIP over the pairs alone, tight quotas, 1,500 persons: 15-21 s for +0.1 %).
            # With broken persons the bound only: its pairs led the class MIPs to worse plans
            # (shortage, a score per municipality, 800 persons: 0.007 -> 0.037 % below the
            # optimum; bound 381.13 -> 380.14 either way).
            usable = ~model.forbidden if st.broken > 0 else ~model.forbidden & ~model.breaks
            fits = int(np.count_nonzero(usable)) <= MAX_COLUMNS  # as the class model counts
            if fits and st.broken == 0:
                taken = np.zeros((model.n_households, model.n_municipalities), dtype=bool)
            if fits or (st.uncoupled == 0 and st.broken == 0):
                hint = knapsack(model.evaluate(plan).objective, taken, st.uncoupled, st.broken)
            if taken is not None and not taken.any():
                taken = None  # computed before, without its pairs
        better = improve_by_classes(
            model,
            plan,
            mip,
            get_backend("highs"),
            allow_broken=st.broken > 0,
            max_broken=st.broken,
            max_uncoupled=st.uncoupled,
            gap=gap,
            seed=seed,
            deadline=clock.deadline,
            say=say,
            on_time_limit=lambda: clock.hit("classes"),
            bound=hint,
            pairs=taken,
        )
        seconds["classes"] = time.perf_counter() - t3
        if better is not None:
            used_method += "+classes"
        return better

    knapsack_value: float | None = None

    def knapsack(
        lower: float, pairs: np.ndarray | None = None, uncoupled: int = 0, broken: int = 0
    ) -> float:
        # The household-integral Lagrangian bound (one knapsack per municipality), once; with
        # ``pairs``, more steps, and the pairs the knapsacks take are set in it. Over plans
        # with at most ``uncoupled`` uncoupled and ``broken`` broken persons (stage 1's).
        nonlocal knapsack_value
        if knapsack_value is None:
            t4 = time.perf_counter()
            say("tightening the bound: one knapsack per municipality (Lagrangian)")
            knapsack_value = knapsack_bound(
                model,
                flow,
                steps=_KNAPSACK_STEPS if pairs is None else _KNAPSACK_PAIR_STEPS,
                pairs=pairs,
                uncoupled=uncoupled,
                broken=broken,
                lower=lower,
                deadline=clock.deadline,
                multipliers=tight.duals if tight is not None else None,
            )
            if clock.left() < 0:
                clock.hit("knapsack bound")
            seconds["bound"] = seconds.get("bound", 0.0) + time.perf_counter() - t4
        return knapsack_value

    zero = _NOTHING_NEEDED
    stage1: Stage1 | None = None
    rounded: np.ndarray | None = None
    side_lp: LPBound | None = None  # the LP with every side row, once computed
    if (
        flow.lp_broken <= 1e-6
        and flow.lp_uncoupled > 0.5
        and not model.has_side_constraints
        and method != "mip"
    ):
        # More persons than places, nothing broken: the relaxation's uncoupled persons (whole
        # persons: the flow is integral) bound every plan's from below. A rounded plan that
        # leaves exactly that many out and breaks nothing settles stage 1 without its MIP.
        say("rounding the split households; re-flowing single persons")
        rounded = round_with_singles(model, flow)
        if rounded is not None:
            v = model.evaluate(rounded)
            lp_unc = int(round(flow.lp_uncoupled))
            if v.uncoupled_persons == lp_unc and v.broken_measure == 0:
                stage1 = Stage1(
                    uncoupled=lp_unc,
                    broken=0,
                    proven=True,
                    status=Status.OPTIMAL,
                    seconds=0.0,
                    plan=rounded,
                )
    if stage1 is None and (flow.lp_broken > 1e-6 or flow.lp_uncoupled > 0.5):
        stage1 = run_stage1()
        tighten(stage1)
        rounded = None  # the flow may have been re-solved

    t = time.perf_counter()
    plain_mip = method == "mip"
    assignment: np.ndarray | None = None
    mip_bound = np.inf
    status = Status.OPTIMAL
    used_method = "mip" if plain_mip else "flow+singles"
    if not plain_mip:
        if rounded is None:
            say("rounding the split households; re-flowing single persons")
        assignment, used_method = _fast_plan(model, flow, stage1 or zero, gap, say, rounded)
    if model.has_side_constraints and not plain_mip and assignment is not None:
        # The side constraints often hold in the fast plan already; the flow bound stays valid.
        if not model.meets_side_rows(assignment) or _over_budget(model, assignment, stage1 or zero):
            fast, assignment = assignment, None
            if stage1 is None and not _over_budget(model, fast, zero):
                # The LP with every side row first: its bound, and its duals on the side rows
                # as prices in the flow, whose rounded plan is then repaired along the LP's
                # reduced costs (side tier: 2,989.4 / 3,114.2 after the windows in 10.7 / 11.8
                # s, against 2,987.9 / 3,116.7 in 15 / 17 s from the Lagrangian prices).
                say("tightening the bound: the LP with every side row (column generation, HiGHS)")
                t6 = time.perf_counter()
                side_lp = _lp_bound(model, flow, fast, clock, say)
                seconds["bound"] = seconds.get("bound", 0.0) + time.perf_counter() - t6
                dual = _dual_priced_plan(model, side_lp, gap, say)
                if dual is not None and not model.meets_side_rows(dual):
                    dual = _side_repair(model, flow, dual, mip, clock, seed, say, side_lp.reduced)
                if dual is not None:
                    assignment, mip_bound = dual, side_lp.bound
                    used_method = "flow+sideduals"
            if assignment is None:
                priced, priced_bound, nearest = _side_prices(model, flow, gap, say)
                if priced is None and stage1 is None:
                    # Repair the fast plan (its single persons already keep their dwelling
                    # capacities): it starts closer to the optimum than the priced plans,
                    # whose prices see-saw (side tier: 2,980 against 2,973 after the windows).
                    if not _over_budget(model, fast, zero):
                        priced = _side_repair(model, flow, fast, mip, clock, seed, say)
                    if priced is None and nearest is not None:
                        priced = _side_repair(model, flow, nearest, mip, clock, seed, say)
                if priced is not None:
                    assignment, mip_bound = priced, priced_bound
                    used_method = "flow+sideprices"
    if plain_mip or (model.has_side_constraints and assignment is None):
        say(f"solving the MIP ({backend_name})")
        stage1 = stage1 or run_stage1()
        assignment, status, mip_bound = _side_mip(
            model, flow, stage1, mip, clock, gap, seed, full=plain_mip
        )
        used_method = "mip" if plain_mip else "flow+mip"
    elif not model.has_side_constraints:
        repair_later = False  # the repair skipped for the class model, should that not run
        if assignment is None or _over_budget(model, assignment, stage1 or zero):
            # Integral plans may need more uncoupled or broken persons than the relaxation.
            if stage1 is None:
                stage1 = run_stage1()
                tighten(stage1)
                if stage1.uncoupled > 0:
                    assignment = round_with_singles(model, flow)
            # Stage 1's plan, when it keeps every capacity, lock and budget.
            whole = stage1.plan
            if whole is not None and not within_budgets(
                model, whole, stage1.broken, stage1.uncoupled
            ):
                whole = None
            if (
                (assignment is None or _over_budget(model, assignment, stage1))
                and whole is not None
                and params.polish_time > 0
                and (has_alike(stage1.broken > 0) or model.fill_weight == 0)
            ):
                # The class model (below) will pack whole households exactly from stage 1's
                # plan; repairing the rounded flow first only costs time (tight batches: 266
                # households, 34 persons out, two infeasible repairs in 2.9 s; a score per
                # municipality, 300 households, 11 out: six in 2.7 s). Should the class model
                # be too large, the repair still runs then.
                say("starting from stage 1's plan")
                assignment, status = whole.copy(), Status.FEASIBLE
                used_method = "flow+stage1"
                repair_later = True
            if assignment is None or _over_budget(model, assignment, stage1):
                say("repairing the split households (small MIP)")
                assignment, status = _repair(model, flow, stage1, mip, clock, gap, seed)
                used_method = "flow+repair"
                if assignment is None and whole is not None:
                    # Stage 1's own plan, when it is whole (its pooled households are placed
                    # by a count per size, which need not respect a lock or a capacity) and
                    # within its budgets: improve that rather than fall back to the penalised
                    # MIP, whose node limit can stop it with persons left out that need not be
                    # (demo batch: 16 uncoupled, minimum 0).
                    say("starting from stage 1's plan")
                    assignment, status = whole.copy(), Status.FEASIBLE
                    used_method = "flow+stage1"
        if (
            assignment is not None
            and _gap(model, assignment, flow, stage1 or zero) > gap
            and params.polish_time > 0
        ):
            classes = try_classes(assignment, stage1 or zero)
            if classes is not None:
                assignment, mip_bound = classes
            elif repair_later and stage1 is not None:
                say("repairing the split households (small MIP)")
                repaired, repaired_status = _repair(model, flow, stage1, mip, clock, gap, seed)
                if repaired is not None and not _over_budget(model, repaired, stage1):
                    assignment, status, used_method = repaired, repaired_status, "flow+repair"
        if (
            assignment is not None
            and not tried_classes
            and _gap(model, assignment, flow, stage1 or zero) > gap
            and params.polish_time > 0
        ):
            # The node limit stops the MIP; the overall deadline only guards against runaway
            # time (``polish_time`` would stop it at a load-dependent point: it only switches
            # the polishing MIPs on).
            limit = clock.left()
            t5 = time.perf_counter()
            tight = _tight_lp(model, stage1 or zero, flow, assignment, clock, say)
            if tight is not None:
                seconds["bound"] = seconds.get("bound", 0.0) + time.perf_counter() - t5
            better = _polish(
                model,
                flow,
                assignment,
                stage1 or zero,
                mip,
                limit,
                gap,
                seed,
                say=say,
                clock=clock,
                tight=tight,
            )
            if better is not None:
                assignment, mip_bound = better
                used_method += "+mip"
    stage1 = stage1 or zero
    if assignment is None and not model.has_side_constraints and params.polish_time > 0:
        # Rounding and repair failed (tight quotas): the class model, when small enough, finds
        # a plan within stage 1's budgets, from stage 1's own plan (or a greedy one).
        begin = stage1.plan if stage1.plan is not None else _greedy(model, flow)
        classes = try_classes(begin, stage1)
        if classes is not None:
            assignment, mip_bound = classes
            status = Status.OPTIMAL
    if assignment is None:
        say("falling back to the penalised MIP over every pair")
        assignment, status = _fallback(model, flow, mip, clock, gap, seed)
        used_method += "+fallback"
    seconds["mip" if used_method.endswith("mip") else "rounding"] = time.perf_counter() - t

    # The relaxation's bound is on the penalised objective. Unless it broke nothing and left
    # exactly stage 1's uncoupled persons out, adding the penalties back would mix stages (and
    # report gaps far above 100 %): bound the soft objective within the budgets instead.
    mixes = stage1.broken > 0 or abs(flow.lp_uncoupled - stage1.uncoupled) > 0.5
    bound = min(np.inf if mixes else _bound(model, flow, stage1), mip_bound)
    value = model.evaluate(assignment)
    if mixes and max(0.0, bound - value.objective) / max(1.0, abs(value.objective)) > gap:
        # Lagrangian over the penalty per broken person; at least two relaxations, even past
        # the deadline, so that a soft bound is always reported.
        t = time.perf_counter()
        say("bounding the soft score within the broken-persons budget (Lagrangian)")
        bound = min(bound, _budget_bound(model, stage1, value.objective, gap, clock))
        seconds["bound"] = time.perf_counter() - t
    if (
        max(0.0, bound - value.objective) / max(1.0, abs(value.objective)) > gap
        and stage1.broken == 0
        and stage1.uncoupled == 0
        and model.persons <= _KNAPSACK_PERSONS
    ):
        # Small batches: the household-integral Lagrangian bound is much tighter than the LP's.
        bound = min(bound, knapsack(value.objective))
    if tight is not None and stage1.broken == 0 and stage1.uncoupled == 0:
        bound = min(bound, tight.bound)
    side_reduced: np.ndarray | None = None
    if (
        model.has_side_constraints
        and not plain_mip
        and value.uncoupled_persons == 0
        and value.broken_measure == 0
        and max(0.0, bound - value.objective) / max(1.0, abs(value.objective)) > gap
    ):
        # The side rows written out (priced, they bound the plan only loosely): the LP over
        # every usable pair, by column generation (side tier: 3,014.9 -> 3,003.5 in about 3 s).
        if side_lp is None:
            t = time.perf_counter()
            say("tightening the bound: the LP with every side row (column generation, HiGHS)")
            side_lp = _lp_bound(model, flow, assignment, clock, say)
            seconds["bound"] = seconds.get("bound", 0.0) + time.perf_counter() - t
        bound = min(bound, side_lp.bound)
        side_reduced = side_lp.reduced
    side_windows = (
        model.has_side_constraints
        and not plain_mip
        and model.fill_weight > 0
        and model.meets_side_rows(assignment)
        and not _over_budget(model, assignment, stage1)
    )
    if (
        (not model.has_side_constraints or side_windows)
        and max(0.0, bound - value.objective) / max(1.0, abs(value.objective)) > gap
        and (
            model.persons <= _WINDOW_PERSONS
            or used_method.endswith("fallback")
            or (model.fill_weight > 0 and model.persons <= _RC_WINDOW_PERSONS)
        )
        and params.polish_time > 0
    ):
        t = time.perf_counter()
        classes_alike = tried_classes and has_alike(stage1.broken > 0)
        if side_windows or (
            not classes_alike and model.fill_weight > 0 and model.persons > _WINDOW_PERSONS
        ):
            # Fill balance: the loss against the relaxation lies in how whole households meet
            # the targets; windows along the reduced costs trade persons between such places.
            # Their MIPs carry every band and dwelling row (the rest of the plan fixed), so a
            # plan that meets the side constraints keeps meeting them.
            say("closing the gap: re-solving windows along the relaxation's reduced costs")
            assignment = improve_reduced_windows(
                model,
                assignment,
                mip,
                flow.reduced_value(model) if side_reduced is None else side_reduced,
                bound=bound,
                gap=gap,
                deadline=clock.deadline,  # a count of windows bounds it (deterministic plans)
                seed=seed,
                allow_broken=stage1.broken > 0,
                say=say,
                on_time_limit=lambda: clock.hit("windows"),
            )
            used_method += "+rcwindows"
        elif classes_alike:
            # Alike municipalities: windows of whole classes (regions) move households between
            # them with the packing exact, where windows of single municipalities stall.
            say("closing the gap: re-solving windows of classes exactly (class windows)")
            assignment = improve_class_windows(
                model,
                assignment,
                mip,
                allow_broken=stage1.broken > 0,
                bound=bound,
                gap=gap,
                seed=seed,
                deadline=clock.deadline,  # a count of windows bounds it (deterministic plans)
                say=say,
                on_time_limit=lambda: clock.hit("class windows"),
            )
            used_method += "+classwindows"
        else:
            say("closing the gap: re-solving windows of municipalities exactly (window search)")
            assignment = improve_windows(
                model,
                assignment,
                mip,
                bound=bound,
                gap=gap,
                deadline=clock.deadline,  # a count of windows bounds it (deterministic plans)
                seed=seed,
                allow_broken=stage1.broken > 0,
                say=say,
                on_time_limit=lambda: clock.hit("windows"),
            )
            used_method += "+windows"
        value = model.evaluate(assignment)
        if used_method.endswith("rcwindows") and not model.has_side_constraints:
            # The windows place single persons window by window; one exact flow over all of
            # them, the rest fixed, can only gain (monthly batch: 3,021.11 -> 3,021.59).
            again = reflow_singles(model, assignment, np.flatnonzero(model.size == 1))
            if again is not None and not _over_budget(model, again, stage1):
                after = model.evaluate(again)
                if after.objective > value.objective:
                    assignment, value = again, after
        seconds["windows"] = time.perf_counter() - t
        if (
            side_windows
            and side_reduced is not None
            and model.n_households <= _SIDE_NEAREST_HOUSEHOLDS
            and max(0.0, bound - value.objective) / max(1.0, abs(value.objective)) > gap
        ):
            t = time.perf_counter()
            nearest_plan = _side_nearest(
                model, assignment, side_reduced, mip, clock, gap, seed, say
            )
            if nearest_plan is not None:
                assignment, value = nearest_plan, model.evaluate(nearest_plan)
                used_method += "+mip"
            seconds["mip"] = seconds.get("mip", 0.0) + time.perf_counter() - t
    if (
        params.bound_rounds > 0
        and not plain_mip
        and stage1.broken == 0
        and stage1.uncoupled == 0
        and value.broken_measure == 0
        and value.uncoupled_persons == 0
        and np.isfinite(flow.potential_h).all()
        and max(0.0, bound - value.objective) / max(1.0, abs(value.objective)) > gap
    ):
        # Whole households filling the targets, priced exactly: the best bound one knapsack
        # per municipality gives (monthly batch: 3,032.17 -> 3,030.61 in 140 rounds).
        t = time.perf_counter()
        say("tightening the bound: the Dantzig-Wolfe LP (one knapsack per municipality)")
        dw = dw_bound(
            model,
            assignment,
            flow_multipliers(model, flow),
            max_rounds=params.bound_rounds,
            deadline=clock.deadline,
            say=say,
        )
        if not dw.converged and dw.rounds < params.bound_rounds:
            clock.hit("Dantzig-Wolfe bound")  # stopped by the clock: the bound depends on it
        bound = min(bound, max(dw.bound, value.objective))
        seconds["bound"] = seconds.get("bound", 0.0) + time.perf_counter() - t
    info: dict[str, object] = {}
    if clock.hits:
        # The clock, not a work limit, stopped these steps: another run may return another plan.
        info["time_limit_hit"] = ", ".join(clock.hits)
        say(
            f"time limit hit in: {info['time_limit_hit']} (the plan or its bound depends on the "
            "machine's speed)"
        )
    result_status = status
    if value.broken_measure > stage1.broken or value.uncoupled_persons > stage1.uncoupled:
        result_status = Status.FEASIBLE
    elif status is not Status.ERROR:
        g = max(0.0, bound - value.objective) / max(1.0, abs(value.objective))
        result_status = (
            Status.OPTIMAL
            if g <= gap + 1e-6 and stage1.proven and not clock.hits
            else Status.FEASIBLE
        )
    return make_result(
        model,
        assignment,
        status=result_status,
        bound=bound,
        broken_lower_bound=_broken_persons_bound(model, flow, stage1),
        uncoupled_lower_bound=stage1.uncoupled
        if stage1.proven
        else int(np.ceil(flow.lp_uncoupled - 1e-9)),
        backend=backend_name,
        method=used_method,
        seconds=seconds,
        lower_bounds_proven=stage1.proven,
        info={
            "flow_rounds": flow.rounds,
            "flow_arcs": int(len(flow.arc_h)),
            "split_households": int(len(flow.split_households())),
            "lp_broken_persons": flow.lp_broken,
            **info,
        },
    )


def _fast_plan(
    model: CouplingModel,
    flow: FlowRelaxation,
    stage1: Stage1,
    gap: float,
    say: Progress,
    rounded: np.ndarray | None = None,
) -> tuple[np.ndarray | None, str]:
    """Round the relaxation, then move whole households while that pays (when the gap is open).

    ``rounded``: the relaxation's rounded plan when the caller has it already."""
    assignment = round_with_singles(model, flow) if rounded is None else rounded
    if (
        assignment is not None
        and model.fill_weight > 0
        and not model.has_side_constraints  # side tier: 2,980.2 / 3,111.7 -> 2,979.8 / 3,097.5
        and stage1.uncoupled == 0
        and model.persons <= _ITERATIVE_ROUNDING_PERSONS
        and _gap(model, assignment, flow, stage1) > gap
    ):
        say("rounding again, a few split households at a time (fill balance)")
        iterative = round_iteratively(model, flow)
        if (
            iterative is not None
            and not _over_budget(model, iterative, stage1)
            and model.evaluate(iterative).objective > model.evaluate(assignment).objective
        ):
            assignment = iterative
    if assignment is None or _gap(model, assignment, flow, stage1) <= gap:
        return assignment, "flow+singles"
    say("local search: moving whole households")
    moved = reflow_singles(
        model, improve(model, assignment, flow.arc_h, flow.arc_m), np.flatnonzero(model.size == 1)
    )
    if moved is None or model.evaluate(moved).objective < model.evaluate(assignment).objective:
        return assignment, "flow+singles"
    return moved, "flow+singles+local"


def _side_rows(model: CouplingModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The side constraints as rows over counts per municipality.

    Returns ``(kind, members, lo, hi)``: row r sums, over the municipalities in ``members[r]``,
    the persons (kind 0), large households (kind 1) or single persons (kind 2) coupled there,
    and the sum must lie in ``[lo[r], hi[r]]``. Bands count persons; a dwelling capacity counts
    one kind of household at one municipality.
    """
    n_m = model.n_municipalities
    kind: list[int] = []
    members: list[np.ndarray] = []
    lo: list[float] = []
    hi: list[float] = []
    for band in model.bands:
        kind.append(0)
        members.append(band.members.astype(bool))
        lo.append(float(band.lo))
        hi.append(float(band.hi))
    for k, caps in ((1, model.cap_large), (2, model.cap_single)):
        if caps is None:
            continue
        for m in np.flatnonzero(np.isfinite(caps)):
            one = np.zeros(n_m, dtype=bool)
            one[m] = True
            kind.append(k)
            members.append(one)
            lo.append(-np.inf)
            hi.append(float(caps[m]))
    return (
        np.array(kind, dtype=np.int64),
        np.array(members, dtype=bool).reshape(len(kind), n_m),
        np.array(lo, dtype=np.float64),
        np.array(hi, dtype=np.float64),
    )


def _units(model: CouplingModel) -> np.ndarray:
    """What one household counts in each kind of side row (see :func:`_side_rows`): its
    persons, whether it is a large household, whether it is a single person; shape (3, H)."""
    return np.array([model.size, model.is_large, model.size == 1], dtype=np.float64)


def _row_totals(
    unit: np.ndarray,
    kind: np.ndarray,
    members: np.ndarray,
    h: np.ndarray,
    m: np.ndarray,
    share: np.ndarray,
) -> np.ndarray:
    """Each side row's count when ``share`` of household ``h[i]`` is at municipality ``m[i]``
    (1 for a plan; a flow arc's fraction of the household for the relaxation)."""
    n_m = members.shape[1]
    counts = np.array([np.bincount(m, weights=share * u[h], minlength=n_m) for u in unit])
    return (members * counts[kind]).sum(axis=1)


def _side_prices(
    model: CouplingModel, flow: FlowRelaxation, gap: float, say: Progress
) -> tuple[np.ndarray | None, float, np.ndarray | None]:
    """Side constraints (bands, pooled quotas, dwelling capacities) priced into the flow.

    With a price ``p[r]`` per unit that row r counts (a person in a band, a large household or a
    single person at a municipality), the relaxation without side constraints is solved and
    rounded as usual; by Lagrangian duality ``F(p) - sum_r p[r] * (lo[r] if p[r] > 0 else
    hi[r])`` bounds every plan that meets them (``F``: the priced relaxation's optimum; rows
    with only an upper bound keep ``p <= 0``). Prices move each row's relaxed count into its
    range (a sign change halves the step), for at most ``_BAND_STEPS`` relaxations.

    Returns ``(plan, bound, nearest)``: the best rounded plan that meets every side constraint
    (or None), the best bound, and the last rounded plan within stage 1's budgets (to repair
    when none met them; None when the relaxation needs broken or uncoupled persons).
    """
    kind, members, lo, hi = _side_rows(model)
    if len(lo) == 0 or flow.lp_broken > 1e-6 or flow.lp_uncoupled > 0.5:
        return None, np.inf, None
    zero = _NOTHING_NEEDED
    say(f"pricing {len(lo)} side constraint(s) into the relaxation (Lagrangian)")
    n_m = model.n_municipalities
    unit = _units(model)
    price = np.zeros(len(lo))
    step = np.full(len(lo), _BAND_STEP)
    last = np.zeros(len(lo))
    best_plan: np.ndarray | None = None
    nearest: np.ndarray | None = None
    best, bound = -np.inf, np.inf
    stalled = 0
    for _ in range(_BAND_STEPS):
        per_m = np.zeros((3, n_m))
        for k in range(3):
            per_m[k] = price[kind == k] @ members[kind == k]
        relaxed = _priced_relaxation(model, unit.T @ per_m)
        if relaxed is None:
            return None, np.inf, None
        priced, f = relaxed
        priced_bound = f.bound - float((price * np.where(price > 0, lo, hi)).sum())
        stalled = stalled + 1 if priced_bound >= bound - 1e-9 else 0
        bound = min(bound, priced_bound)
        # The relaxed count of every row: households (fractions) per kind and municipality.
        share = f.flow / model.size[f.arc_h]  # of each household, per arc
        total = _row_totals(unit, kind, members, f.arc_h, f.arc_m, share)
        direction = np.where(total < lo - 0.5, 1.0, np.where(total > hi + 0.5, -1.0, 0.0))
        if direction.any():
            # Rows out of range: these prices will move, so a plain rounding (a plan to repair
            # from) will do; the local search and iterative rounding only for prices that hold.
            # (Pooled quota: 8.7 -> 5 s of pricing, the same plan.)
            plan = round_with_singles(priced, f)
        else:
            plan, _ = _fast_plan(priced, f, zero, gap, _quiet)
        if plan is not None and not _over_budget(model, plan, zero):
            nearest = plan
            if model.meets_side_rows(plan):
                value = model.evaluate(plan).objective
                if value > best:
                    best_plan, best = plan, value
        if best_plan is not None and bound - best <= gap * max(1.0, abs(best)):
            break
        if stalled >= _SIDE_STALL and nearest is not None:
            break  # the bound stopped moving; the repair takes the nearest plan from here
        if not direction.any() and best_plan is not None:
            break
        step = np.where(direction * last < 0, step / 2, step)
        last = np.where(direction != 0, direction, last)
        price = price + direction * step
        price = np.where(np.isinf(lo), np.minimum(price, 0.0), price)
    return best_plan, (max(bound, best) if best_plan is not None else bound), nearest


def _priced_relaxation(
    model: CouplingModel, price: np.ndarray
) -> tuple[CouplingModel, FlowRelaxation] | None:
    """The model without bands and large-dwelling capacities, ``price`` (per pair) added to its
    soft values, and its relaxation; None when that needs broken or uncoupled persons.
    Single-dwelling capacities stay: the singles' re-flow in the rounding keeps them."""
    priced = dataclasses.replace(model, value=model.value + price, bands=(), cap_large=None)
    f = solve_relaxation(priced)
    if f.lp_broken > 1e-6 or f.lp_uncoupled > 0.5:
        return None
    return priced, f


def _dual_priced_plan(
    model: CouplingModel, side_lp: LPBound, gap: float, say: Progress
) -> np.ndarray | None:
    """The side rows priced into the flow at the side LP's duals: the relaxation without side
    rows over ``value + side_price``, rounded and improved as usual (:func:`_fast_plan`).
    The plan may still break a side row by a few persons or households (then repair it); None
    without duals or when the priced relaxation needs broken or uncoupled persons."""
    if side_lp.side_price is None:
        return None
    say("pricing the side rows at the side LP's duals into the relaxation")
    relaxed = _priced_relaxation(model, side_lp.side_price)
    if relaxed is None:
        return None
    plan, _ = _fast_plan(*relaxed, _NOTHING_NEEDED, gap, _quiet)
    if plan is None or _over_budget(model, plan, _NOTHING_NEEDED):
        return None
    return plan


def _lp_bound(
    model: CouplingModel,
    flow: FlowRelaxation,
    plan: np.ndarray,
    clock: _Clock,
    say: Progress,
    step: str = "side LP bound",
) -> LPBound:
    """:func:`~coupler.engine.lpbound.lp_bound` from the relaxation's arcs, the plan's pairs and
    each household's cheapest pairs against the relaxation."""
    k = min(LP_FIRST_PAIRS, model.n_municipalities)
    reduced = flow.reduced_value(model)
    order = (
        np.argpartition(reduced, k - 1, axis=1)[:, :k]
        if k < model.n_municipalities
        else np.tile(np.arange(model.n_municipalities), (model.n_households, 1))
    )
    del reduced
    on = np.flatnonzero(plan >= 0)
    start_h = np.concatenate([flow.arc_h, on])
    start_m = np.concatenate([flow.arc_m, plan[on]])
    found = lp_bound(
        model, get_backend("highs"), start_h, start_m, order, deadline=clock.deadline, say=say
    )
    if clock.left() < 0:
        clock.hit(step)
    return found


def _side_repair(
    model: CouplingModel,
    flow: FlowRelaxation,
    plan: np.ndarray,
    mip: MipBackend,
    clock: _Clock,
    seed: int,
    say: Progress,
    reduced: np.ndarray | None = None,
) -> np.ndarray | None:
    """Make a plan meet its side constraints by re-solving the households involved exactly.

    Freed: every household at a municipality whose dwelling capacity it exceeds, and, for a band
    out of range, the households that could cross its border most cheaply. Each freed household
    may go to its cheapest usable places; everybody else stays fixed. "Cheap" is by ``reduced``
    (per pair; the relaxation's reduced values by default: the LP with the side rows knows
    which crossings the other rows allow). Returns the repaired plan, or None when the MIP
    finds none (node-limited).
    """
    n_m = model.n_municipalities
    kind, members, lo, hi = _side_rows(model)
    on = plan >= 0
    placed = np.flatnonzero(on)
    total = _row_totals(_units(model), kind, members, placed, plan[placed], np.ones(len(placed)))
    bad = (total < lo - 0.5) | (total > hi + 0.5)
    if not bad.any():
        return plan
    if reduced is None:
        reduced = flow.reduced_value(model)
    usable = ~model.forbidden & ~model.breaks
    # Every household at a municipality whose dwelling capacity is exceeded.
    over = np.asarray(members[bad & (kind > 0)].any(axis=0), dtype=bool)
    free_mask = on & over[np.maximum(plan, 0)]
    for r in np.flatnonzero(bad & (kind == 0)):
        inside = members[r][np.maximum(plan, 0)] & on
        # A band: the cheapest crossings, enough persons for the shortfall or excess twice over.
        need = 2.0 * (lo[r] - total[r] if total[r] < lo[r] else total[r] - hi[r])
        side = ~inside & on if total[r] < lo[r] else inside
        target = members[r] if total[r] < lo[r] else ~members[r]
        cost = np.where(usable[:, target], reduced[:, target], np.inf).min(axis=1)
        cand = np.flatnonzero(side & np.isfinite(cost))
        cand = cand[np.argsort(cost[cand], kind="stable")]
        take = np.searchsorted(np.cumsum(model.size[cand]), need) + 1
        free_mask[cand[:take]] = True
    free = np.flatnonzero(free_mask)
    k = min(10, n_m)
    best = np.argsort(np.where(usable[free], reduced[free], np.inf), axis=1, kind="stable")[:, :k]
    ph = np.repeat(free, k)
    pm = best.ravel()
    ok = usable[ph, pm]
    ph, pm = ph[ok], pm[ok]
    ph = np.concatenate([ph, free[on[free]]])
    pm = np.concatenate([pm, plan[free[on[free]]]])
    pairs = np.unique(ph * n_m + pm)
    ph, pm = pairs // n_m, pairs % n_m
    say(f"repairing the side constraints: {len(free):,} households re-solved (small MIP)")
    problem, layout = build_mip(model, ph, pm, fixed=plan, objective="soft", allow_uncoupled=False)
    sol = clock.solve(
        mip,
        "side repair",
        problem,
        time_limit=max(1.0, clock.left()),
        gap=1e-3,
        seed=seed,
        max_nodes=_REPAIR_NODES,
    )
    if sol.x is None:
        return None
    out = plan.copy()
    out[free] = layout.assignment(sol.x, model.n_households)[free]
    if not model.meets_side_rows(out) or (out[free] < 0).any():
        return None
    return out


def _over_budget(model: CouplingModel, assignment: np.ndarray, stage1: Stage1) -> bool:
    v = model.evaluate(assignment)
    return v.broken_measure > stage1.broken or v.uncoupled_persons > stage1.uncoupled


def _bound(model: CouplingModel, flow: FlowRelaxation, stage1: Stage1) -> float:
    return (
        flow.bound + flow.broken_penalty * stage1.broken + flow.uncoupled_penalty * stage1.uncoupled
    )


def _broken_persons_bound(model: CouplingModel, flow: FlowRelaxation, stage1: Stage1) -> int:
    """The broken persons stage 1 proved minimal (at the shortage order's earlier stages)."""
    default = model.policy.hard.shortage_order == ("broken_persons",)
    if stage1.proven:
        return stage1.broken if default else stage1.broken_persons
    return int(np.ceil(flow.lp_broken - 1e-9)) if default else 0


def _budget_bound(
    model: CouplingModel, stage1: Stage1, objective: float, gap: float, clock: _Clock
) -> float:
    """A bound on the soft objective of plans with at most ``stage1.broken`` broken persons.

    For every penalty ``mu >= 0`` per broken person, the relaxation's optimum ``F(mu)`` bounds
    ``soft - mu * broken`` (with stage 1's uncoupled persons fixed), so every plan within the
    budget ``B`` has ``soft <= F(mu) + mu * B``. That is convex in ``mu`` with slope
    ``B - broken(mu)``: bisect on ``log mu`` towards where the relaxation breaks exactly ``B``,
    keeping the best bound seen, for at most ``_BUDGET_STEPS`` relaxations (at least two, even
    past the clock's deadline). Returns inf when nothing was proven.
    """
    budget = stage1.broken
    unc = stage1.uncoupled if stage1.uncoupled > 0 else None
    lo, hi = np.log(1e-3), np.log(flow_penalties(model)[0])
    best = np.inf
    for it in range(_BUDGET_STEPS):
        if it >= 2 and clock.left() < 0:
            clock.hit("budget bound")
            break
        mu = float(np.exp((lo + hi) / 2))
        try:
            f = solve_relaxation(model, uncoupled=unc, broken_penalty=mu)
        except CouplerError:
            break  # no flow with exactly stage 1's uncoupled persons: no bound from here
        if f.lp_uncoupled > stage1.uncoupled + 0.5:
            lo = np.log(mu)  # too cheap to break: the relaxation would rather leave people out
            continue
        best = min(best, f.bound + mu * budget + f.uncoupled_penalty * f.lp_uncoupled)
        if max(0.0, best - objective) / max(1.0, abs(objective)) <= gap / 2:
            break
        if abs(f.lp_broken - budget) <= 1e-6:
            # Slope 0: this mu minimises the convex bound, no other gives less (shortage tier:
            # the first relaxation already; the seven after it cost 6 s for nothing).
            break
        if f.lp_broken > budget:
            lo = np.log(mu)
        else:
            hi = np.log(mu)
    return float(best)


def _gap(
    model: CouplingModel, assignment: np.ndarray, flow: FlowRelaxation, stage1: Stage1
) -> float:
    obj = model.evaluate(assignment).objective
    return max(0.0, _bound(model, flow, stage1) - obj) / max(1.0, abs(obj))


def _polish(
    model: CouplingModel,
    flow: FlowRelaxation,
    assignment: np.ndarray,
    stage1: Stage1,
    mip: MipBackend,
    limit: float,
    gap: float,
    seed: int,
    max_columns: int = 60_000,
    max_candidates: int = 20_000,
    say: Progress = _quiet,
    clock: _Clock | None = None,
    tight: _TightLP | None = None,
) -> tuple[np.ndarray, float] | None:
    """Improve a plan with the stage-2 MIP over every pair that could still pay off.

    Reduced-cost fixing: a pair whose reduced value exceeds the current absolute gap cannot be in a
    plan better than ``assignment``, so the MIP keeps only the other pairs. Its bound, raised to
    at least the incumbent's objective, is then a valid bound for the whole model. Returns
    (assignment, bound) or None when the MIP is too large or finds nothing. At most
    ``_POLISH_NODES`` branch-and-bound nodes; ``limit`` seconds only guard against runaway time.
    """
    if limit < 0.2:
        if clock is not None:
            clock.hit("polish")  # no time left to try: a faster machine would have polished
        return None
    current = first = model.evaluate(assignment).objective
    gap_abs = _bound(model, flow, stage1) - current
    clock = clock or _Clock(limit)
    # Small batches (the tight LP's): households that look alike, found once for every MIP here.
    alike = kinds(model) if tight is not None else None
    if tight is not None:
        # The LP with whole-household fill rows: a tighter bound, and its reduced costs exclude
        # pairs no better plan can use, so the MIP below proves its answer. First a plan near
        # the LP's: the MIP over each household's cheapest pairs against it, root node only
        # (880 persons: 162.0 -> 164.3 in about 4 s). Its plan prunes the pairs of the proving
        # MIP far more than the local search's (small tier: 102.6 -> 116.09 in 1.5 s, optimum
        # 116.12).
        rv = tight.reduced
        max_columns = max(max_columns, _TIGHT_MIP_PAIRS)
        say(f"improving the plan: MIP over each household's {_TIGHT_NEAREST} cheapest pairs")
        ph, pm = _cheapest_pairs(rv, assignment, _TIGHT_NEAREST)
        near = _pairs_mip(
            model, ph, pm, assignment, stage1, mip, clock, limit, gap, seed, 1, alike=alike
        )
        if near is not None:
            assignment, current = near[0], model.evaluate(near[0]).objective
        if max(0.0, tight.bound - current) / max(1.0, abs(current)) <= gap:
            return assignment, np.inf  # the caller takes the tight LP's bound
        gap_abs = min(gap_abs, tight.lp - current)
    else:
        rv = flow.reduced_value(model)
    keep = rv <= gap_abs + 1e-7
    coupled = assignment >= 0
    keep[np.flatnonzero(coupled), assignment[coupled]] = True
    keep &= ~model.forbidden
    n_pairs = columns = int(keep.sum())
    exact = columns <= max_columns
    if alike is not None and not exact:
        # Households that look alike are counted in the MIP, with fewer columns.
        columns = count_columns(model, keep, alike)
        exact = columns <= _TIGHT_COUNT_COLUMNS
    if exact:
        counted = f" ({columns:,} columns: look-alike households counted)"
        say(
            f"closing the gap: MIP over the {n_pairs:,} pairs reduced costs cannot exclude"
            + (counted if columns < n_pairs else "")
        )
        ph, pm = np.nonzero(keep)
    elif tight is not None:
        # The plan near the tight LP's; its bound stays the LP's.
        return (assignment, np.inf) if current > first else None
    elif len(flow.arc_h) <= max_candidates:
        # Too many pairs to prove anything quickly: improve the plan over the relaxation's
        # candidate pairs instead; the bound then stays the relaxation's.
        say(f"improving the plan: MIP over the relaxation's {len(flow.arc_h):,} candidate pairs")
        n_m = model.n_municipalities
        on = np.flatnonzero(coupled)
        pairs = np.union1d(flow.arc_h * n_m + flow.arc_m, on * n_m + assignment[on])
        ph, pm = pairs // n_m, pairs % n_m
    else:
        say(f"gap left open: {n_pairs:,} pairs could still pay off, too many for a quick MIP")
        return None
    # Up to _POLISH_NODES nodes. After the plan near the tight LP, HiGHS's heuristics find
    # nothing more: only prove (small tier: 17 s, of which 13.7 s in its sub-MIPs, against
    # 3.9 s without them).
    found = _pairs_mip(
        model,
        ph,
        pm,
        assignment,
        stage1,
        mip,
        clock,
        limit,
        gap,
        seed,
        _POLISH_NODES,
        heuristics=tight is None,
        alike=alike,
    )
    if found is None:
        return (assignment, np.inf) if current > first else None
    plan, sol = found
    best = model.evaluate(plan).objective
    bound = max(sol.bound, best) if exact and np.isfinite(sol.bound) else np.inf
    return plan, bound


def _pairs_mip(
    model: CouplingModel,
    ph: np.ndarray,
    pm: np.ndarray,
    assignment: np.ndarray,
    stage1: Stage1,
    mip: MipBackend,
    clock: _Clock,
    limit: float,
    gap: float,
    seed: int,
    nodes: int,
    heuristics: bool = True,
    alike: Kinds | None = None,
) -> tuple[np.ndarray, MipSolution] | None:
    """The stage-2 MIP over the pairs (ph, pm), warm-started from ``assignment``: its plan (or
    ``assignment`` when that is better or the MIP's breaks a budget) and its solution, or None
    when it found nothing. With ``alike`` (the model's kinds; small batches only, since they
    are found from the dense arrays), households that look alike are counted, not told apart
    (:mod:`coupler.engine.alike`), when nobody may be left out or break a criterion."""
    if stage1.broken == 0:
        # No budget row: simply leave out every pair that would break a criterion.
        ok = ~model.breaks[ph, pm]
        ph, pm = ph[ok], pm[ok]
    counted = None
    if alike is not None and stage1.broken == 0 and stage1.uncoupled == 0:
        keep = np.zeros(model.value.shape, dtype=bool)
        keep[ph, pm] = True
        counted = count_mip(model, keep, assignment, alike)
    if counted is not None:
        problem = counted.problem
    else:
        problem, layout = build_mip(
            model,
            ph,
            pm,
            objective="soft",
            allow_uncoupled=stage1.uncoupled > 0,
            max_broken=stage1.broken if stage1.broken > 0 else None,
            max_uncoupled=stage1.uncoupled,
            start=assignment,
        )
    sol = clock.solve(
        mip,
        "polish",
        problem,
        time_limit=limit,
        gap=gap / 2,
        seed=seed,
        max_nodes=nodes,
        heuristics=heuristics,
    )
    if sol.x is None:
        return None
    if counted is not None:
        plan = counted.assignment(sol.x)
    else:
        plan = layout.assignment(sol.x, model.n_households)
    current = model.evaluate(assignment).objective
    if _over_budget(model, plan, stage1) or model.evaluate(plan).objective < current:
        plan = assignment
    return plan, sol


def _cheapest_pairs(reduced: np.ndarray, plan: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each household's ``k`` cheapest usable pairs by ``reduced`` (inf: unusable), and the
    plan's own pairs, as (households, municipalities)."""
    cheapest = np.argsort(reduced, axis=1, kind="stable")[:, :k]
    near = np.zeros(reduced.shape, dtype=bool)
    near[np.arange(reduced.shape[0])[:, None], cheapest] = True
    near &= np.isfinite(reduced)
    on = np.flatnonzero(plan >= 0)
    near[on, plan[on]] = True
    ph, pm = np.nonzero(near)
    return ph, pm


def _side_nearest(
    model: CouplingModel,
    plan: np.ndarray,
    reduced: np.ndarray,
    mip: MipBackend,
    clock: _Clock,
    gap: float,
    seed: int,
    say: Progress,
) -> np.ndarray | None:
    """A better plan over each household's cheapest pairs against the side LP, every side row
    written out (root node only: HiGHS's heuristics after its cuts), or None. For batches with
    side constraints small enough (:data:`_SIDE_NEAREST_HOUSEHOLDS`) after the window search."""
    say(f"improving the plan: MIP over each household's {_SIDE_NEAREST} cheapest pairs")
    ph, pm = _cheapest_pairs(np.where(model.breaks, np.inf, reduced), plan, _SIDE_NEAREST)
    problem, layout = build_mip(model, ph, pm, objective="soft", allow_uncoupled=False, start=plan)
    sol = clock.solve(
        mip, "side polish", problem, time_limit=clock.left(), gap=gap / 2, seed=seed, max_nodes=1
    )
    if sol.x is None:
        return None
    better = layout.assignment(sol.x, model.n_households)
    new, old = model.evaluate(better), model.evaluate(plan)
    if (
        (better < 0).any()
        or new.broken_measure > old.broken_measure
        or not model.keeps_capacities(better)
        or not model.meets_side_rows(better)
        or new.objective <= old.objective
    ):
        return None
    return better


class _TightLP(NamedTuple):
    """The LP with whole-household fill rows (:func:`_tight_lp`)."""

    #: Its bound (weak duality at the last duals: the optimum once the column generation
    #: converged) plus the LP's tolerances: the reduced values are against this.
    lp: float
    #: Per pair: what coupling the household there costs against the LP's optimum (>= 0; inf
    #: where unusable).
    reduced: np.ndarray
    #: The best proven bound from it: ``lp``, or the household-integral Lagrangian bound at the
    #: LP's duals when that is lower (small tier: 116.76 -> 116.55, optimum 116.12; 880
    #: persons: 165.85 -> 165.14).
    bound: float
    #: The LP's dual per household (assignment rows): multipliers for the knapsack bound.
    duals: np.ndarray


def _tight_lp(
    model: CouplingModel,
    stage1: Stage1,
    flow: FlowRelaxation,
    plan: np.ndarray,
    clock: _Clock,
    say: Progress,
) -> _TightLP | None:
    """The LP over every usable pair with the MIP's whole-household fill rows (see
    :func:`~coupler.engine.mip.build_mip`), for small fill-balance batches without broken or
    uncoupled persons, or None; by column generation (:func:`~coupler.engine.lpbound.lp_bound`;
    2,000 persons: 1.0 s where the LP over every pair took 15 s, the same value).

    Its duals on the assignment rows are multipliers for the Lagrangian bound with one knapsack
    per municipality (:func:`~coupler.engine.lagrange.lagrangian_value`), which sees whole
    households and is valid for any multipliers.
    """
    if model.fill_weight <= 0 or stage1.broken > 0 or stage1.uncoupled > 0:
        return None
    usable = ~model.forbidden & ~model.breaks
    if int(usable.sum()) > _TIGHT_LP_PAIRS:
        return None
    say("tightening the bound: the LP with whole-household fill rows (column generation, HiGHS)")
    found = _lp_bound(model, flow, plan, clock, say, "tight LP bound")
    if not np.isfinite(found.bound) or found.reduced is None or found.duals is None:
        return None
    # The LP's tolerances, as an allowance on the bound (objective units).
    allowance = 1e-6 * max(1.0, abs(found.bound))
    value = found.bound + allowance
    lagrangian, _ = lagrangian_value(model, found.duals, usable)
    return _TightLP(value, found.reduced, min(value, lagrangian + allowance), found.duals)


def _neighbourhood(
    model: CouplingModel, flow: FlowRelaxation, rounded: np.ndarray, per_place: int
) -> np.ndarray:
    """Split households plus, at every place they touch, the households cheapest to move."""
    split = flow.split_households()
    touched = np.unique(flow.arc_m[np.isin(flow.arc_h, split) & (flow.flow > 0)])
    # Regret of a whole household: its cheapest alternative arc (reduced cost).
    alt = flow.flow == 0
    regret = np.full(model.n_households, np.inf)
    np.minimum.at(regret, flow.arc_h[alt], flow.reduced_cost[alt])
    cand = np.flatnonzero((rounded >= 0) & np.isin(rounded, touched))
    order = np.lexsort((cand, regret[cand], rounded[cand]))
    cand = cand[order]
    place = rounded[cand]
    first = np.searchsorted(place, place, side="left")
    rank = np.arange(len(cand)) - first
    chosen = cand[rank < per_place]
    # Households the flow leaves (partly) uncoupled or broken may also move.
    return np.union1d(split, chosen)


def _repair(
    model: CouplingModel,
    flow: FlowRelaxation,
    stage1: Stage1,
    mip: MipBackend,
    clock: _Clock,
    gap: float,
    seed: int,
) -> tuple[np.ndarray | None, Status]:
    rounded = flow.rounded_assignment()
    per_place = 4
    before = -1
    for _ in range(6):
        free = _neighbourhood(model, flow, rounded, per_place)
        if stage1.uncoupled > 0:
            # Who stays out is decided here too, not only by how the flow rounds.
            free = np.union1d(free, np.flatnonzero(rounded < 0))
        if len(free) == before:
            break  # the neighbourhood stopped growing: the same MIP would fail again
        before = len(free)
        fixed = rounded.copy()
        fixed[free] = -1
        in_free = np.isin(flow.arc_h, free)
        ph, pm = flow.arc_h[in_free], flow.arc_m[in_free]
        fixed_val = model.evaluate(np.where(fixed >= 0, fixed, -1))
        # Fixed households count in full; free households have no municipality in `fixed`.
        fixed_unc = int(model.size[np.setdiff1d(np.flatnonzero(rounded == -1), free)].sum())
        unc_budget = stage1.uncoupled - fixed_unc
        problem, layout = build_mip(
            model,
            ph,
            pm,
            fixed=fixed,
            objective="soft",
            max_broken=stage1.broken - fixed_val.broken_measure,
            allow_uncoupled=unc_budget > 0,
            max_uncoupled=unc_budget,
        )
        remaining = max(1.0, clock.left())
        # Spend at most half of the overall gap target on this sub-problem, in absolute terms.
        sub_value = float(model.value[free].max(axis=1).sum()) + 1.0
        sub_gap = min(0.5, 0.5 * gap * max(1.0, abs(flow.bound)) / sub_value)
        sol = clock.solve(
            mip,
            "repair",
            problem,
            time_limit=remaining,
            gap=sub_gap,
            seed=seed,
            max_nodes=_REPAIR_NODES,
        )
        if sol.x is not None:
            plan = layout.assignment(sol.x, model.n_households)
            out = rounded.copy()
            out[free] = plan[free]
            return out, Status.OPTIMAL if sol.status is Status.OPTIMAL else Status.FEASIBLE
        per_place *= 4
    return None, Status.UNKNOWN


def _side_mip(
    model: CouplingModel,
    flow: FlowRelaxation,
    stage1: Stage1,
    mip: MipBackend,
    clock: _Clock,
    gap: float,
    seed: int,
    *,
    full: bool,
) -> tuple[np.ndarray | None, Status, float]:
    if full:
        ph, pm = all_pairs(model)
    else:
        # Candidate pairs of the relaxation, plus every hard-feasible pair of households with a
        # hard criterion (side constraints may push them to places the flow never priced).
        hh = np.flatnonzero(model.has_hard)
        sub_h, sub_m = np.nonzero(model.allowed[hh] & ~model.forbidden[hh])
        pairs = np.unique(
            np.concatenate(
                [
                    flow.arc_h * model.n_municipalities + flow.arc_m,
                    hh[sub_h] * model.n_municipalities + sub_m,
                ]
            )
        )
        ph, pm = pairs // model.n_municipalities, pairs % model.n_municipalities
    # Warm start: the rounded flow plan (HiGHS ignores it where it breaks a side constraint).
    start = round_with_singles(model, flow)
    if start is not None:
        n_m = model.n_municipalities
        on = np.flatnonzero(start >= 0)
        pairs = np.union1d(ph * n_m + pm, on * n_m + start[on])
        ph, pm = pairs // n_m, pairs % n_m
    problem, layout = build_mip(
        model,
        ph,
        pm,
        objective="soft",
        allow_uncoupled=stage1.uncoupled > 0,
        max_broken=stage1.broken,
        max_uncoupled=stage1.uncoupled,
        start=start,
    )
    sol = clock.solve(
        mip,
        "mip",
        problem,
        time_limit=max(1.0, clock.left()),
        gap=gap,
        seed=seed,
        max_nodes=_SIDE_NODES,
    )
    if sol.x is None:
        return None, sol.status, np.inf
    status = Status.OPTIMAL if sol.status is Status.OPTIMAL else Status.FEASIBLE
    bound = sol.bound if full else np.inf
    return layout.assignment(sol.x, model.n_households), status, bound


def _fallback(
    model: CouplingModel,
    flow: FlowRelaxation,
    mip: MipBackend,
    clock: _Clock,
    gap: float,
    seed: int,
) -> tuple[np.ndarray, Status]:
    """The whole model with dominating penalties over every pair; feasible whenever any plan is.

    Without side constraints it is warm-started from a greedy plan and given at most
    ``_FALLBACK_NODES`` nodes (and half the time left as a safety net; the window search
    improves the plan afterwards), and the greedy plan is kept when the MIP finds nothing better,
    so there is always a plan. With side constraints it gets ``_SIDE_NODES`` nodes.
    """
    start = None if model.has_side_constraints else _greedy(model, flow)
    ph, pm = all_pairs(model)
    if start is not None:
        # Every pair is too many to find plans quickly: the relaxation's arcs, each household's
        # ten best usable places and the greedy plan's pairs.
        n_m = model.n_municipalities
        k = min(10, n_m)
        score = np.where(model.forbidden, -np.inf, model.value - 1e9 * model.breaks)
        top = (
            np.argpartition(-score, k - 1, axis=1)[:, :k]
            if k < n_m
            else np.tile(np.arange(n_m), (model.n_households, 1))
        )
        rows = np.repeat(np.arange(model.n_households), k)
        ok = np.isfinite(score[rows, top.ravel()])
        on = np.flatnonzero(start >= 0)
        pairs = np.unique(
            np.concatenate(
                [
                    flow.arc_h * n_m + flow.arc_m,
                    rows[ok] * n_m + top.ravel()[ok],
                    on * n_m + start[on],
                ]
            )
        )
        ph, pm = pairs // n_m, pairs % n_m
    problem, layout = build_mip(
        model, ph, pm, objective="penalised", allow_uncoupled=True, start=start
    )
    sol = clock.solve(
        mip,
        "fallback",
        problem,
        time_limit=max(5.0, clock.left()) if start is None else max(1.0, 0.5 * clock.left()),
        gap=gap,
        seed=seed,
        max_nodes=_SIDE_NODES if start is None else _FALLBACK_NODES,
    )
    if sol.x is None:
        if start is not None:
            return start, Status.FEASIBLE
        raise _NoPlan(
            Status.INFEASIBLE if sol.status is Status.INFEASIBLE else Status.UNKNOWN,
            f"no plan found within the time limit ({sol.status}); try a longer time limit or "
            "check the side constraints",
        )
    plan = layout.assignment(sol.x, model.n_households)
    if start is not None:
        a, b = model.evaluate(plan), model.evaluate(start)
        key_a = (-a.uncoupled_persons, -a.broken_measure, a.objective)
        if key_a < (-b.uncoupled_persons, -b.broken_measure, b.objective):
            plan = start
    return plan, Status.FEASIBLE


def _greedy(model: CouplingModel, flow: FlowRelaxation) -> np.ndarray:
    """A plan that always exists: whole households where the flow keeps them whole, then the
    rest, largest first, at their best place with room (keeping hard criteria where possible),
    else uncoupled."""
    n_m = model.n_municipalities
    a = flow.rounded_assignment()
    a[a < 0] = -1
    a[flow.split_households()] = -1
    on = a >= 0
    room = model.cap - np.bincount(a[on], weights=model.size[on], minlength=n_m).astype(np.int64)
    rest = np.flatnonzero(~on)
    for h in rest[np.argsort(-model.size[rest], kind="stable")]:
        s = int(model.size[h])
        fits = ~model.forbidden[h] & (room >= s)
        if not fits.any():
            continue
        keep = fits & ~model.breaks[h]
        score = np.where(keep if keep.any() else fits, model.value[h], -np.inf)
        m = int(np.argmax(score))
        a[h] = m
        room[m] -= s
    return a
