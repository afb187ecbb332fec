"""Key performance indicators of a plan, for comparing policies and agreements.

:func:`compute_kpis` reads a :class:`~coupler.result.Result` and the model it came from and returns
a :class:`KPIs`: flat numbers (``values``), fill per municipality, and outcomes per group.

Definitions (docs/analysis.md explains each):

* a *job* is one ``work`` criterion row (one working member), qualifying as hard or not; it is
  *kept* when the chosen municipality lies within ``reach_km`` of the job (default: the model's
  radius; :func:`coupler.analysis.compare.compare` passes the first variant's radius so that a 30 km
  agreement is judged by the same yardstick);
* *fill share* of a municipality = assigned persons / its fair share of this batch
  (``persons / total remaining x remaining``), so 1.0 means exactly proportional whether the batch
  is a month or a half year. Provinces and regions sum both sides first. ``reference_remaining``
  fixes the denominators across variants (an agreement may relax caps, not the quota itself);
* Gini is over the fill shares of the units (0 = perfectly even).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from coupler.criteria import SOFT_PARTS
from coupler.jsonsafe import json_safe
from coupler.model import CouplingModel
from coupler.result import Result

#: Household columns reported by group when present (DOMAIN.md section 9).
GROUP_COLUMNS: tuple[str, ...] = ("household_type", "gender", "age_group")

#: KPIs where more is better (used for colouring deltas and Pareto fronts); others: less is better.
HIGHER_IS_BETTER = {
    "jobs_kept",
    "jobs_kept_share",
    "jobs_kept_qualifying",
    "jobs_kept_other",
    "soft_score",
    "objective",
    "mean_score",
    *(f"mean_score_{p}" for p in SOFT_PARTS),
    "fill_min_municipality",
    "fill_min_province",
    "fill_min_labour_market_region",
}


@dataclass(frozen=True, eq=False)
class KPIs:
    """The KPIs of one plan.

    Attributes
    ----------
    values
        Flat name -> number (see :data:`KPI_LABELS` for the order and meaning).
    municipalities
        Per municipality: code, name, province, region, lat, lon, quota, remaining, fair_share,
        assigned_persons, fill_share.
    groups
        Per (group column, group value): households, persons, mean_score, jobs, jobs_kept,
        jobs_kept_share, broken_persons, uncoupled_persons.
    """

    values: dict[str, float]
    municipalities: pd.DataFrame
    groups: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_json(self) -> dict[str, Any]:
        return {
            "values": {k: _clean(v) for k, v in self.values.items()},
            "municipalities": _records(self.municipalities),
            "groups": _records(self.groups),
        }


#: Order and labels of the KPI table.
KPI_LABELS: dict[str, str] = {
    "persons": "persons in the batch",
    "jobs": "jobs held (work criteria)",
    "jobs_kept": "jobs within reach",
    "jobs_kept_share": "share of jobs within reach",
    "jobs_kept_qualifying": "qualifying jobs within reach",
    "jobs_kept_other": "other jobs (< hours / no contract) within reach",
    "broken_criteria": "hard criteria broken",
    "broken_persons": "persons with a broken hard criterion",
    "job_km_mean": "distance to job, mean (km)",
    "job_km_p90": "distance to job, p90 (km)",
    "family_km_mean": "distance to family, mean (km)",
    "family_km_p90": "distance to family, p90 (km)",
    "objective": "objective",
    "soft_score": "soft score (sum)",
    "mean_score": "soft score per household",
    **{f"mean_score_{p}": f"part {p}, mean per household" for p in SOFT_PARTS},
    **{
        f"fill_{stat}_{lvl}": f"fill share {stat}, {lvl.replace('_', ' ')}"
        for lvl in ("municipality", "province", "labour_market_region")
        for stat in ("min", "max", "gini", "below_90")
    },
    "uncoupled_persons": "uncoupled persons",
    "solve_seconds": "solve time (s)",
    "gap": "proven gap (fraction of the objective)",
}


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = all equal); NaN for an empty input."""
    x = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    if len(x) == 0:
        return math.nan
    if x.sum() <= 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def compute_kpis(
    result: Result,
    model: CouplingModel,
    *,
    reach_km: float | None = None,
    reference_remaining: np.ndarray | None = None,
) -> KPIs:
    """KPIs of ``result`` (a plan of ``model``); see the module docstring for the definitions."""
    reach = float(model.policy.hard.radius_km if reach_km is None else reach_km)
    plan = result.plan
    crit = result.criteria
    v: dict[str, float] = {"persons": float(plan["persons"].sum())}

    work = crit[crit["kind"] == "work"]
    kept = _job_km(work, model) <= reach + 1e-9
    hard_work = work["hard"].astype(bool)
    v["jobs"] = float(len(work))
    v["jobs_kept"] = float(kept.sum())
    v["jobs_kept_share"] = float(kept.mean()) if len(work) else math.nan
    v["jobs_kept_qualifying"] = float((kept & hard_work).sum())
    v["jobs_kept_other"] = float((kept & ~hard_work).sum())
    broken = crit["hard"].astype(bool) & ~crit["yielded"].astype(bool) & ~crit["met"].astype(bool)
    v["broken_criteria"] = float(broken.sum())
    v["broken_persons"] = float(result.broken_persons)
    for kind, name in (("work", "job"), ("family", "family")):
        km = crit.loc[crit["kind"] == kind, "distance_km"].dropna().to_numpy(dtype=float)
        v[f"{name}_km_mean"] = float(km.mean()) if len(km) else math.nan
        v[f"{name}_km_p90"] = float(np.percentile(km, 90)) if len(km) else math.nan
    v["objective"] = float(result.objective)
    v["soft_score"] = float(result.soft)
    coupled = plan["coupled"].astype(bool)
    v["mean_score"] = float(plan.loc[coupled, "score"].mean()) if coupled.any() else math.nan
    for p in SOFT_PARTS:
        col = f"score_{p}"
        v[f"mean_score_{p}"] = (
            float(plan.loc[coupled, col].mean()) if coupled.any() and col in plan else math.nan
        )

    mun = fill_table(result, model, reference_remaining)
    for lvl in ("municipality", "province", "labour_market_region"):
        if lvl == "municipality":
            share = mun["fill_share"].to_numpy(dtype=float)
        else:
            g = mun.groupby(lvl)[["fair_share", "assigned_persons"]].sum()
            share = (g["assigned_persons"] / g["fair_share"].where(g["fair_share"] > 0)).to_numpy(
                dtype=float
            )
        share = share[np.isfinite(share)]
        v[f"fill_min_{lvl}"] = float(share.min()) if len(share) else math.nan
        v[f"fill_max_{lvl}"] = float(share.max()) if len(share) else math.nan
        v[f"fill_gini_{lvl}"] = gini(share)
        v[f"fill_below_90_{lvl}"] = float((share < 0.9 - 1e-9).sum())
    v["uncoupled_persons"] = float(result.uncoupled_persons)
    v["solve_seconds"] = float(sum(result.seconds.values()))
    v["gap"] = float(result.gap) if math.isfinite(result.gap) else math.nan
    return KPIs(values=v, municipalities=mun, groups=group_outcomes(result, model, reach))


