"""Compare policies and agreements on the same cases, with optional group-fairness floors.

A :class:`Variant` is a policy plus zero or more agreements. :func:`compare` builds and solves each
variant on one instance and returns a :class:`Comparison`: the KPI table with deltas against the
first variant, the per-municipality impact (who gains, who absorbs), and the runs themselves.

Fairness floors (:class:`Floor`) are **not** constraints of the MIP: the mean score of a group is
not expressible through coupler's inputs. They are enforced by re-solving with a bonus on the
values of the households of every group below its floor, doubling the bonus until each floor holds
or ``max_rounds`` is spent. The floored plan is then valued under the *original* model, so the
reported cost (objective without minus with the floor) is honest; a floor that was not reached is
reported as such.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from coupler.agreements import Agreement, build_variant, is_agreement_file
from coupler.analysis.kpi import HIGHER_IS_BETTER, KPI_LABELS, KPIs, compute_kpis
from coupler.engine import solve
from coupler.errors import InputError, Problem
from coupler.instance import Instance
from coupler.model import CouplingModel
from coupler.policy import Policy, SolveParams
from coupler.result import Result, make_result

Say = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class Variant:
    """A policy with agreements applied on top, in order."""

    name: str
    policy: Policy = field(default_factory=Policy)
    agreements: tuple[Agreement, ...] = ()

    def build(self, instance: Instance) -> CouplingModel:
        return build_variant(instance, self.policy, self.agreements)


def load_variants(paths: Sequence[str | Path], base: Policy | None = None) -> list[Variant]:
    """Variants from files in command-line order.

    A policy file starts a new base; an agreement file is applied on top of the most recent policy
    (or ``base``, or the default policy). The name ``default`` stands for ``Policy()``.
    """
    current, current_name = base or Policy(), "default"
    out: list[Variant] = []
    for p in paths:
        if str(p) == "default":
            current, current_name = Policy(), "default"
            out.append(Variant("default", current))
            continue
        path = Path(p)
        if not path.is_file():
            raise InputError(
                Problem(str(p), "file not found (give a policy or agreement TOML, or 'default')")
            )
        if is_agreement_file(path):
            a = Agreement.from_file(path)
            out.append(Variant(f"{current_name}+{a.name}", current, (a,)))
        else:
            current, current_name = Policy.from_file(path), path.stem
            out.append(Variant(current_name, current))
    names = [v.name for v in out]
    for i, n in enumerate(names):
        if names.count(n) > 1:
            out[i] = dataclasses.replace(out[i], name=f"{n}#{names[: i + 1].count(n)}")
    return out


# -- fairness floors ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Floor:
    """Each group of ``column`` must reach ``value`` on ``metric``.

    ``metric="score"``: the group's mean soft score per household >= ``value`` x the overall mean.
    ``metric="jobs_kept"``: the group's share of jobs within reach >= ``value``.
    """

    column: str
    metric: Literal["score", "jobs_kept"]
    value: float

    _PATTERN = re.compile(r"^\s*([A-Za-z_]+)\s*:\s*(score|jobs_kept)\s*>=\s*([0-9.]+)\s*$")

    @classmethod
    def parse(cls, text: str) -> Floor:
        """Parse ``COLUMN:score>=0.95`` or ``COLUMN:jobs_kept>=0.8``."""
        m = cls._PATTERN.match(text)
        if not m:
            raise InputError(
                Problem("--floor", f"expected COLUMN:score>=X or COLUMN:jobs_kept>=X; got {text!r}")
            )
        value = float(m.group(3))
        if m.group(2) == "jobs_kept" and not 0 <= value <= 1:
            raise InputError(
                Problem("--floor", f"a jobs_kept floor must be in [0, 1]; got {value}")
            )
        return cls(m.group(1), m.group(2), value)  # type: ignore[arg-type]

    def label(self) -> str:
        rel = " x overall mean" if self.metric == "score" else ""
        return f"{self.column}: {self.metric} >= {self.value:g}{rel}"

    def shortfalls(self, kpis: KPIs) -> dict[str, float]:
        """Group -> how far it is below the floor (only groups below it)."""
        g = kpis.groups[kpis.groups["column"] == self.column]
        if self.metric == "score":
            need = self.value * kpis.values["mean_score"]
            have = g.set_index("group")["mean_score"]
        else:
            need = self.value
            have = g[g["jobs"] > 0].set_index("group")["jobs_kept_share"]
        return {
            str(k): float(need - x) for k, x in have.items() if np.isfinite(x) and x < need - 1e-9
        }


@dataclass(frozen=True, eq=False)
class FloorOutcome:
    """What a floor did: rounds, bonuses, whether it holds, and its cost in objective."""

    floor: Floor
    reached: bool
    rounds: int
    bonus: dict[str, float]
    objective_without: float
    objective_with: float
    before: dict[str, float]
    after: dict[str, float]

    @property
    def cost(self) -> float:
        return self.objective_without - self.objective_with

    @property
    def cost_share(self) -> float:
        return self.cost / max(1.0, abs(self.objective_without))

    def to_json(self) -> dict[str, Any]:
        return {
            "floor": self.floor.label(),
            "reached": self.reached,
            "rounds": self.rounds,
            "bonus": self.bonus,
            "objective_without": self.objective_without,
            "objective_with": self.objective_with,
            "cost": self.cost,
            "cost_share": self.cost_share,
            "shortfall_before": self.before,
            "shortfall_after": self.after,
        }


def apply_floor(
    model: CouplingModel,
    result: Result,
    floor: Floor,
    *,
    reach_km: float,
    max_rounds: int = 5,
    params: SolveParams | None = None,
    say: Say | None = None,
    reference_remaining: np.ndarray | None = None,
) -> tuple[Result, FloorOutcome]:
    """Re-solve with group bonuses until ``floor`` holds; the plan is valued under ``model``."""
    say = say or (lambda _: None)
    hh = model.instance.households
    if floor.column not in hh or hh[floor.column].isna().all():
        raise InputError(
            Problem("--floor", f"the households have no '{floor.column}' column to group by")
        )
    group = hh[floor.column].astype("string").fillna("(missing)").to_numpy()
    kp = compute_kpis(result, model, reach_km=reach_km, reference_remaining=reference_remaining)
    before = floor.shortfalls(kp)
    if not before:
        return result, FloorOutcome(floor, True, 0, {}, result.objective, result.objective, {}, {})
    near_job = _near_job(model, reach_km) if floor.metric == "jobs_kept" else None
    scale = float(np.abs(model.value).max()) or 1.0
    bonus: dict[str, float] = {}
    best, short = result, before
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        for g in short:
            bonus[g] = 0.25 if g not in bonus else bonus[g] * 2
        value = model.value.copy()
        for g, b in bonus.items():
            rows = group == g
            if floor.metric == "score":
                value[rows] *= 1.0 + b
            else:
                assert near_job is not None
                value[rows] += b * scale * near_job[rows]
        value.flags.writeable = False
        say(
            f"floor {floor.label()}: round {rounds}, bonus "
            + ", ".join(f"{k} {v:g}" for k, v in bonus.items())
        )
        adjusted = solve(dataclasses.replace(model, value=value), params)
        assignment = adjusted.assignment
        best = make_result(
            model,
            assignment,
            status=adjusted.status,
            bound=result.bound,
            broken_lower_bound=result.broken_lower_bound,
            uncoupled_lower_bound=result.uncoupled_lower_bound,
            backend=adjusted.backend,
            method=adjusted.method,
            seconds={
                k: result.seconds.get(k, 0.0) + adjusted.seconds.get(k, 0.0)
                for k in set(result.seconds) | set(adjusted.seconds)
            },
            info={**adjusted.info, "floor_rounds": rounds},
        )
        short = floor.shortfalls(
            compute_kpis(best, model, reach_km=reach_km, reference_remaining=reference_remaining)
        )
        if not short:
            break
    return best, FloorOutcome(
        floor, not short, rounds, bonus, result.objective, best.objective, before, short
    )


def _near_job(model: CouplingModel, reach_km: float) -> np.ndarray:
    """float[h, m]: 1 where m is within reach of every job of h (0 for households without a job)."""
    inst = model.instance
    c = inst.criteria
    out = np.zeros((model.n_households, model.n_municipalities))
    work = c[c["kind"].astype(str) == "work"]
    if len(work):
        h = work["household_id"].map(inst.household_index).to_numpy(dtype=np.int64)
        m = work["municipality"].map(inst.code_index).to_numpy(dtype=np.int64)
        near = inst.distance_km[m] <= reach_km + 1e-9
        ok = np.ones((model.n_households, model.n_municipalities), dtype=bool)
        np.logical_and.at(ok, h, near)
        out[np.unique(h)] = ok[np.unique(h)]
    return out


# -- comparing ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Run:
    """One variant solved: its model, result, KPIs and floor outcome (if any)."""

    variant: Variant
    model: CouplingModel
    result: Result
    kpis: KPIs
    floor: FloorOutcome | None = None


@dataclass(frozen=True, eq=False)
class Comparison:
    """Runs of several variants on the same cases."""

    runs: tuple[Run, ...]
    reach_km: float

    @property
    def names(self) -> list[str]:
        return [r.variant.name for r in self.runs]

    def table(self) -> pd.DataFrame:
        """KPI rows; one column per variant and one delta column per later variant."""
        rows = []
        for key, label in KPI_LABELS.items():
            vals = [r.kpis.values.get(key, math.nan) for r in self.runs]
            row: dict[str, Any] = {"kpi": key, "label": label}
            for name, v in zip(self.names, vals, strict=True):
                row[name] = v
            for name, v in zip(self.names[1:], vals[1:], strict=True):
                row[f"delta {name}"] = v - vals[0]
            rows.append(row)
        return pd.DataFrame(rows)

    def impact(self) -> pd.DataFrame:
        """Per municipality: assigned persons per variant and the change against the first."""
        base = self.runs[0].kpis.municipalities
        out = base[["code", "name", "province", "labour_market_region", "fair_share"]].copy()
        out[self.names[0]] = base["assigned_persons"].to_numpy()
        for r in self.runs[1:]:
            out[r.variant.name] = r.kpis.municipalities["assigned_persons"].to_numpy()
            out[f"delta {r.variant.name}"] = out[r.variant.name] - out[self.names[0]]
        return out

    def group_table(self) -> pd.DataFrame:
        frames = [r.kpis.groups.assign(variant=r.variant.name) for r in self.runs]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def to_json(self) -> dict[str, Any]:
        """Everything the HTML report needs (see :mod:`coupler.analysis.report`)."""
        return {
            "kind": "comparison",
            "reach_km": self.reach_km,
            "variants": [
                {
                    "name": r.variant.name,
                    "agreements": [
                        {"name": a.name, "description": a.description} for a in r.variant.agreements
                    ],
                    "policy": r.model.policy.to_dict(),
                    "status": str(r.result.status),
                    "kpis": r.kpis.to_json(),
                    "floor": r.floor.to_json() if r.floor else None,
                }
                for r in self.runs
            ],
            "higher_is_better": sorted(HIGHER_IS_BETTER),
            "labels": KPI_LABELS,
        }


def compare(
    instance: Instance,
    variants: Sequence[Variant],
    *,
    reach_km: float | None = None,
    floor: Floor | None = None,
    params: SolveParams | None = None,
    say: Say | None = None,
) -> Comparison:
    """Solve every variant on ``instance``; KPIs use the first variant's radius and quotas.

    ``params`` (solver settings) applies to every variant; by default each variant's policy
    ``[solver]`` table does.
    """
    if not variants:
        raise InputError(Problem("compare", "give at least one policy or agreement"))
    say = say or (lambda _: None)
    reach = float(variants[0].policy.hard.radius_km if reach_km is None else reach_km)
    reference = np.asarray(instance.remaining)
    runs = []
    for i, v in enumerate(variants, 1):
        say(f"[{i}/{len(variants)}] {v.name}: building and solving")
        model = v.build(instance)
        result = solve(model, params)
        outcome = None
        if floor is not None:
            result, outcome = apply_floor(
                model,
                result,
                floor,
                reach_km=reach,
                params=params,
                say=say,
                reference_remaining=reference,
            )
        kp = compute_kpis(result, model, reach_km=reach, reference_remaining=reference)
        runs.append(Run(v, model, result, kp, outcome))
    return Comparison(tuple(runs), reach)


__all__ = [
    "Comparison",
    "Floor",
    "FloorOutcome",
    "Run",
    "Variant",
    "apply_floor",
    "compare",
    "load_variants",
]
