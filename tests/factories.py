"""Tiny canonical instances built in memory, and a brute-force optimum to check the engine against.

The frames follow :mod:`coupler.schema` exactly (columns in order, pandas dtypes), as
:mod:`coupler.io` would produce them, so an :class:`~coupler.instance.Instance` built here goes
through the same validation as one read from files.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from coupler import schema
from coupler.instance import Instance
from coupler.model import CouplingModel
from coupler.policy import Policy
from coupler.quota import fill_quotas


@contextlib.contextmanager
def busy_cores() -> Iterator[None]:
    """A busy loop on every core while the block runs (determinism under load)."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def engine_settings(max_examples: int = 40) -> settings:
    """Hypothesis settings of the engine properties: derandomized (CI reproduces), no deadline,
    and no shrinking (it re-solves hundreds of times; the first failing instance is reported)."""
    return settings(
        derandomize=True,
        deadline=None,
        max_examples=max_examples,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


#: Every soft weight 0 but participation, and no fill balance: the objective is the sum of the
#: participation scores of the chosen pairs, which can be added up by hand.
ONLY_PARTICIPATION = Policy().with_(
    weights={
        "labour": 0.0,
        "network": 0.0,
        "ambition": 0.0,
        "azc": 0.0,
        "participation": 1.0,
        "work_soft": 0.0,
    },
    quota={"fill_balance": 0.0},
)


def swap_instance() -> Instance:
    """Two places 34 km apart with 2 and 4 places left; households of 2, 1 and 1 persons with
    participation scores (place 0 / place 1) H001 1.0 / 0.2, H002 0.9 / 0.1, H003 0.5 / 0.4.

    Under :data:`ONLY_PARTICIPATION` the optimum is 1.6: H001 at place 1, H002 and H003 at place 0
    (H001 at place 0 gives only 1.0 + 0.1 + 0.4 = 1.5).
    """
    return instance(
        LINE[:2],
        [2, 4],
        [2, 1, 1],
        score_items=[
            (0, 0, 1.0),
            (0, 1, 0.2),
            (1, 0, 0.9),
            (1, 1, 0.1),
            (2, 0, 0.5),
            (2, 1, 0.4),
        ],
    )


def shortage_instance() -> Instance:
    """Four places on one parallel with 1, 0, 0, 5 places left; two single job-holders with a
    qualifying job at place 0; participation scores H001 0.3 and H002 0.8 at place 0.

    Only place 0 lies within 50 km of the job and has room, for one person: under
    :data:`ONLY_PARTICIPATION` the optimum breaks 1 person, objective 0.8 (H002 at place 0,
    H001 at place 3).
    """
    return instance(
        LINE[:4],
        [1, 0, 0, 5],
        [1, 1],
        [Crit.job(0, 0), Crit.job(1, 0)],
        score_items=[(0, 0, 0.3), (1, 0, 0.8)],
    )


def job_shortage_instance() -> Instance:
    """Four places on one parallel with 2, 0, 3, 6 places left; five households of 1, 2, 1, 3
    and 2 persons, three of them (0, 1, 3) with a qualifying job at place 0, which cannot take
    them all: every plan breaks a criterion. A few participation scores."""
    return instance(
        LINE[:4],
        [2, 0, 3, 6],
        [1, 2, 1, 3, 2],
        [Crit.job(0, 0), Crit.job(1, 0), Crit.job(3, 0)],
        score_items=[(0, 0, 0.3), (1, 2, 0.8), (2, 3, 0.5), (4, 2, 0.4)],
    )


def with_azc_jobs(
    households: pd.DataFrame, criteria: pd.DataFrame, code: str, n: int = 3, hours: float = 4.0
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Copies of generated cases whose first ``n`` households live in azc ``code`` and hold a job
    there of ``hours`` a week (with contract and payslip); also returns their ids."""
    hh = households.copy()
    ids = hh["household_id"].iloc[:n].astype(str).tolist()
    hh.loc[hh.index[:n], "azc"] = code
    extra = pd.DataFrame(
        {
            "household_id": ids,
            "kind": "work",
            "municipality": code,
            "hours_per_week": hours,
            "contract_signed": True,
            "payslip_seen": True,
        }
    ).astype(criteria.dtypes.to_dict())
    return hh, pd.concat([criteria, extra], ignore_index=True), ids


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


@dataclass(frozen=True, eq=False)
class Plans:
    """Every plan of a tiny model, with its feasibility and objective parts (one row per plan)."""

    assignment: np.ndarray  # plans x households: municipality index (-1 = none)
    feasible: np.ndarray  # capacities, forbidden pairs and dwelling caps respected
    uncoupled: np.ndarray  # persons
    broken: np.ndarray  # persons
    objective: np.ndarray  # sum(value) - fill_weight * shortfall


def all_plans(model: CouplingModel) -> Plans:
    """Enumerate all (n_municipalities + 1) ** n_households plans of a tiny model.

    Scores come from the model's own arrays (``value``, ``breaks``, ``target``, ``cap``,
    ``forbidden``), so this checks the engine's search, not the score formulas.
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
    return Plans(plans, ok, uncoupled, broken, soft - model.fill_weight * short)


def brute_force(model: CouplingModel) -> Optimum:
    """The lexicographic optimum over :func:`all_plans`: fewest uncoupled persons, then fewest
    broken persons, then the largest ``sum(value) - fill_balance * sum(max(0, target -
    assigned))``."""
    p = all_plans(model)
    key_u = np.where(p.feasible, p.uncoupled, np.iinfo(np.int64).max)
    best_u = key_u.min()
    sel = p.feasible & (p.uncoupled == best_u)
    best_b = p.broken[sel].min()
    sel &= p.broken == best_b
    k = int(np.flatnonzero(sel)[np.argmax(p.objective[sel])])
    return Optimum(int(best_u), int(best_b), float(p.objective[k]), p.assignment[k].copy())


def milp_optimum(model: CouplingModel) -> Optimum:
    """The lexicographic optimum of a small model by three exact MIPs over every usable pair,
    written here from the model's arrays with ``scipy.optimize.milp`` (not the engine's MIP
    builder): fewest uncoupled persons, then the least broken measure (``broken_weight``, the
    engine's stage), then the largest ``sum(value) - fill_balance * shortfall``. No dwelling caps
    or bands."""
    import scipy.sparse as sp
    from scipy.optimize import Bounds, LinearConstraint, milp

    if model.bands or model.cap_large is not None or model.cap_single is not None:
        raise ValueError("milp_optimum does not model bands or dwelling caps")
    n_h, n_m = model.n_households, model.n_municipalities
    ph, pm = np.nonzero(~model.forbidden)
    n_x = len(ph)
    size = model.size.astype(np.float64)
    # Columns: x (pairs), u (household left out), s (shortfall per municipality).
    n = n_x + n_h + n_m
    xs, us, ss = np.arange(n_x), n_x + np.arange(n_h), n_x + n_h + np.arange(n_m)
    once = sp.csr_matrix(
        (np.ones(n_x + n_h), (np.r_[ph, np.arange(n_h)], np.r_[xs, us])), shape=(n_h, n)
    )
    cap = sp.csr_matrix((size[ph], (pm, xs)), shape=(n_m, n))
    # Shortfall: s[m] + sum(min(size, target) x) >= target (exact for whole households).
    fill = sp.csr_matrix(
        (
            np.r_[np.minimum(size[ph], model.target[pm]), np.ones(n_m)],
            (np.r_[pm, np.arange(n_m)], np.r_[xs, ss]),
        ),
        shape=(n_m, n),
    )
    out = np.zeros(n)
    out[us] = size
    broken = np.zeros(n)
    broken[xs] = np.where(model.breaks[ph, pm], model.broken_weight[ph], 0.0)
    soft = np.zeros(n)
    soft[xs] = model.value[ph, pm]
    soft[ss] = -model.fill_weight
    rows = [
        LinearConstraint(once, 1.0, 1.0),
        LinearConstraint(cap, 0.0, model.cap.astype(np.float64)),
        LinearConstraint(fill, model.target, np.inf),
    ]
    integer = np.r_[np.ones(n_x + n_h), np.zeros(n_m)]
    bounds = Bounds(np.zeros(n), np.r_[np.ones(n_x + n_h), np.full(n_m, np.inf)])
    options = {"mip_rel_gap": 0.0}
    first = milp(out, constraints=rows, integrality=integer, bounds=bounds, options=options)
    best_u = round(first.fun)
    rows.append(LinearConstraint(out[None, :], best_u, best_u))
    second = milp(broken, constraints=rows, integrality=integer, bounds=bounds, options=options)
    best_b = round(second.fun)
    rows.append(LinearConstraint(broken[None, :], -np.inf, best_b + 1e-6))
    third = milp(-soft, constraints=rows, integrality=integer, bounds=bounds, options=options)
    plan = np.full(n_h, -1, dtype=np.int64)
    chosen = third.x[xs] > 0.5
    plan[ph[chosen]] = pm[chosen]
    return Optimum(int(best_u), int(best_b), float(-third.fun), plan)


@dataclass(frozen=True)
class Case:
    """A drawn instance and the policy to solve it under."""

    inst: Instance
    policy: Policy


@st.composite
def tiny_cases(
    draw: st.DrawFn, max_households: int = 6, scores: bool = True, max_size: int = 4
) -> Case:
    """A random tiny instance: 2-4 places in a 90 x 95 km box (so a 50 km radius covers some but
    not all), 1 to ``max_households`` households of 1 to ``max_size`` persons, random criteria (work with or without evidence),
    bans and pins, an azc, participation scores, tolerance and fill balance."""
    n_m = draw(st.integers(2, 4))
    n_h = draw(st.integers(1, max_households))
    grid = st.tuples(st.integers(0, 16), st.integers(0, 20))
    cells = draw(st.lists(grid, min_size=n_m, max_size=n_m, unique=True))
    points = [(51.6 + 0.05 * a, 4.6 + 0.07 * b) for a, b in cells]
    quota = draw(st.lists(st.integers(0, 7), min_size=n_m, max_size=n_m))
    sizes = draw(st.lists(st.integers(1, max_size), min_size=n_h, max_size=n_h))
    crits = []
    for h in range(n_h):
        for _ in range(draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(schema.CRITERION_KINDS))
            m = draw(st.integers(0, n_m - 1))
            if kind == "work":
                crits.append(
                    Crit(
                        h,
                        "work",
                        m,
                        draw(st.sampled_from([4.0, 8.0, 30.0])),
                        draw(st.booleans()),
                        draw(st.booleans()),
                    )
                )
            else:
                crits.append(Crit(h, kind, m))
    locks: dict[int, tuple[int, int, str]] = {}
    for h in draw(st.lists(st.integers(0, n_h - 1), max_size=2, unique=True)):
        locks[h] = (h, draw(st.integers(0, n_m - 1)), draw(st.sampled_from(["pin", "ban"])))
    azc = draw(st.lists(st.none() | st.integers(0, n_m - 1), min_size=n_h, max_size=n_h))
    score_items = []
    if scores and draw(st.booleans()):
        for h in range(n_h):
            for m in range(n_m):
                if draw(st.booleans()):
                    score_items.append((h, m, draw(st.sampled_from([0.1, 0.25, 0.5, 0.8, 1.0]))))
    policy = Policy().with_(
        quota={
            "tolerance": draw(st.sampled_from([0.0, 0.25])),
            "fill_balance": draw(st.sampled_from([0.0, 0.5])),
        }
    )
    inst = instance(
        points,
        quota,
        sizes,
        crits,
        lock_items=list(locks.values()),
        score_items=score_items,
        azc=azc,
    )
    return Case(inst, policy)