def fill_table(
    result: Result, model: CouplingModel, reference_remaining: np.ndarray | None = None
) -> pd.DataFrame:
    """Per municipality: reference point, quota, fair share of this batch, assigned, fill share."""
    inst = model.instance
    m = inst.municipalities
    rem = np.asarray(
        inst.remaining if reference_remaining is None else reference_remaining, dtype=float
    )
    persons = float(model.size.sum())
    ratio = min(1.0, persons / rem.sum()) if rem.sum() > 0 else 0.0
    fair = ratio * rem
    assigned = result.municipalities["assigned_persons"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "code": m["code"].astype(str).to_numpy(),
            "name": m["name"].astype(str).to_numpy(),
            "province": m["province"].astype(str).to_numpy(),
            "labour_market_region": m["labour_market_region"].astype(str).to_numpy(),
            "lat": m["lat"].to_numpy(dtype=float),
            "lon": m["lon"].to_numpy(dtype=float),
            "quota": m["quota"].to_numpy(dtype=np.int64),
            "remaining": rem.astype(np.int64),
            "fair_share": fair.round(3),
            "assigned_persons": assigned.astype(np.int64),
            "fill_share": np.where(
                fair > 0, assigned / np.where(fair > 0, fair, 1.0), np.nan
            ).round(4),
        }
    )


def _job_km(work: pd.DataFrame, model: CouplingModel) -> pd.Series:
    """Exact km from each job to the chosen municipality (inf when uncoupled); the criteria
    table's ``distance_km`` is rounded for display and must not decide a reach."""
    inst = model.instance
    src = work["criterion_municipality"].map(inst.code_index)
    dst = work["municipality"].map(inst.code_index)
    ok = (src.notna() & dst.notna()).to_numpy()
    km = np.full(len(work), np.inf)
    km[ok] = inst.distance_km[src[ok].to_numpy(dtype=np.int64), dst[ok].to_numpy(dtype=np.int64)]
    return pd.Series(km, index=work.index)


def group_outcomes(result: Result, model: CouplingModel, reach_km: float) -> pd.DataFrame:
    """Outcomes per value of each household column in :data:`GROUP_COLUMNS` that is present."""
    hh = model.instance.households
    plan = result.plan.set_index("household_id")
    crit = result.criteria
    work = crit[crit["kind"] == "work"].copy()
    work["kept"] = _job_km(work, model) <= reach_km + 1e-9
    rows = []
    for col in GROUP_COLUMNS:
        if col not in hh or hh[col].isna().all():
            continue
        group_of = (
            hh.set_index(hh["household_id"].astype(str))[col].astype("string").fillna("(missing)")
        )
        p = plan.assign(group=group_of.reindex(plan.index.astype(str)).to_numpy())
        w = work.assign(group=work["household_id"].astype(str).map(group_of))
        for value, g in p.groupby("group", sort=True):
            wg = w[w["group"] == value]
            c = g["coupled"].astype(bool)
            rows.append(
                {
                    "column": col,
                    "group": str(value),
                    "households": len(g),
                    "persons": int(g["persons"].sum()),
                    "mean_score": round(float(g.loc[c, "score"].mean()), 4)
                    if c.any()
                    else math.nan,
                    "jobs": len(wg),
                    "jobs_kept": int(wg["kept"].sum()),
                    "jobs_kept_share": round(float(wg["kept"].mean()), 4) if len(wg) else math.nan,
                    "broken_persons": int(g.loc[g["broken"].astype(str) != "", "persons"].sum()),
                    "uncoupled_persons": int(g.loc[~c, "persons"].sum()),
                }
            )
    cols = [
        "column",
        "group",
        "households",
        "persons",
        "mean_score",
        "jobs",
        "jobs_kept",
        "jobs_kept_share",
        "broken_persons",
        "uncoupled_persons",
    ]
    return pd.DataFrame(rows, columns=cols)


def _clean(v: Any) -> Any:
    v = json_safe(v)
    return round(v, 6) if isinstance(v, float) else v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _clean(x) for k, x in r.items()} for r in df.to_dict(orient="records")]


__all__ = [
    "GROUP_COLUMNS",
    "HIGHER_IS_BETTER",
    "KPI_LABELS",
    "KPIs",
    "compute_kpis",
    "fill_table",
    "gini",
    "group_outcomes",
]
