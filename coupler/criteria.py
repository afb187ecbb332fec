"""Criteria: hard criteria -> allowed pairs; soft criteria -> score parts.

Everything here is vectorised over (household, municipality): a Python loop runs at most over
criteria *kinds* or conflicting households, never over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coupler.blocks import row_blocks
from coupler.instance import Instance
from coupler.policy import Policy
from coupler.schema import CRITERION_KINDS, SECTORS

#: Names of the soft parts, in the order reported everywhere.
SOFT_PARTS: tuple[str, ...] = ("labour", "network", "ambition", "azc", "participation", "work_soft")


@dataclass(frozen=True, eq=False)
class HardCriteria:
    """The hard criteria as the model sees them.

    Attributes
    ----------
    table
        One row per criterion: household (index), municipality (index), kind, ``hard`` (counts as a
        hard criterion under the policy), ``yielded`` (dropped because of a conflict), ``yield_reason``.
    allowed
        Bool matrix households x municipalities: the pair meets every hard criterion that was not
        yielded. Rows of households without hard criteria are all True.
    has_hard
        Households with at least one hard criterion.
    conflicts
        One row per yielded criterion (households whose hard criteria share no municipality):
        household, row (criteria row), kind, municipality (index), kept (the kept criteria, as
        text) and reason.
    """

    table: pd.DataFrame
    allowed: np.ndarray
    has_hard: np.ndarray
    conflicts: pd.DataFrame


def qualifies_as_hard(criteria: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Which criteria rows count as hard: all family/study/medical, and work only when it qualifies."""
    kind = criteria["kind"].astype(str).to_numpy()
    hours = pd.to_numeric(criteria.get("hours_per_week"), errors="coerce")
    hours = (
        np.zeros(len(criteria)) if hours is None else hours.to_numpy(dtype=float, na_value=np.nan)
    )
    ok = ~np.isnan(hours) & (hours >= policy.hard.work_min_hours)
    for col, required in (
        ("contract_signed", policy.hard.work_requires_contract),
        ("payslip_seen", policy.hard.work_requires_payslip),
    ):
        if required:
            flag = criteria[col] if col in criteria else pd.Series(pd.NA, index=criteria.index)
            ok &= flag.fillna(False).to_numpy(dtype=bool)
    return np.where(kind == "work", ok, True)


def _best_compatible(
    within: np.ndarray, prio: np.ndarray, hours: np.ndarray, levels: int
) -> np.ndarray:
    """The criteria of one household to keep when they share no municipality.

    ``within`` is criteria x municipalities (the criterion's radius covers the municipality).
    Every compatible set lies inside the set covering some municipality, so the columns are the
    candidates. They are ranked by: more criteria; then, kind by kind in the policy's priority
    order, more criteria of that kind; then more work hours; then the set keeping the earliest
    criterion (file order) where two sets differ. Returns a bool mask over the criteria.
    """
    w = within.astype(np.int64)
    keys: list[np.ndarray] = [w.sum(axis=0)]
    keys += [w[prio == level].sum(axis=0) for level in range(levels)]
    keys.append(np.round(hours @ w, 6))
    keys += list(w)  # earliest kept criterion wins a full tie
    best = int(np.lexsort(keys[::-1])[-1])
    return within[:, best].copy()


