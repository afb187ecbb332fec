"""Compute the true optima of the small and tight tiers once, and store them.

``python -m benchmarks.optima [--tier T ...] [--seeds 0,1] [--time-limit S]`` solves each case
with the engine, then proves it with an exact MIP at gap 0, warm-started from the engine's plan:
the class model (:mod:`coupler.engine.classes`: alike municipalities as one class, an exact
reformulation) under stage 1's proven budgets when it is small enough, otherwise the plain
MIP over every pair whose reduced value (against the transportation relaxation) does not exceed
the plan's distance to the bound (leaving the others out cannot lose a better plan).
The results go to ``benchmarks/optima.json`` (objective, bound, broken and uncoupled persons,
proven or not); the runner reads them to show each plan's distance to the optimum.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.workloads import get_workload

OPTIMA = Path(__file__).resolve().parent / "optima.json"
TIERS = ("tight", "tight-place", "shortage-small", "small", "end-of-period")


def load_optima(path: Path = OPTIMA) -> dict[str, dict[str, Any]]:
    """The stored optima by ``"tier/seed"`` (empty when none were computed)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def exact_optimum(tier: str, seed: int, time_limit: float) -> dict[str, Any]:
    """Solve one (tier, seed) exactly (see the module docstring)."""
    from coupler import build_model, solve
    from coupler.engine.backends import get_backend
    from coupler.engine.flow import solve_relaxation
    from coupler.engine.solve import _polish
    from coupler.engine.stage1 import Stage1, solve_stage1
    from coupler.result import Status

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        case = get_workload(tier).prepare(seed, Path(d))
        inst, policy = case.load()
    model = build_model(inst, policy)
    plan = solve(model).require_plan()
    mip = get_backend("highs")
    flow = solve_relaxation(model)
    if flow.lp_broken > 0.5 or flow.lp_uncoupled > 0.5:
        stage1 = solve_stage1(model, mip, time_limit=time_limit, seed=seed)
        if stage1.uncoupled > 0:
            flow = solve_relaxation(model, uncoupled=stage1.uncoupled)
    else:
        stage1 = Stage1(0, 0, True, Status.OPTIMAL, 0.0)
    from coupler.engine.classes import build_class_model

    cm = None
    if not model.has_side_constraints:
        cm = build_class_model(
            model,
            allow_broken=stage1.broken > 0,
            max_broken=stage1.broken if stage1.broken > 0 else None,
            allow_uncoupled=stage1.uncoupled > 0,
            max_uncoupled=stage1.uncoupled if stage1.uncoupled > 0 else None,
        )
    start = None if cm is None else cm.start(model, plan.assignment)
    if cm is not None and start is not None:
        sol = mip.solve(
            dataclasses.replace(cm.problem, start=start),
            time_limit=time_limit,
            gap=0.0,
            seed=seed,
        )
        assignment = plan.assignment if sol.x is None else cm.assignment(model, sol.x)
        if model.evaluate(assignment).objective < model.evaluate(plan.assignment).objective:
            assignment = plan.assignment
        value = model.evaluate(assignment)
        return _record(model, value, float(sol.bound), stage1.proven, t0, "class model")
    better = _polish(
        model,
        flow,
        plan.assignment.copy(),
        stage1,
        mip,
        time_limit,
        0.0,
        seed,
        max_columns=2_000_000,
        max_candidates=0,
    )
    assignment = plan.assignment if better is None else better[0]
    bound = float("inf") if better is None else float(better[1])
    value = model.evaluate(assignment)
    return _record(model, value, bound, stage1.proven, t0, "reduced-cost MIP")


def _record(
    model: Any, value: Any, bound: float, broken_proven: bool, t0: float, method: str
) -> dict[str, Any]:
    """One entry of ``optima.json``."""
    return {
        "objective": value.objective,
        "bound": bound,
        "proven": bool(bound - value.objective <= 1e-6 * max(1.0, abs(value.objective))),
        "broken_persons": value.broken_persons,
        "uncoupled_persons": value.uncoupled_persons,
        "broken_proven": broken_proven,
        "households": model.n_households,
        "persons": model.persons,
        "method": method,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.optima", description=__doc__)
    ap.add_argument("--tier", action="append", choices=TIERS)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--time-limit", type=float, default=900.0)
    ap.add_argument("--out", type=Path, default=OPTIMA)
    args = ap.parse_args(argv)
    stored = load_optima(args.out)
    for tier in args.tier or TIERS:
        for seed in (int(s) for s in args.seeds.split(",")):
            rec = exact_optimum(tier, seed, args.time_limit)
            stored[f"{tier}/{seed}"] = rec
            print(tier, seed, rec, flush=True)
            args.out.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
