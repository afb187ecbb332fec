"""An independent checker for coupling plans.

:func:`verify_plan` takes the canonical input tables, a policy and a plan (municipality code per
household) and checks the plan from first principles. It deliberately shares no code with the
solver: it does not import :mod:`coupler.model`, :mod:`coupler.criteria`, :mod:`coupler.engine` or
:mod:`coupler.geo`; distances, the hard-criterion rules, conflict resolution and quota capacities
are all recomputed here. A plan is accepted when

* every household appears exactly once and every municipality code is known;
* no municipality takes more persons than ``floor(remaining x (1 + tolerance))``, where
  ``remaining`` is the municipalities' ``remaining`` column when present and otherwise
  ``max(quota + backlog, 0)``; optional dwelling capacities (``cap_large``, ``cap_single``,
  counted in households) are respected;
* pins are honoured and bans never used;
* when a household's hard criteria share no municipality, the largest compatible subset binds
  (ties: policy priority, then work hours, then file order), found by trying every subset;
* no hard criterion is broken *avoidably*: a broken household is avoidable when some other
  municipality within the radius of all its hard criteria, not banned for it, still has room for
  its persons in the final plan. Moving it there would break fewer persons, so no optimal plan
  contains one. Likewise no household is left uncoupled while a permitted municipality has room.

Unavoidable broken criteria are not violations; they are listed in :attr:`Report.broken`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import pandas as pd

from coupler.policy import Policy

#: IUGG mean Earth radius (km), the sphere on which "great circle" is measured.
_EARTH_KM = 6371.0088
#: Slack (km) on the radius so that floating-point noise never decides a boundary case.
_RADIUS_SLACK_KM = 1e-6

PlanLike: TypeAlias = Mapping[str, object] | pd.Series | pd.DataFrame


@dataclass(frozen=True, eq=False)
class Report:
    """What :func:`verify_plan` found.

    Attributes
    ----------
    ok
        True when ``violations`` is empty.
    violations
        One readable line per rule the plan breaks.
    warnings
        Findings that are not violations (e.g. avoidable broken criteria under quota bands, which
        this checker cannot evaluate).
    broken
        One row per broken hard criterion: household_id, persons, kind, criterion_municipality,
        municipality (the plan's), km, avoidable (bool), witness (a municipality that had room, or
        NA).
    yielded
        One row per hard criterion dropped because the household's criteria had no municipality in
        common: household_id, kind, criterion_municipality.
    persons_per_municipality
        Persons coupled per municipality code (every code, zeros included).
    capacity
        ``floor(remaining x (1 + tolerance))`` per municipality code.
    broken_persons, uncoupled_persons
        Persons of households with at least one broken hard criterion, and persons left uncoupled.
    """

    ok: bool
    violations: list[str]
    warnings: list[str]
    broken: pd.DataFrame
    yielded: pd.DataFrame
    persons_per_municipality: pd.Series
    capacity: pd.Series
    broken_persons: int
    uncoupled_persons: int
    distance_km: np.ndarray = field(repr=False)

    def summary(self) -> str:
        head = "plan OK" if self.ok else f"plan REJECTED: {len(self.violations)} violation(s)"
        lines = [
            head,
            f"persons coupled    {int(self.persons_per_municipality.sum()):,}",
            f"uncoupled persons  {self.uncoupled_persons:,}",
            f"broken persons     {self.broken_persons:,} "
            f"({int(self.broken['avoidable'].sum())} avoidable criteria)",
            f"yielded criteria   {len(self.yielded):,}",
        ]
        return "\n".join(
            lines
            + [f"  - {v}" for v in self.violations]
            + [f"  warning: {w}" for w in self.warnings]
        )


def great_circle_km(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """All-pairs great-circle distances via the chord between unit vectors (not haversine)."""
    phi, lam = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
    chord = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=2)
    return 2.0 * _EARTH_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def _distances(
    municipalities: pd.DataFrame, distances: pd.DataFrame | None, index: dict[str, int]
) -> np.ndarray:
    d = great_circle_km(
        municipalities["lat"].to_numpy(float), municipalities["lon"].to_numpy(float)
    )
    if distances is None or not len(distances):
        return d
    given: dict[tuple[int, int], float] = {}
    for a, b, km in zip(
        distances["from"].astype(str),
        distances["to"].astype(str),
        distances["km"].astype(float),
        strict=True,
    ):
        given[(index[a], index[b])] = km
    for (i, j), km in given.items():
        d[i, j] = km
        if (j, i) not in given:  # a one-way entry holds both ways unless the reverse is given
            d[j, i] = km
    return d


def _is_hard(row: pd.Series, policy: Policy) -> bool:
    if row["kind"] != "work":
        return True
    hours = row.get("hours_per_week")
    if hours is None or pd.isna(hours) or float(hours) < policy.hard.work_min_hours:
        return False
    for col, needed in (
        ("contract_signed", policy.hard.work_requires_contract),
        ("payslip_seen", policy.hard.work_requires_payslip),
    ):
        flag = row.get(col)
        if needed and (flag is None or pd.isna(flag) or not bool(flag)):
            return False
    return True


def _plan_series(plan: PlanLike) -> pd.Series:
    if isinstance(plan, pd.DataFrame):
        return pd.Series(
            plan["municipality"].to_numpy(dtype=object),
            index=plan["household_id"].astype(str).to_numpy(),
        )
    if isinstance(plan, pd.Series):
        return pd.Series(plan.to_numpy(dtype=object), index=plan.index.astype(str))
    return pd.Series(list(plan.values()), index=[str(k) for k in plan], dtype=object)


def _remaining(m: pd.DataFrame) -> np.ndarray:
    if "remaining" in m and m["remaining"].notna().all():
        return m["remaining"].to_numpy(dtype=np.int64)
    if "quota" not in m or m["quota"].isna().any():
        raise ValueError("municipalities need 'remaining' or a complete 'quota' column")
    backlog = m["backlog"].fillna(0).to_numpy(dtype=np.int64) if "backlog" in m else 0
    return np.maximum(m["quota"].to_numpy(dtype=np.int64) + backlog, 0)


def _kept_subset(
    rows: list[tuple[str, int, float]], D: np.ndarray, radius: float, rank: dict[str, int]
) -> set[int]:
    """Which of a household's hard criteria bind, by trying every subset.

    A subset is compatible when some municipality lies within the radius of all its criteria.
    The kept subset is the compatible one with the most criteria; ties go to more criteria of the
    most important kind (policy priority), then of the next kind, and so on; then to more work
    hours; then to the subset keeping the earlier criterion (file order) where two differ.
    Households have a handful of criteria, so 2**n subsets are few.
    """
    n = len(rows)
    near = [D[j] <= radius for _, j, _ in rows]
    best: tuple[object, ...] | None = None
    chosen: set[int] = set()
    for bits in range(1, 2**n):
        members = [k for k in range(n) if bits >> k & 1]
        if not np.logical_and.reduce([near[k] for k in members]).any():
            continue
        per_level = [sum(1 for k in members if rank[rows[k][0]] == lvl) for lvl in range(len(rank))]
        hours = round(sum(rows[k][2] for k in members), 6)
        flags = tuple(k in members for k in range(n))
        key = (len(members), *per_level, hours, *flags)
        if best is None or key > best:
            best, chosen = key, set(members)
    return chosen


def verify_plan(
    municipalities: pd.DataFrame,
    households: pd.DataFrame,
    criteria: pd.DataFrame | None,
    plan: PlanLike,
    policy: Policy | None = None,
    locks: pd.DataFrame | None = None,
    distances: pd.DataFrame | None = None,
) -> Report:
    """Check ``plan`` against every quota, lock and hard criterion, independently of the solver.

    Parameters
    ----------
    municipalities, households, criteria, locks, distances
        Canonical frames (see :mod:`coupler.schema`); municipalities with ``remaining`` or
        ``quota`` (+ optional ``backlog``).
    plan
        Municipality code per household id (NA / None = uncoupled): a mapping, a Series indexed by
        household id, or a frame with ``household_id`` and ``municipality`` (e.g. ``plan.csv``).
    policy
        Radius, hours threshold, evidence switches, priority order and tolerance.

    Returns
    -------
    Report
    """
    policy = policy or Policy()
    violations: list[str] = []
    warnings: list[str] = []
    codes = municipalities["code"].astype(str).to_numpy()
    index = {c: i for i, c in enumerate(codes)}
    n_m = len(codes)
    ids = households["household_id"].astype(str).to_numpy()
    size = households["size"].to_numpy(dtype=np.int64)
    hpos = {h: i for i, h in enumerate(ids)}
    D = _distances(municipalities, distances, index)
    radius = policy.hard.radius_km + _RADIUS_SLACK_KM

    # -- the plan itself: each household exactly once, known codes ---------------------------
    series = _plan_series(plan)
    dup = series.index[series.index.duplicated()].unique()
    if len(dup):
        violations.append(
            f"{len(dup)} household(s) appear more than once in the plan, e.g. {dup[0]}"
        )
    series = series[~series.index.duplicated()]
    extra = sorted(set(series.index) - set(ids))
    if extra:
        violations.append(f"{len(extra)} unknown household(s) in the plan, e.g. {extra[0]}")
    missing = [h for h in ids if h not in series.index]
    if missing:
        violations.append(f"{len(missing)} household(s) missing from the plan, e.g. {missing[0]}")
    where = np.full(len(ids), -1, dtype=np.int64)
    for h, code in series.items():
        if h not in hpos or code is None or pd.isna(code) or str(code).strip() == "":
            continue
        c = str(code).strip().upper()
        if c not in index:
            violations.append(f"household {h}: unknown municipality code '{c}'")
            continue
        where[hpos[h]] = index[c]
    coupled = where >= 0

    # -- quotas and dwelling capacities ------------------------------------------------------
    remaining = _remaining(municipalities)
    cap = np.array(
        [math.floor(r * (1.0 + policy.quota.tolerance) + 1e-9) for r in remaining], dtype=np.int64
    )
    persons = np.bincount(where[coupled], weights=size[coupled], minlength=n_m).astype(np.int64)
    for j in np.flatnonzero(persons > cap).tolist():
        violations.append(
            f"{codes[j]}: {persons[j]} persons exceed the capacity {cap[j]} "
            f"(remaining {remaining[j]}, tolerance {policy.quota.tolerance:g})"
        )
    dwelling: list[tuple[str, np.ndarray, np.ndarray]] = []
    for col, needs in (
        ("cap_large", size >= policy.quota.large_household_size),
        ("cap_single", size == 1),
    ):
        if col in municipalities and municipalities[col].notna().any():
            limit = municipalities[col].astype("Float64").fillna(np.inf).to_numpy(dtype=float)
            used = np.bincount(where[coupled & needs], minlength=n_m)
            for j in np.flatnonzero(used > limit).tolist():
                violations.append(
                    f"{codes[j]}: {used[j]} households need a {col[4:]} dwelling; "
                    f"{col} is {int(limit[j])}"
                )
            dwelling.append((col, needs, limit - used))

    # -- locks ---------------------------------------------------------------------------------
    banned = np.zeros((len(ids), n_m), dtype=bool)
    if locks is not None and len(locks):
        for h, code, action in zip(
            locks["household_id"].astype(str),
            locks["municipality"].astype(str),
            locks["action"].astype(str),
            strict=True,
        ):
            i, j = hpos[h], index[code]
            if action == "ban":
                banned[i, j] = True
                if where[i] == j:
                    violations.append(f"household {h}: coupled to banned municipality {code}")
            else:
                banned[i, np.arange(n_m) != j] = True
                # An uncoupled pinned household is judged below: fine only when the pin is full.
                if where[i] != j and where[i] >= 0:
                    got = codes[where[i]] if where[i] >= 0 else "nothing"
                    violations.append(f"household {h}: pinned to {code} but coupled to {got}")

    # -- hard criteria: which count, conflicts, which are broken ------------------------------
    crit = (
        criteria
        if criteria is not None
        else pd.DataFrame(columns=["household_id", "kind", "municipality"])
    )
    rank = {k: r for r, k in enumerate(policy.hard.priority)}
    by_household: dict[int, list[tuple[str, int, float]]] = {}
    for _, row in crit.iterrows():
        if _is_hard(row, policy):
            hours = row.get("hours_per_week") if row["kind"] == "work" else None
            by_household.setdefault(hpos[str(row["household_id"])], []).append(
                (
                    str(row["kind"]),
                    index[str(row["municipality"])],
                    0.0 if hours is None or pd.isna(hours) else float(hours),
                )
            )
    yielded_rows: list[tuple[str, str, str]] = []
    active: dict[int, list[tuple[str, int]]] = {}
    within_all: dict[int, np.ndarray] = {}
    for i, rows in by_household.items():
        keep = _kept_subset(rows, D, radius, rank)
        yielded_rows += [(ids[i], k, codes[j]) for n, (k, j, _) in enumerate(rows) if n not in keep]
        kept = [(rows[n][0], rows[n][1]) for n in sorted(keep)]
        active[i] = kept
        within_all[i] = np.all([D[j] <= radius for _, j in kept], axis=0)

    room = cap - persons
    broken_rows: list[dict[str, object]] = []
    broken_households: set[int] = set()
    for i, binding in active.items():
        if not coupled[i]:
            continue
        bad = [(k, j) for k, j in binding if D[j, where[i]] > radius]
        if not bad:
            continue
        broken_households.add(i)
        fits = within_all[i] & ~banned[i] & (room >= size[i])
        fits[where[i]] = False
        for _col, needs, spare in dwelling:
            if needs[i]:
                fits &= spare >= 1
        witness = codes[np.flatnonzero(fits)[0]] if fits.any() else pd.NA
        for k, j in bad:
            broken_rows.append(
                {
                    "household_id": ids[i],
                    "persons": int(size[i]),
                    "kind": k,
                    "criterion_municipality": codes[j],
                    "municipality": codes[where[i]],
                    "km": round(float(D[j, where[i]]), 3),
                    "avoidable": bool(fits.any()),
                    "witness": witness,
                }
            )
    broken = pd.DataFrame(
        broken_rows,
        columns=[
            "household_id",
            "persons",
            "kind",
            "criterion_municipality",
            "municipality",
            "km",
            "avoidable",
            "witness",
        ],
    )
    avoidable = broken[broken["avoidable"]].drop_duplicates("household_id")
    for _, r in avoidable.iterrows():
        text = (
            f"household {r['household_id']}: {r['kind']} criterion at "
            f"{r['criterion_municipality']} "
            f"broken ({r['km']:.1f} km from {r['municipality']}) although {r['witness']} within "
            f"the radius has room for {r['persons']} person(s)"
        )
        (warnings if policy.quota.bands else violations).append(text)

    # -- uncoupled households while a permitted place has room --------------------------------
    for i in np.flatnonzero(~coupled).tolist():
        if ids[i] in missing:
            continue
        fits = ~banned[i] & (room >= size[i])
        for _col, needs, spare in dwelling:
            if needs[i]:
                fits &= spare >= 1
        if fits.any():
            place = codes[np.flatnonzero(fits)[0]]
            text = f"household {ids[i]}: left uncoupled although {place} has room"
            (warnings if policy.quota.bands else violations).append(text)

    return Report(
        ok=not violations,
        violations=violations,
        warnings=warnings,
        broken=broken,
        yielded=pd.DataFrame(
            yielded_rows, columns=["household_id", "kind", "criterion_municipality"]
        ),
        persons_per_municipality=pd.Series(
            persons, index=pd.Index(codes, name="code"), name="persons"
        ),
        capacity=pd.Series(cap, index=pd.Index(codes, name="code"), name="capacity"),
        broken_persons=int(size[sorted(broken_households)].sum()) if broken_households else 0,
        uncoupled_persons=int(size[~coupled & ~np.isin(ids, missing)].sum()),
        distance_km=D,
    )


__all__ = ["Report", "great_circle_km", "verify_plan"]