def hard_criteria(instance: Instance, policy: Policy) -> HardCriteria:
    """Allowed municipalities per household under the policy's radius, with conflicts resolved."""
    n_h = instance.n_households
    c = instance.criteria
    h_idx = c["household_id"].map(instance.household_index).to_numpy(dtype=np.int64)
    m_idx = c["municipality"].map(instance.code_index).to_numpy(dtype=np.int64)
    kind = c["kind"].astype(str).to_numpy()
    hard = qualifies_as_hard(c, policy) if len(c) else np.zeros(0, dtype=bool)
    rank = {k: i for i, k in enumerate(policy.hard.priority)}
    prio = np.array([rank[k] for k in kind], dtype=np.int64)  # 0 = most important
    within = instance.distance_km <= policy.hard.radius_km + 1e-9  # municipality x municipality

    hours = pd.to_numeric(c.get("hours_per_week"), errors="coerce")
    hours = (
        np.zeros(len(c))
        if hours is None
        else np.nan_to_num(hours.to_numpy(dtype=float, na_value=0))
    )
    hours = np.where(kind == "work", hours, 0.0)

    def intersect(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(allowed matrix, number of active hard criteria per household)."""
        rows = np.flatnonzero(mask)
        count = np.bincount(h_idx[rows], minlength=n_h)
        inc = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.int32), (h_idx[rows], np.arange(len(rows)))),
            shape=(n_h, len(rows)),
        )
        hits = inc @ within[m_idx[rows]].astype(np.int32)  # households x municipalities
        return np.asarray(hits) == count[:, None], count

    allowed, count = intersect(hard)
    yielded = np.zeros(len(c), dtype=bool)
    reasons = np.full(len(c), "", dtype=object)
    conflict_rows: list[dict[str, object]] = []
    names = instance.municipalities["name"].astype(str).to_numpy()
    empty = np.flatnonzero((count > 0) & ~allowed.any(axis=1))
    for h in empty:
        rows = np.flatnonzero((h_idx == h) & hard)
        keep = _best_compatible(within[m_idx[rows]], prio[rows], hours[rows], len(rank))
        ok = within[m_idx[rows[keep]]].all(axis=0)
        allowed[h] = ok
        kept = ", ".join(f"{kind[r]} {names[m_idx[r]]}" for r in rows[keep])
        for r in rows[~keep]:
            yielded[r] = True
            reasons[r] = (
                f"no municipality lies within {policy.hard.radius_km:g} km of both "
                f"{kind[r]} {names[m_idx[r]]} and the kept criteria ({kept}); the kept set is the "
                "largest that shares a municipality, then by priority "
                f"({' > '.join(policy.hard.priority)}), then by work hours"
            )
            conflict_rows.append(
                {
                    "household": int(h),
                    "row": int(r),
                    "kind": str(kind[r]),
                    "municipality": int(m_idx[r]),
                    "kept": kept,
                    "reason": reasons[r],
                }
            )
    active = hard & ~yielded
    has_hard = (
        np.bincount(h_idx[active], minlength=n_h) > 0 if len(c) else np.zeros(n_h, dtype=bool)
    )
    allowed[~has_hard] = True
    table = pd.DataFrame(
        {
            "household": h_idx,
            "municipality": m_idx,
            "kind": kind,
            "hard": hard,
            "yielded": yielded,
            "yield_reason": reasons,
        }
    )
    conflicts = pd.DataFrame(
        conflict_rows, columns=["household", "row", "kind", "municipality", "kept", "reason"]
    )
    allowed.flags.writeable = False
    return HardCriteria(table=table, allowed=allowed, has_hard=has_hard, conflicts=conflicts)


# --------------------------------------------------------------------------------------------
# Soft criteria
# --------------------------------------------------------------------------------------------
def _decay(d: np.ndarray, km: float) -> np.ndarray:
    return np.clip(1.0 - d / km, 0.0, 1.0)


def _gather_reduce(
    n: int, table: np.ndarray, rows: np.ndarray, idx: np.ndarray, how: str
) -> np.ndarray:
    """``out[r] = reduce(table[i] for the (r, i) pairs)``, with ``how`` in sum / max.

    ``rows`` is sorted (as :func:`_split_long` gives it); the loop runs over the position within a
    household (a few members at most), never over pairs.
    """
    out = np.zeros((n, table.shape[1]))
    if len(rows) == 0:
        return out
    occurrence = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    for k in range(int(occurrence.max()) + 1):
        sel = occurrence == k
        r = rows[sel]
        vals = table[idx[sel]]  # updated in place: one temporary per step, not two
        if how == "sum":
            vals += out[r]
        else:
            np.maximum(vals, out[r], out=vals)
        out[r] = vals
    return out


def _split_long(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """';'-joined values -> (row index, value) long arrays, skipping missing."""
    s = series.dropna().astype(str)
    if s.empty:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    parts = s.str.split(";").explode().str.strip()
    parts = parts[parts != ""]
    return parts.index.to_numpy(dtype=np.int64), parts.to_numpy(dtype=object)


@dataclass(frozen=True, eq=False)
class _Rows:
    """What every soft part needs about the households it is computed for."""

    instance: Instance
    policy: Policy
    hh: pd.DataFrame  # the households, positions 0..n-1
    sel: np.ndarray  # their rows in the instance
    region_names: np.ndarray
    region_of: np.ndarray  # labour-market region per municipality

    @property
    def n(self) -> int:
        return len(self.hh)


def _labour(r: _Rows) -> np.ndarray:
    """Demand for each member's sector in the municipality's labour-market region."""
    instance, hh, n = r.instance, r.hh, r.n
    n_m = instance.n_municipalities
    labour = np.zeros((n, n_m))
    if instance.demand is not None and len(instance.demand) and "sector" in hh:
        table = np.zeros((len(r.region_names), len(SECTORS)))
        dem = instance.demand
        ri = pd.Index(r.region_names).get_indexer(dem["labour_market_region"].astype(str))
        s = pd.Index(SECTORS).get_indexer(dem["sector"].astype(str))
        keep = (ri >= 0) & (s >= 0)
        table[ri[keep], s[keep]] = dem["demand"].to_numpy(dtype=float)[keep]
        by_muni = table[r.region_of]  # municipalities x sectors
        hi, sector = _split_long(hh["sector"])
        if len(hi):
            sidx = pd.Index(SECTORS).get_indexer(sector)
            known = sidx >= 0
            # sectors x municipalities, with a zero row for unknown sectors
            per_sector = np.vstack([by_muni.T, np.zeros((1, n_m))])
            agg = r.policy.soft.aggregation
            labour = _gather_reduce(
                n,
                per_sector,
                hi,
                np.where(known, sidx, len(SECTORS)),
                "max" if agg == "any" else "sum",
            )
            if agg == "mean":
                labour /= np.maximum(np.bincount(hi, minlength=n), 1)[:, None]
    return labour


def _network(r: _Rows) -> np.ndarray:
    """Near any municipality where the household has a network."""
    instance, hh, n = r.instance, r.hh, r.n
    network = np.zeros((n, instance.n_municipalities))
    if "network" in hh:
        hi, codes = _split_long(hh["network"])
        if len(hi):
            mi = pd.Series(codes).map(instance.code_index).to_numpy()
            ok = ~pd.isna(mi)
            network = _gather_reduce(
                n,
                _decay(instance.distance_km, r.policy.soft.network_km),
                hi[ok],
                mi[ok].astype(np.int64),
                "max",
            )
    return network


def _ambition(r: _Rows) -> np.ndarray:
    """Near the preferred municipality, or inside the preferred region."""
    instance, hh = r.instance, r.hh
    ambition = np.zeros((r.n, instance.n_municipalities))
    pm = instance.municipality_codes("preferred_municipality")[r.sel]
    has = pm >= 0
    ambition[has] = _decay(instance.distance_km, r.policy.soft.ambition_km)[pm[has]]
    if "preferred_region" in hh:
        pr = pd.Index(r.region_names).get_indexer(
            hh["preferred_region"].astype("string").fillna("")
        )
        has = pr >= 0
        ambition[has] = np.maximum(
            ambition[has], (r.region_of[None, :] == pr[has, None]).astype(float)
        )
    return ambition


def _azc(r: _Rows) -> np.ndarray:
    """Staying near the current azc."""
    instance = r.instance
    azc = np.zeros((r.n, instance.n_municipalities))
    a = instance.municipality_codes("azc")[r.sel]
    has = a >= 0
    azc[has] = _decay(instance.distance_km, r.policy.soft.azc_km)[a[has]]
    return azc


def _participation(r: _Rows) -> np.ndarray:
    """Supplied per (household, municipality) or (household, region)."""
    instance, n = r.instance, r.n
    part = np.zeros((n, instance.n_municipalities))
    if instance.scores is not None and len(instance.scores):
        sc = instance.scores
        pos = pd.Series(np.arange(n), index=instance.household_ids[r.sel])
        hrow = sc["household_id"].map(pos)
        score = sc["score"].to_numpy(dtype=float)
        reg = (
            sc["labour_market_region"]
            if "labour_market_region" in sc
            else pd.Series(pd.NA, index=sc.index)
        )
        by_region = reg.notna().to_numpy() & hrow.notna().to_numpy()
        if by_region.any():
            ri = pd.Index(r.region_names).get_indexer(reg[by_region].astype(str))
            hr = hrow[by_region].to_numpy(dtype=np.int64)
            # region rows first (a household may have several regions); municipality rows override
            per_region = np.zeros((n, len(r.region_names)))
            per_region[hr, ri] = score[by_region]
            part = per_region[:, r.region_of]
        by_muni = ~reg.notna().to_numpy() & hrow.notna().to_numpy()
        if by_muni.any():
            mi = sc["municipality"][by_muni].map(instance.code_index).to_numpy(dtype=np.int64)
            part[hrow[by_muni].to_numpy(dtype=np.int64), mi] = score[by_muni]
    return part


def _work_soft(r: _Rows) -> np.ndarray:
    """Near a job that does not count as a hard criterion."""
    instance, policy, n = r.instance, r.policy, r.n
    work_soft = np.zeros((n, instance.n_municipalities))
    c = instance.criteria
    if len(c):
        soft_job = (c["kind"].astype(str).to_numpy() == "work") & ~qualifies_as_hard(c, policy)
        if soft_job.any():
            pos = pd.Series(np.arange(n), index=instance.household_ids[r.sel])
            hr = c["household_id"][soft_job].map(pos)
            ok = hr.notna().to_numpy()
            mi = c["municipality"][soft_job].map(instance.code_index).to_numpy(dtype=np.int64)[ok]
            order = np.argsort(hr[ok].to_numpy(dtype=np.int64), kind="stable")
            work_soft = _gather_reduce(
                n,
                _decay(instance.distance_km, policy.hard.radius_km),
                hr[ok].to_numpy(dtype=np.int64)[order],
                mi[order],
                "max",
            )
    return work_soft


_PARTS = {
    "labour": _labour,
    "network": _network,
    "ambition": _ambition,
    "azc": _azc,
    "participation": _participation,
    "work_soft": _work_soft,
}


def soft_parts(
    instance: Instance,
    policy: Policy,
    rows: np.ndarray | None = None,
    names: tuple[str, ...] = SOFT_PARTS,
) -> dict[str, np.ndarray]:
    """Each soft part as a matrix (households x municipalities) of scores in [0, 1].

    ``rows`` limits the computation to some households (explanations); the matrices then have
    ``len(rows)`` rows in that order. ``names`` limits it to some parts. Every entry depends on
    its own household and municipality only, so the parts of some rows are exactly the rows of
    the whole parts. The labour part aggregates members' sectors by ``policy.soft.aggregation``
    (sum, mean, or any = the best member) and may exceed 1 under sum.
    """
    r = _rows(instance, policy, rows)
    return {name: _PARTS[name](r) for name in names}


def _rows(instance: Instance, policy: Policy, rows: np.ndarray | None) -> _Rows:
    """The households ``rows`` (all when ``None``) as the soft parts read them."""
    hh = (
        instance.households
        if rows is None
        else instance.households.iloc[rows].reset_index(drop=True)
    )
    sel = np.arange(instance.n_households) if rows is None else np.asarray(rows, dtype=np.int64)
    regions = instance.municipalities["labour_market_region"].astype(str).to_numpy()
    region_names, region_of = np.unique(regions, return_inverse=True)
    return _Rows(instance, policy, hh, sel, region_names, region_of)


def _blocks(instance: Instance, rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` cut into consecutive blocks (:func:`coupler.blocks.row_blocks`)."""
    return [rows[b] for b in row_blocks(len(rows), instance.n_municipalities)]


def soft_score(instance: Instance, policy: Policy, rows: np.ndarray | None = None) -> np.ndarray:
    """The weighted soft score per (household, municipality): sum of weight x part.

    Computed a block of households and one part at a time, and only for parts with a weight,
    so no part is ever held whole: the memory is the result plus one part of one block and its
    temporaries. The numbers are those of summing whole parts in ``SOFT_PARTS`` order (the same
    operations per entry).
    """
    sel = np.arange(instance.n_households) if rows is None else np.asarray(rows, dtype=np.int64)
    w = policy.weights
    names = tuple(name for name in SOFT_PARTS if getattr(w, name))
    total = np.zeros((len(sel), instance.n_municipalities))
    start = 0
    for block in _blocks(instance, sel):
        out = total[start : start + len(block)]
        r = _rows(instance, policy, block)
        for name in names:
            part = _PARTS[name](r)
            part *= getattr(w, name)
            out += part
            del part
        start += len(block)
    return total


def soft_parts_at(
    instance: Instance,
    policy: Policy,
    households: np.ndarray,
    municipalities: np.ndarray,
    names: tuple[str, ...] = SOFT_PARTS,
) -> dict[str, np.ndarray]:
    """Each soft part at the pairs ``(households[i], municipalities[i])``.

    Recomputed from the instance for the households named only, a block at a time, so a
    score per household of a whole batch needs no part held whole.
    """
    h = np.asarray(households, dtype=np.int64)
    m = np.asarray(municipalities, dtype=np.int64)
    out = {name: np.zeros(len(h)) for name in names}
    for block in _blocks(instance, np.unique(h)):
        mine = np.flatnonzero((h >= block[0]) & (h <= block[-1]))
        pos = np.searchsorted(block, h[mine])
        r = _rows(instance, policy, block)
        for name in names:
            out[name][mine] = _PARTS[name](r)[pos, m[mine]]
    return out


__all__ = [
    "CRITERION_KINDS",
    "SOFT_PARTS",
    "HardCriteria",
    "hard_criteria",
    "soft_parts",
    "soft_parts_at",
    "soft_score",
]
