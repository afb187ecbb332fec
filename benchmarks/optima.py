"""Compute the true optima of the ``tight`` and ``end-of-period`` tiers once, and store them.

``python -m benchmarks.optima [--tier T ...] [--seeds 0,1] [--time-limit S]`` solves each case
with the engine, then proves it with an exact MIP: every pair whose reduced value (against the
transportation relaxation) exceeds the plan's distance to the bound is left out, which cannot
lose a better plan, and HiGHS solves the rest with gap 0, warm-started from the engine's plan.
The results go to ``benchmarks/optima.json`` (objective, bound, broken and uncoupled persons,
proven or not); the runner reads them to show each plan's distance to the optimum.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.workloads import get_workload

OPTIMA = Path(__file__).resolve().parent / "optima.json"
TIERS = ("tight", "end-of-period")


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
    return {
        "objective": value.objective,
        "bound": bound,
        "proven": bool(bound - value.objective <= 1e-6 * max(1.0, abs(value.objective))),
        "broken_persons": value.broken_persons,
        "uncoupled_persons": value.uncoupled_persons,
        "broken_proven": stage1.proven,
        "households": model.n_households,
        "persons": model.persons,
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
