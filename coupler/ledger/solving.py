"""How the ledger calls the engine: :func:`coupler.solve`, with a plain-MIP fallback.

The engine's fast path (flow relaxation, repair) is the normal route. Should it raise on an
instance (seen on small or tightly capped instances while the engine is being reworked), the
ledger solves the same model as one penalised MIP over every usable pair instead, so a
regievoerder's batch is never blocked by an engine path; the batch records which route it took.
"""

from __future__ import annotations

from typing import Any

from coupler.engine.backends import get_backend
from coupler.engine.mip import all_pairs, build_mip
from coupler.engine.solve import solve
from coupler.errors import CouplerError
from coupler.model import CouplingModel
from coupler.result import Result, Status, make_result


def solve_batch(model: CouplingModel, progress: Any = None) -> Result:
    """``solve(model)``; on an engine failure the penalised MIP over all pairs."""
    try:
        return solve(model, progress=progress)
    except Exception as exc:  # any engine failure; KeyboardInterrupt still propagates
        first = f"{type(exc).__name__}: {exc}"
    settings = model.policy.solver
    ph, pm = all_pairs(model)
    problem, layout = build_mip(model, ph, pm, objective="penalised", allow_uncoupled=True)
    sol = get_backend(settings.backend).solve(
        problem, time_limit=settings.time_limit, gap=settings.gap, seed=settings.seed
    )
    if sol.x is None:
        raise CouplerError(f"the engine failed ({first}) and so did the plain MIP ({sol.status})")
    assignment = layout.assignment(sol.x, model.n_households)
    value = model.evaluate(assignment)
    return make_result(
        model,
        assignment,
        status=Status.FEASIBLE,
        bound=float("inf"),
        broken_lower_bound=0,
        uncoupled_lower_bound=0,
        backend=settings.backend,
        method="ledger-fallback-mip",
        seconds={"mip": sol.seconds},
        info={"engine_error": first, "broken_persons_mip": value.broken_persons},
    )
