"""The answer of a solve: the plan, its quality and how it was found.

A :class:`Result` holds plain tables (pandas) and numbers, so it pickles and round-trips through
its output files. :func:`make_result` derives every table from the model and an assignment;
nothing in it trusts the solver beyond the assignment itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from coupler.blocks import row_blocks
from coupler.criteria import SOFT_PARTS, soft_parts_at
from coupler.errors import CouplerError
from coupler.instance import Instance
from coupler.model import CouplingModel


class Status(StrEnum):
    """Outcome of a solve."""

    OPTIMAL = "optimal"  # proven within the gap target
    FEASIBLE = "feasible"  # a plan, stopped at a limit; see the gap
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"  # stopped with no plan, or a native status we do not know
    ERROR = "error"


@dataclass(frozen=True, eq=False)
class Result:
    """A coupling plan with status, objective, proven bound and gap.

    Attributes
    ----------
    assignment
        Municipality index per household of the model (-1 = uncoupled): the plan itself, from
        which every table is derived.
    plan
        One row per household (see :func:`plan_table`).
    criteria
        One row per criterion: distance to the chosen municipality and whether it is met.
    municipalities
        Quota, assigned persons and fill per municipality.
    objective, bound, gap
        Soft objective (soft score minus the fill-balance penalty), a proven upper bound on it for
        plans with as few broken and uncoupled persons, and ``(bound - objective) / max(1, |objective|)``.
    broken_persons, broken_lower_bound
        Persons whose hard criterion is broken in the plan, and the minimum (proven when
        ``lower_bounds_proven``).
    broken_households, broken_work
        Coupled households with a broken hard criterion, and broken work criteria (jobs lost).
    lower_bounds_proven
        Whether the uncoupled and broken minimums are proven (stage 1 solved exactly).
    """

    status: Status
    assignment: np.ndarray
    plan: pd.DataFrame
    criteria: pd.DataFrame
    municipalities: pd.DataFrame
    conflicts: pd.DataFrame
    objective: float
    bound: float
    soft: float
    shortfall: float
    broken_persons: int
    broken_lower_bound: int
    uncoupled_persons: int
    uncoupled_lower_bound: int
    backend: str
    method: str
    seconds: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    broken_households: int = 0
    broken_work: int = 0
    lower_bounds_proven: bool = False

    @property
    def has_plan(self) -> bool:
        """Whether the result holds a plan (optimal or feasible); else see ``info["message"]``."""
        return self.status in (Status.OPTIMAL, Status.FEASIBLE)

    def require_plan(self) -> Result:
        """This result when it holds a plan.

        Raises
        ------
        CouplerError
            When it holds none, with the engine's reason (``info["message"]``).
        """
        if not self.has_plan:
            why = self.info.get("message", "the engine found none")
            raise CouplerError(f"no plan ({self.status}): {why}")
        return self

    @property
    def gap(self) -> float:
        if not (math.isfinite(self.bound) and math.isfinite(self.objective)):
            return math.inf
        return max(0.0, self.bound - self.objective) / max(1.0, abs(self.objective))

    def stages(self) -> list[dict[str, Any]]:
        """The lexicographic stages in order, each with its value, bound and whether it is proven.

        Uncoupled and broken persons are minimised (their bound is a lower bound); the soft
        objective is maximised (an upper bound), and its gap is relative to the soft objective
        only: ``(bound - objective) / max(1, |objective|)``.
        """
        proven = self.lower_bounds_proven and self.has_plan
        soft_proven = self.status is Status.OPTIMAL
        return [
            {
                "stage": "uncoupled_persons",
                "value": self.uncoupled_persons,
                "bound": self.uncoupled_lower_bound,
                "proven": proven and self.uncoupled_persons == self.uncoupled_lower_bound,
            },
            {
                "stage": "broken_persons",
                "value": self.broken_persons,
                "bound": self.broken_lower_bound,
                "proven": proven and self.broken_persons == self.broken_lower_bound,
            },
            {
                "stage": "soft_objective",
                "value": self.objective,
                "bound": self.bound if math.isfinite(self.bound) else None,
                "proven": soft_proven,
                "gap": self.gap if math.isfinite(self.gap) else None,
            },
        ]

    def summary(self) -> str:
        """A fixed-format text summary: one line per stage (value, bound, proven), then counts."""
        p = self.plan

        def mark(ok: bool) -> str:
            return "proven" if ok else "not proven"

        unc, brk, soft = self.stages()
        gap = "-" if soft["gap"] is None else f"{soft['gap']:.4%}"
        bound = "-" if soft["bound"] is None else f"{soft['bound']:,.4f}"
        lines = [
            f"status            {self.status}",
            f"households        {len(p):,} ({int(p['persons'].sum()):,} persons)",
            f"1 uncoupled       {unc['value']:,} persons (minimum {unc['bound']:,}, "
            f"{mark(unc['proven'])})",
            f"2 broken          {brk['value']:,} persons (minimum {brk['bound']:,}, "
            f"{mark(brk['proven'])}); {self.broken_households:,} households, "
            f"{self.broken_work:,} work criteria",
            f"3 soft objective  {self.objective:,.4f} (bound {bound}, gap {gap}, "
            f"{mark(soft['proven'])})",
            f"conflicts         {self.conflicts['household_id'].nunique():,} households, "
            f"{len(self.conflicts):,} criteria yielded",
            f"method            {self.method} ({self.backend})",
            "time              " + ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items()),
        ]
        if "message" in self.info:
            lines.insert(1, f"message           {self.info['message']}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "objective": self.objective,
            "bound": self.bound if math.isfinite(self.bound) else None,
            "gap": self.gap if math.isfinite(self.gap) else None,
            "soft_score": self.soft,
            "fill_shortfall_persons": self.shortfall,
            "households": len(self.plan),
            "persons": int(self.plan["persons"].sum()),
            "broken_persons": self.broken_persons,
            "broken_lower_bound": self.broken_lower_bound,
            "broken_households": self.broken_households,
            "broken_work_criteria": self.broken_work,
            "lower_bounds_proven": self.lower_bounds_proven,
            "uncoupled_persons": self.uncoupled_persons,
            "uncoupled_lower_bound": self.uncoupled_lower_bound,
            "conflicts": int(self.conflicts["household_id"].nunique()),
            "yielded_criteria": len(self.conflicts),
            "backend": self.backend,
            "method": self.method,
            "seconds": self.seconds,
            "stages": self.stages(),
            **self.info,
        }


def make_result(
    model: CouplingModel,
    assignment: np.ndarray,
    *,
    status: Status,
    bound: float,
    broken_lower_bound: int,
    uncoupled_lower_bound: int,
    backend: str,
    method: str,
    seconds: dict[str, float],
    info: dict[str, Any] | None = None,
    lower_bounds_proven: bool = False,
) -> Result:
    """Build a :class:`Result` from a model and a municipality index per household (-1 = none)."""
    a = np.array(assignment, dtype=np.int64)
    val = model.evaluate(a)
    a.flags.writeable = False
    return Result(
        status=status,
        assignment=a,
        plan=plan_table(model, a),
        criteria=criteria_table(model, a),
        municipalities=municipality_table(model, val.assigned, a),
        conflicts=conflict_table(model),
        objective=val.objective,
        bound=bound,
        soft=val.soft,
        shortfall=val.shortfall,
        broken_persons=val.broken_persons,
        broken_lower_bound=broken_lower_bound,
        uncoupled_persons=val.uncoupled_persons,
        uncoupled_lower_bound=uncoupled_lower_bound,
        backend=backend,
        method=method,
        seconds=dict(seconds),
        info=dict(info or {}),
        lower_bounds_proven=lower_bounds_proven,
        **_broken_counts(model, a),
    )


def _broken_counts(model: CouplingModel, a: np.ndarray) -> dict[str, int]:
    """Coupled households with a broken hard criterion, and broken active work criteria."""
    on = np.flatnonzero(a >= 0)
    households = int(model.breaks[on, a[on]].sum())
    t = model.hard.table
    active = t["hard"].to_numpy(dtype=bool) & ~t["yielded"].to_numpy(dtype=bool)
    work = active & (t["kind"].astype(str).to_numpy() == "work")
    h = t["household"].to_numpy(dtype=np.int64)[work]
    m = t["municipality"].to_numpy(dtype=np.int64)[work]
    chosen = a[h]
    far = model.instance.distance_km[m, np.maximum(chosen, 0)] > model.policy.hard.radius_km + 1e-9
    return {"broken_households": households, "broken_work": int(((chosen >= 0) & far).sum())}


def plan_assignment(instance: Instance, plan: pd.DataFrame) -> np.ndarray:
    """Municipality index per household of ``instance`` (-1 = uncoupled) from a plan table.

    ``plan`` has ``household_id`` and ``municipality`` (a code, or empty where uncoupled) and is
    joined by label. Households the plan does not list are uncoupled.

    Raises
    ------
    CouplerError
        When the plan names a household or a municipality code the instance does not know (never
        silently read as uncoupled), or lists a household twice.
    """
    ids = plan["household_id"].astype(str)
    if ids.duplicated().any():
        raise CouplerError(f"the plan lists {int(ids.duplicated().sum())} households twice")
    h = ids.map(instance.household_index)
    if h.isna().any():
        raise CouplerError(
            f"the plan names {int(h.isna().sum())} households the instance does not know"
        )
    codes = plan["municipality"]
    named = codes.notna().to_numpy() & (codes.astype(str).str.strip() != "").to_numpy()
    m = codes[named].astype(str).str.strip().map(instance.code_index)
    if m.isna().any():
        raise CouplerError(
            f"the plan names {int(m.isna().sum())} municipality codes the instance does not know"
        )
    out = np.full(instance.n_households, -1, dtype=np.int64)
    out[h.to_numpy(dtype=np.int64)[named]] = m.to_numpy(dtype=np.int64)
    return out


def criteria_table(model: CouplingModel, a: np.ndarray) -> pd.DataFrame:
    """One row per criterion: kind, its municipality, distance to the chosen one, met or not."""
    inst = model.instance
    t = model.hard.table
    h, m = t["household"].to_numpy(), t["municipality"].to_numpy()
    chosen = a[h]
    km = np.where(chosen >= 0, inst.distance_km[m, np.maximum(chosen, 0)], np.nan)
    radius = model.policy.hard.radius_km
    met = (chosen >= 0) & (km <= radius + 1e-9)
    return pd.DataFrame(
        {
            "household_id": inst.household_ids[h],
            "kind": t["kind"].to_numpy(),
            "criterion_municipality": inst.codes[m],
            "hard": t["hard"].to_numpy(),
            "yielded": t["yielded"].to_numpy(),
            "yield_reason": t["yield_reason"].to_numpy(),
            "municipality": np.where(chosen >= 0, inst.codes[np.maximum(chosen, 0)], None),
            "distance_km": np.round(km, 1),
            "met": met,
        }
    )


def plan_table(model: CouplingModel, a: np.ndarray) -> pd.DataFrame:
    """One row per household: where, how many persons, each hard criterion, score parts and the
    best alternative."""
    inst = model.instance
    n_h = model.n_households
    rows = np.arange(n_h)
    coupled = a >= 0
    am = np.maximum(a, 0)
    mun = inst.municipalities
    ct = criteria_table(model, a)
    km = ct["distance_km"].to_numpy(dtype=float)
    km_text = np.where(np.isnan(km), "-", np.char.mod("%.1f", np.nan_to_num(km)))
    ct["text"] = (
        ct["kind"].astype(str)
        + ":"
        + ct["criterion_municipality"].astype(str)
        + ":"
        + km_text
        + "km:"
        + np.where(
            ct["met"],
            "met",
            np.where(ct["yielded"], "yielded", np.where(ct["hard"], "BROKEN", "soft")),
        )
    )
    crit_text = ct.groupby("household_id", sort=False)["text"].agg("; ".join)
    broken_kinds = (
        ct[ct["hard"] & ~ct["yielded"] & ~ct["met"]]
        .groupby("household_id", sort=False)["kind"]
        .agg(";".join)
    )
    yielded_kinds = ct[ct["yielded"]].groupby("household_id", sort=False)["kind"].agg(";".join)
    parts = soft_parts_at(inst, model.policy, rows, am)
    out = pd.DataFrame(
        {
            "household_id": inst.household_ids,
            "municipality": pd.array(np.where(coupled, inst.codes[am], None), dtype="string"),
            "municipality_name": pd.array(
                np.where(coupled, mun["name"].to_numpy()[am], None), dtype="string"
            ),
            "province": pd.array(
                np.where(coupled, mun["province"].to_numpy()[am], None), dtype="string"
            ),
            "labour_market_region": pd.array(
                np.where(coupled, mun["labour_market_region"].to_numpy()[am], None), dtype="string"
            ),
            "persons": model.size,
            "coupled": coupled,
        }
    )
    ids = out["household_id"]
    out["hard_criteria"] = ids.map(crit_text).astype(object).fillna("").astype(str)
    out["hard_met"] = ~ids.isin(broken_kinds.index) & coupled
    out["broken"] = ids.map(broken_kinds).astype(object).fillna("").astype(str)
    out["yielded"] = ids.map(yielded_kinds).astype(object).fillna("").astype(str)
    for name in SOFT_PARTS:
        out[f"score_{name}"] = np.where(coupled, parts[name], 0.0).round(4)
    score = np.where(coupled, model.value[rows, am], 0.0)
    out["score"] = score.round(6)
    # Best alternative: the best other usable municipality that keeps every hard criterion met
    # (a block of households at a time: no temporary of the whole matrix).
    best: np.ndarray = np.zeros(n_h, dtype=np.int64)
    best_val = np.zeros(n_h)
    for b in row_blocks(n_h, model.n_municipalities):
        usable = ~model.forbidden[b] & (model.allowed[b] | ~model.has_hard[b, None])
        alt_val = np.where(usable, model.value[b], -np.inf)
        on = np.flatnonzero(coupled[b])
        alt_val[on, am[b][on]] = -np.inf
        best[b] = alt_val.argmax(axis=1)
        best_val[b] = alt_val[np.arange(alt_val.shape[0]), best[b]]
    has_alt = np.isfinite(best_val)
    out["best_alternative"] = pd.array(np.where(has_alt, inst.codes[best], None), dtype="string")
    out["alternative_score_diff"] = np.where(has_alt, best_val - score, np.nan).round(6)
    return out


def municipality_table(model: CouplingModel, assigned: np.ndarray, a: np.ndarray) -> pd.DataFrame:
    """Quota, remaining, assigned persons and households, and fill per municipality."""
    mun = model.instance.municipalities
    households = np.bincount(a[a >= 0], minlength=model.n_municipalities)
    rem = model.instance.remaining
    return pd.DataFrame(
        {
            "code": mun["code"],
            "name": mun["name"],
            "province": mun["province"],
            "labour_market_region": mun["labour_market_region"],
            "quota": mun["quota"].to_numpy(),
            "remaining": rem,
            "capacity": model.cap,
            "assigned_persons": assigned.astype(np.int64),
            "assigned_households": households,
            "fill": np.where(rem > 0, assigned / np.maximum(rem, 1), np.nan).round(4),
            "fill_target_persons": model.target.round(2),
            "shortfall_persons": np.maximum(model.target - assigned, 0).round(2),
        }
    )


def group_table(municipalities: pd.DataFrame, by: str) -> pd.DataFrame:
    """Quota and fill aggregated per province or labour-market region."""
    g = municipalities.groupby(by, sort=True)[
        ["quota", "remaining", "capacity", "assigned_persons", "assigned_households"]
    ].sum()
    g["fill"] = (g["assigned_persons"] / g["remaining"].where(g["remaining"] > 0)).round(4)
    return g.reset_index()


def conflict_table(model: CouplingModel) -> pd.DataFrame:
    """One row per yielded hard criterion: household, the criterion, what was kept and why."""
    c = model.hard.conflicts
    inst = model.instance
    m = c["municipality"].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "household_id": inst.household_ids[c["household"].to_numpy(dtype=np.int64)],
            "kind": c["kind"].to_numpy(dtype=object),
            "criterion_municipality": inst.codes[m],
            "criterion_municipality_name": inst.municipalities["name"].to_numpy()[m],
            "kept": c["kept"].to_numpy(dtype=object),
            "reason": c["reason"].to_numpy(dtype=object),
        }
    )
