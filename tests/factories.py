"""Tiny canonical instances built in memory, and a brute-force optimum to check the engine against.

The frames follow :mod:`coupler.schema` exactly (columns in order, pandas dtypes), as
:mod:`coupler.io` would produce them, so an :class:`~coupler.instance.Instance` built here goes
through the same validation as one read from files.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from coupler import schema
from coupler.instance import Instance
from coupler.model import CouplingModel
from coupler.quota import fill_quotas

#: Points on one parallel (lat 52.0), 0.5 degree of longitude apart: about 34.3 km between
#: neighbours, 68.6 km two apart. With the default 50 km radius a criterion at place i allows
#: exactly places i-1, i and i+1.
LINE = [(52.0, 4.5 + 0.5 * i) for i in range(6)]


def frame(rows: Sequence[dict[str, Any]], dtypes: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """A canonical frame from dict rows; absent columns are missing values."""
    data = {name: pd.array([r.get(name) for r in rows], dtype=dtype) for name, dtype in dtypes}  # type: ignore[call-overload]
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def code(i: int) -> str:
    """Municipality code of place ``i`` (GM9001, GM9002, ...)."""
    return f"GM{9001 + i:04d}"


def hid(i: int) -> str:
    """Pseudonymous id of household ``i``."""
    return f"H{i + 1:03d}"


def municipalities(
    points: Sequence[tuple[float, float]],
    quota: Sequence[int],
    *,
    backlog: Sequence[int] | None = None,
    regions: Sequence[str] | None = None,
    provinces: Sequence[str] | None = None,
    cap_large: Sequence[int | None] | None = None,
    cap_single: Sequence[int | None] | None = None,
) -> pd.DataFrame:
    """Canonical municipalities with ``quota`` and ``remaining`` filled (as load_scenario does)."""
    rows = []
    for i, (lat, lon) in enumerate(points):
        rows.append(
            {
                "code": code(i),
                "name": f"Place {i}",
                "province": provinces[i] if provinces else "Testland",
                "labour_market_region": regions[i] if regions else f"Region {i % 2}",
                "lat": lat,
                "lon": lon,
                "population": 10_000 * (i + 1),
                "quota": quota[i],
                "backlog": backlog[i] if backlog else None,
                "cap_large": cap_large[i] if cap_large else None,
                "cap_single": cap_single[i] if cap_single else None,
            }
        )
    return fill_quotas(frame(rows, schema.MUNICIPALITY_DTYPES), None, "municipalities")


def households(sizes: Sequence[int], *, azc: Sequence[int | None] | None = None) -> pd.DataFrame:
    """Canonical households H001, H002, ... with the given sizes (and optional azc place index)."""
    rows = [
        {
            "household_id": hid(i),
            "size": s,
            "azc": code(azc[i]) if azc and azc[i] is not None else None,
        }
        for i, s in enumerate(sizes)
    ]
    return frame(rows, schema.HOUSEHOLD_DTYPES)


@dataclass(frozen=True)
class Crit:
    """Criterion of household ``h`` at place ``m``; work is hard only with hours and evidence."""

    h: int
    kind: str
    m: int
    hours: float | None = None
    contract: bool | None = None
    payslip: bool | None = None

    @classmethod
    def job(cls, h: int, m: int, hours: float = 24.0) -> Crit:
        """A qualifying job (hours, contract and payslip)."""
        return cls(h, "work", m, hours, True, True)


def criteria(items: Sequence[Crit]) -> pd.DataFrame:
    rows = [
        {
            "household_id": hid(c.h),
            "kind": c.kind,
            "municipality": code(c.m),
            "hours_per_week": c.hours,
            "contract_signed": c.contract,
            "payslip_seen": c.payslip,
        }
        for c in items
    ]
    return frame(rows, schema.CRITERIA_DTYPES)


def locks(items: Sequence[tuple[int, int, str]]) -> pd.DataFrame | None:
    """(household, place, 'pin' | 'ban') triples as a canonical locks frame (None when empty)."""
    if not items:
        return None
    return frame(
        [{"household_id": hid(h), "municipality": code(m), "action": a} for h, m, a in items],
        schema.LOCKS_DTYPES,
    )


def scores(items: Sequence[tuple[int, int, float]]) -> pd.DataFrame | None:
    """(household, place, score) triples as a canonical participation-score frame."""
    if not items:
        return None
    return frame(
        [{"household_id": hid(h), "municipality": code(m), "score": s} for h, m, s in items],
        schema.SCORES_DTYPES,
    )


def instance(
    points: Sequence[tuple[float, float]],
    quota: Sequence[int],
    sizes: Sequence[int],
    crits: Sequence[Crit] = (),
    *,
    lock_items: Sequence[tuple[int, int, str]] = (),
    score_items: Sequence[tuple[int, int, float]] = (),
    azc: Sequence[int | None] | None = None,
    **muni: Any,
) -> Instance:
    """A validated :class:`Instance` from plain lists (place and household indices)."""
    return Instance(
        municipalities=municipalities(points, quota, **muni),
        households=households(sizes, azc=azc),
        criteria=criteria(crits),
        scores=scores(score_items),
        locks=locks(lock_items),
    )


@dataclass(frozen=True)
class Optimum:
    """The lexicographic optimum of a tiny model, found by enumerating every assignment."""

    uncoupled: int
    broken: int
    objective: float
    assignment: np.ndarray  # one optimal plan (municipality index per household, -1 = none)


def brute_force(model: CouplingModel) -> Optimum:
    """Enumerate all (n_municipalities + 1) ** n_households plans and return the best.

    Scores come from the model's own arrays (``value``, ``breaks``, ``target``, ``cap``,
    ``forbidden``), so this checks the engine's search, not the score formulas. Order: fewest
    uncoupled persons, then fewest broken persons, then the largest
    ``sum(value) - fill_balance * sum(max(0, target - assigned))``.
    """
    n_h, n_m = model.n_households, model.n_municipalities
    if n_h > 7 or n_m > 4:
        raise ValueError("brute force is for at most 7 households x 4 municipalities")
    if model.bands:
        raise ValueError("brute force does not model quota bands")
    plans = np.array(list(itertools.product(range(-1, n_m), repeat=n_h)), dtype=np.int64).reshape(
        -1, n_h
    )
    size = model.size.astype(np.int64)
    on = plans >= 0
    pm = np.maximum(plans, 0)
    rows = np.arange(n_h)[None, :]
    assigned = np.stack([((plans == m) * size).sum(axis=1) for m in range(n_m)], axis=1)
    ok = (assigned <= model.cap[None, :]).all(axis=1)
    ok &= ~(on & model.forbidden[rows, pm]).any(axis=1)
    for caps, needs in ((model.cap_large, model.is_large), (model.cap_single, model.size == 1)):
        if caps is not None:
            count = np.stack(
                [((plans == m) & needs[None, :]).sum(axis=1) for m in range(n_m)], axis=1
            )
            ok &= (count <= caps[None, :]).all(axis=1)
    uncoupled = ((~on) * size).sum(axis=1)
    broken = ((on & model.breaks[rows, pm]) * size).sum(axis=1)
    soft = np.where(on, model.value[rows, pm], 0.0).sum(axis=1)
    short = np.maximum(model.target[None, :] - assigned, 0.0).sum(axis=1)
    objective = soft - model.fill_weight * short
    key_u = np.where(ok, uncoupled, np.iinfo(np.int64).max)
    best_u = key_u.min()
    sel = ok & (uncoupled == best_u)
    best_b = broken[sel].min()
    sel &= broken == best_b
    k = int(np.flatnonzero(sel)[np.argmax(objective[sel])])
    return Optimum(int(best_u), int(best_b), float(objective[k]), plans[k].copy())
