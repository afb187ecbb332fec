"""Explanations: why each coupling, why not elsewhere, and why a hard criterion broke.

* :func:`explain_household` answers for one household: its municipality, each hard criterion with
  its distance (met or broken, and the cause), the score parts (weight x part), the best
  alternative, and on request *why not* another municipality.
* :func:`explain_broken` names the cause of every broken hard criterion. A shortage is explained by
  a Hall violator: a set of municipalities whose places are fewer than the persons whose hard
  criteria allow nothing else. It is found as a minimum cut of a max-flow on the aggregated
  structure (households with the same allowed set form one group), so the graph has one node per
  group and per municipality, never one per (household, municipality) pair.

Reading a run folder back (``load_run``) lives in :mod:`coupler.rundir`.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from coupler.criteria import SOFT_PARTS, soft_parts, soft_parts_at
from coupler.errors import InputError, Problem
from coupler.io import Places
from coupler.model import CouplingModel
from coupler.policy import Policy
from coupler.result import Result

__all__ = [
    "BROKEN_COLUMNS",
    "alternatives_table",
    "criteria_table",
    "explain_broken",
    "explain_household",
    "render_household",
    "score_table",
]

#: Columns of :func:`explain_broken` (and of ``broken.csv``), documented in docs/outputs.md.
BROKEN_COLUMNS: tuple[str, ...] = (
    "household_id",
    "persons",
    "municipality",
    "broken_kinds",
    "cause_kind",
    "area",
    "area_municipalities",
    "area_codes",
    "places_left",
    "persons_needing",
    "shortage",
    "cause",
)

# ---------------------------------------------------------------------------------------------
# Helpers


def _names(model: CouplingModel) -> np.ndarray:
    return model.instance.municipalities["name"].astype(str).to_numpy()


def _active_hard(model: CouplingModel) -> pd.DataFrame:
    """Criteria rows that bind under the policy (hard and not yielded), by index."""
    t = model.hard.table
    return t[t["hard"].to_numpy(dtype=bool) & ~t["yielded"].to_numpy(dtype=bool)]


def _join_names(names: list[str], limit: int = 3) -> str:
    if len(names) <= 1:
        return "".join(names)
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return ", ".join(names[:-1]) + " and " + names[-1]


def _household_index(model: CouplingModel, household_id: str) -> int:
    inst = model.instance
    text = str(household_id).strip()
    h = inst.household_index.get(text)
    if h is None:
        # 'h4' or 'H00004' for H000004: same letters and number first, then look-alikes.
        same = [i for i in inst.household_ids if _id_key(i) == _id_key(text)]
        close = same[:1] + [
            c
            for c in difflib.get_close_matches(text, list(inst.household_ids), n=3)
            if c not in same
        ]
        close = close[:3]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(Problem("HOUSEHOLD", f"unknown household '{household_id}'{hint}"))
    return h


def _id_key(text: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"([A-Za-z_-]*)0*(\d+)", text.strip())
    return (m.group(1).upper(), int(m.group(2))) if m else (text.strip().upper(), None)


def _municipality_index(model: CouplingModel, ref: str) -> int:
    """Index of a municipality given by code or name (:class:`coupler.io.Places`)."""
    inst = model.instance
    places = Places(inst.municipalities)
    code = places.code(str(ref))
    if code is None:
        message = places.unknown_municipality(str(ref).strip(), n=3, codes=True)
        raise InputError(Problem("--why-not", message))
    return int(inst.code_index[code])


# ---------------------------------------------------------------------------------------------
# Broken hard criteria and their causes


def _hall_violators(
    model: CouplingModel, assignment: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Max-flow / min-cut over groups of hard-criterion households with the same usable set.

    Returns ``(hard_rows, group_of, usable_groups, demand, cap, component)`` where
    ``component[g]`` is the Hall violator group ``g`` belongs to (-1 = none) and ``cap`` is the
    municipalities' capacity left for hard-criterion households.
    """
    hard_rows = np.flatnonzero(model.has_hard)
    usable = model.allowed[hard_rows] & ~model.forbidden[hard_rows]
    groups, group_of = np.unique(usable, axis=0, return_inverse=True)
    group_of = group_of.ravel()
    demand = np.bincount(group_of, weights=model.size[hard_rows], minlength=len(groups))
    # Pinned households without a hard criterion take their places first.
    pinned_free = np.flatnonzero((model.pinned >= 0) & ~model.has_hard)
    taken = np.bincount(
        model.pinned[pinned_free], weights=model.size[pinned_free], minlength=model.n_municipalities
    )
    cap = np.maximum(model.cap - taken, 0).astype(np.int64)

    g_idx, m_idx = np.nonzero(groups)
    graph = nx.DiGraph()
    graph.add_edges_from(
        (("s", ("g", int(g)), {"capacity": int(d)}) for g, d in enumerate(demand) if d > 0)
    )
    # Group -> municipality arcs carry no capacity attribute: networkx treats them as unbounded.
    graph.add_edges_from((("g", int(g)), ("m", int(m))) for g, m in zip(g_idx, m_idx, strict=True))
    graph.add_edges_from((("m", int(m)), "t", {"capacity": int(cap[m])}) for m in np.unique(m_idx))
    component = np.full(len(groups), -1, dtype=np.int64)
    if "t" not in graph or "s" not in graph:
        return hard_rows, group_of, groups, demand, cap, component
    _, (source_side, _) = nx.minimum_cut(graph, "s", "t")
    s_groups = np.array(
        sorted(n[1] for n in source_side if isinstance(n, tuple) and n[0] == "g"), dtype=np.int64
    )
    if not len(s_groups):
        return hard_rows, group_of, groups, demand, cap, component
    # Split the source side into independent violators: groups linked through shared places.
    inc = sp.csr_matrix(groups[s_groups].astype(np.int8))
    n_comp, labels = connected_components(inc @ inc.T, directed=False)
    for c in range(n_comp):
        members = s_groups[labels == c]
        places = int(cap[groups[members].any(axis=0)].sum())
        if demand[members].sum() > places:
            component[members] = c
    return hard_rows, group_of, groups, demand, cap, component


def explain_broken(model: CouplingModel, result: Result) -> pd.DataFrame:
    """Every household whose hard criterion is broken in ``result``, with its cause.

    Parameters
    ----------
    model
        The model the plan was solved on.
    result
        The plan.

    Returns
    -------
    pd.DataFrame
        One row per broken household, columns :data:`BROKEN_COLUMNS`. ``cause_kind`` is
        ``shortage`` (a Hall violator: ``area_codes`` have ``places_left`` persons of capacity and
        ``persons_needing`` persons with a hard criterion allow nothing else), ``conflict`` (the
        household's criteria have no municipality in common and the policy let one yield),
        ``lock`` (a pin or bans leave no allowed municipality), ``uncoupled`` (no place at all),
        ``indivisible`` (places remain but no single municipality has room for the whole
        household) or ``not_proven`` (places remain; the solver stopped within its gap).
    """
    inst = model.instance
    a = result.assignment
    rows = np.arange(model.n_households)
    coupled = a >= 0
    am = np.maximum(a, 0)
    active_broken = model.has_hard & (~coupled | model.breaks[rows, am])
    t = model.hard.table
    yielded_rows = t[t["yielded"].to_numpy(dtype=bool)]
    yb_h = yielded_rows["household"].to_numpy(dtype=np.int64)
    yb_m = yielded_rows["municipality"].to_numpy(dtype=np.int64)
    yb_unmet = ~coupled[yb_h] | (
        inst.distance_km[yb_m, am[yb_h]] > model.policy.hard.radius_km + 1e-9
    )
    conflict_broken = np.zeros(model.n_households, dtype=bool)
    conflict_broken[yb_h[yb_unmet]] = True
    broken = np.flatnonzero(active_broken | conflict_broken)
    if not len(broken):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in BROKEN_COLUMNS})

    # Broken kinds per household: active hard criteria not met, plus yielded ones not met.
    act = _active_hard(model)
    ah, amun = (
        act["household"].to_numpy(dtype=np.int64),
        act["municipality"].to_numpy(dtype=np.int64),
    )
    unmet = ~coupled[ah] | (inst.distance_km[amun, am[ah]] > model.policy.hard.radius_km + 1e-9)
    kinds = pd.concat(
        [
            pd.Series(act["kind"].to_numpy()[unmet], index=ah[unmet]),
            pd.Series(yielded_rows["kind"].to_numpy()[yb_unmet], index=yb_h[yb_unmet]),
        ]
    )
    kinds_of = kinds.groupby(level=0).agg(lambda s: ";".join(sorted(set(s))))

    hard_rows, group_of, groups, demand, cap, component = _hall_violators(model, a)
    pos_in_hard = np.full(model.n_households, -1, dtype=np.int64)
    pos_in_hard[hard_rows] = np.arange(len(hard_rows))
    names = _names(model)
    radius = model.policy.hard.radius_km
    assigned = np.bincount(
        a[coupled], weights=model.size[coupled], minlength=model.n_municipalities
    )

    # One description per violator: its places, its need and the criteria places it serves.
    areas: dict[int, dict[str, Any]] = {}
    for c in np.unique(component[component >= 0]):
        members = np.flatnonzero(component == c)
        in_area = groups[members].any(axis=0)
        hh = hard_rows[np.isin(group_of, members)]
        crit = act[np.isin(ah, hh)]
        weight = pd.Series(model.size[crit["household"].to_numpy(dtype=np.int64)])
        top = (
            weight.groupby(crit["municipality"].to_numpy())
            .sum()
            .sort_values(ascending=False, kind="stable")
        )
        label = "area" if len(top) == 1 else "areas"
        area = f"the {radius:g} km {label} around {_join_names([names[m] for m in top.index])}"
        areas[int(c)] = {
            "area": area,
            "area_municipalities": int(in_area.sum()),
            "area_codes": ";".join(inst.codes[in_area]),
            "places_left": int(cap[in_area].sum()),
            "persons_needing": int(demand[members].sum()),
            "mask": in_area,
        }

    out: list[dict[str, Any]] = []
    for h in broken:
        row: dict[str, Any] = {
            "household_id": inst.household_ids[h],
            "persons": int(model.size[h]),
            "municipality": inst.codes[a[h]] if a[h] >= 0 else None,
            "broken_kinds": kinds_of.get(h, ""),
            "area": None,
            "area_municipalities": None,
            "area_codes": None,
            "places_left": None,
            "persons_needing": None,
            "shortage": None,
        }
        p = pos_in_hard[h]
        usable = groups[group_of[p]] if p >= 0 else None
        comp = int(component[group_of[p]]) if p >= 0 else -1
        if comp < 0 and usable is not None:
            # A household outside every violator can still lose out to one it shares places with.
            shared = [c for c, info in areas.items() if (info["mask"] & usable).any()]
            comp = shared[0] if shared else -1
        if not active_broken[h]:
            mine = yielded_rows[yielded_rows["household"] == h]
            row["cause_kind"] = "conflict"
            row["cause"] = "its hard criteria have no municipality in common: " + "; ".join(
                f"{k} yielded ({why})"
                for k, why in zip(mine["kind"], mine["yield_reason"], strict=True)
            )
        elif usable is not None and not usable.any():
            row["cause_kind"] = "lock"
            row["cause"] = "a pin or bans leave no municipality that meets its hard criteria"
        elif comp >= 0:
            info = areas[comp]
            row.update({k: v for k, v in info.items() if k != "mask"})
            row["shortage"] = info["persons_needing"] - info["places_left"]
            row["cause_kind"] = "shortage"
            row["cause"] = (
                f"{info['area']} ({info['area_municipalities']} municipalities) has "
                f"{info['places_left']} quota places left and {info['persons_needing']} persons "
                f"with a hard criterion need them"
            )
        elif not coupled[h]:
            row["cause_kind"] = "uncoupled"
            row["cause"] = "no municipality had a place left for the whole household"
        else:
            assert usable is not None
            room = model.cap - assigned
            best_room = int(room[usable].max())
            row["area_municipalities"] = int(usable.sum())
            row["places_left"] = int(np.maximum(room[usable], 0).sum())
            if best_room < model.size[h]:
                row["cause_kind"] = "indivisible"
                row["cause"] = (
                    f"its allowed area ({int(usable.sum())} municipalities) has "
                    f"{row['places_left']} places left in total, but none has room for "
                    f"{int(model.size[h])} persons"
                )
            else:
                row["cause_kind"] = "not_proven"
                row["cause"] = (
                    f"a municipality in its allowed area still has room ({best_room} places); "
                    "the plan is not proven to need this break (see the gap)"
                )
        out.append(row)
    frame = pd.DataFrame(out)
    for col in ("area_municipalities", "places_left", "persons_needing", "shortage"):
        frame[col] = frame[col].astype("Int64")
    return frame[list(BROKEN_COLUMNS)]


# ---------------------------------------------------------------------------------------------
# One household


def _parts_at(model: CouplingModel, h: int) -> dict[str, np.ndarray]:
    """Each soft part of household ``h`` at every municipality."""
    parts = soft_parts(model.instance, model.policy, rows=np.array([h]))
    return {name: parts[name][0] for name in SOFT_PARTS}


def _score_parts(
    model: CouplingModel, parts: dict[str, np.ndarray], m: int
) -> list[dict[str, Any]]:
    w = model.policy.weights
    out = []
    for name in SOFT_PARTS:
        weight = float(getattr(w, name))
        value = float(parts[name][m])
        out.append({"part": name, "weight": weight, "value": value, "contribution": weight * value})
    return out


def score_table(model: CouplingModel, result: Result) -> pd.DataFrame:
    """Each household's score at its municipality, part by part (weight x value).

    The batch form of the ``score_parts`` of :func:`explain_household`: columns
    ``household_id``, ``municipality``, ``<part>`` (the contribution, weight x value, of each
    soft part) and ``score`` (their sum; 0 when uncoupled).
    """
    inst = model.instance
    a = result.assignment
    rows = np.arange(model.n_households)
    am = np.maximum(a, 0)
    w = model.policy.weights
    parts = soft_parts_at(inst, model.policy, rows, am)
    contrib = {
        name: np.where(a >= 0, float(getattr(w, name)) * parts[name], 0.0) for name in SOFT_PARTS
    }
    out = pd.DataFrame(
        {
            "household_id": inst.household_ids,
            "municipality": pd.Series(
                np.where(a >= 0, inst.codes[np.maximum(a, 0)], None), dtype="string"
            ),
            **contrib,
        }
    )
    out["score"] = np.sum([contrib[name] for name in SOFT_PARTS], axis=0)
    return out


def _municipality(model: CouplingModel, m: int) -> dict[str, Any]:
    row = model.instance.municipalities.iloc[m]
    return {
        "code": str(row["code"]),
        "name": str(row["name"]),
        "province": str(row["province"]),
        "labour_market_region": str(row["labour_market_region"]),
    }


def _criteria_at(model: CouplingModel, h: int, m: int) -> list[dict[str, Any]]:
    """Each criterion of household ``h`` measured at municipality ``m`` (-1 = uncoupled)."""
    inst = model.instance
    t = model.hard.table
    mine = t[t["household"].to_numpy() == h]
    radius = model.policy.hard.radius_km
    names = _names(model)
    source = inst.criteria.iloc[mine.index.to_numpy()]
    out = []
    for crit_m, kind, hard, yielded, why, (_, src) in zip(
        mine["municipality"].to_numpy(dtype=np.int64),
        mine["kind"],
        mine["hard"],
        mine["yielded"],
        mine["yield_reason"],
        source.iterrows(),
        strict=True,
    ):
        km = float(inst.distance_km[crit_m, m]) if m >= 0 else math.nan
        met = m >= 0 and km <= radius + 1e-9
        if not hard:
            state = "soft"  # e.g. work under the hours threshold or without contract/payslip
        elif met:
            state = "met"
        elif yielded:
            state = "yielded"
        else:
            state = "broken"
        out.append(
            {
                "kind": str(kind),
                "criterion_municipality": str(inst.codes[crit_m]),
                "criterion_municipality_name": str(names[crit_m]),
                "hard": bool(hard),
                "yielded": bool(yielded),
                "distance_km": round(km, 1) if m >= 0 else None,
                "radius_km": radius,
                "met": bool(met),
                "state": state,
            }
        )
        if state == "soft":
            out[-1]["soft_reason"] = _soft_reason(src, model.policy)
        if yielded:
            out[-1]["yield_reason"] = str(why)
    return out


def _soft_reason(row: pd.Series, policy: Policy) -> str:
    """Why a work criterion is only a soft signal under the policy."""
    why = []
    hours = row.get("hours_per_week")
    if hours is None or pd.isna(hours) or hours < policy.hard.work_min_hours:
        why.append(f"under {policy.hard.work_min_hours:g} hours a week")
    for col, label, required in (
        ("contract_signed", "no signed contract", policy.hard.work_requires_contract),
        ("payslip_seen", "no payslip seen", policy.hard.work_requires_payslip),
    ):
        flag = row.get(col)
        if required and (flag is None or pd.isna(flag) or not bool(flag)):
            why.append(label)
    return ", ".join(why) + "; scored as work_soft"


def _fill_delta(model: CouplingModel, assigned: np.ndarray, frm: int, to: int, size: int) -> float:
    """Change of the fill-balance penalty when ``size`` persons move from ``frm`` to ``to``."""

    def short(m: int, persons: float) -> float:
        return max(0.0, float(model.target[m]) - persons)

    delta = 0.0
    if frm >= 0:
        delta += short(frm, assigned[frm] - size) - short(frm, assigned[frm])
    delta += short(to, assigned[to] + size) - short(to, assigned[to])
    return model.fill_weight * delta


def explain_household(
    model: CouplingModel, result: Result, household_id: str, why_not: str | None = None
) -> dict[str, Any]:
    """Why ``household_id`` was coupled where it was (and, with ``why_not``, not there).

    Parameters
    ----------
    model, result
        The model and its plan.
    household_id
        A pseudonymous household id of the plan.
    why_not
        Optional municipality code (or exact name) to compare with the chosen one.

    Returns
    -------
    dict
        ``household_id``, ``persons``, ``municipality`` (code, name, province, region or None),
        ``criteria`` (each with distance, ``state`` met / broken / yielded / soft, and ``cause``
        when broken), ``score_parts`` (weight x value = contribution), ``score``,
        ``best_alternative`` and, when asked, ``why_not``.

    Raises
    ------
    InputError
        An unknown household or municipality (close matches are suggested).
    """
    h = _household_index(model, household_id)
    a = result.assignment
    m = int(a[h])
    size = int(model.size[h])
    parts = _parts_at(model, h)
    criteria = _criteria_at(model, h, m)
    if any(c["state"] in ("broken", "yielded") and not c["met"] for c in criteria):
        broken = explain_broken(model, result)
        cause = broken.loc[broken["household_id"] == model.instance.household_ids[h]]
        text = str(cause["cause"].iloc[0]) if len(cause) else None
        for c in criteria:
            if not c["met"] and c["state"] in ("broken", "yielded"):
                c["cause"] = text
    out: dict[str, Any] = {
        "household_id": str(model.instance.household_ids[h]),
        "persons": size,
        "municipality": _municipality(model, m) if m >= 0 else None,
        "pinned": str(model.instance.codes[model.pinned[h]]) if model.pinned[h] >= 0 else None,
        "criteria": criteria,
        "score_parts": _score_parts(model, parts, m) if m >= 0 else [],
        "score": float(model.value[h, m]) if m >= 0 else 0.0,
        "best_alternative": None,
    }
    # Best alternative, as in the plan: the best other usable municipality keeping hard criteria.
    usable = ~model.forbidden[h] & (model.allowed[h] | ~model.has_hard[h])
    alt = np.where(usable, model.value[h], -np.inf)
    if m >= 0:
        alt[m] = -np.inf
    best = int(alt.argmax())
    if np.isfinite(alt[best]):
        out["best_alternative"] = {
            **_municipality(model, best),
            "score": float(model.value[h, best]),
            "score_diff": float(model.value[h, best] - out["score"]),
            "score_parts": _score_parts(model, parts, best),
        }
    if why_not is not None:
        out["why_not"] = _why_not(model, result, a, h, _municipality_index(model, why_not), parts)
    return out


def _why_not(
    model: CouplingModel,
    result: Result,
    a: np.ndarray,
    h: int,
    w: int,
    parts: dict[str, np.ndarray],
) -> dict[str, Any]:
    inst = model.instance
    m = int(a[h])
    size = int(model.size[h])
    coupled = a >= 0
    assigned = np.bincount(
        a[coupled], weights=model.size[coupled], minlength=model.n_municipalities
    )
    banned = False
    if inst.locks is not None and len(inst.locks):
        lk = inst.locks
        banned = bool(
            (
                (lk["household_id"].astype(str) == inst.household_ids[h])
                & (lk["municipality"].astype(str) == inst.codes[w])
                & (lk["action"].astype(str) == "ban")
            ).any()
        )
    pinned = int(model.pinned[h])
    crit = _criteria_at(model, h, w)
    breaks = [c for c in crit if c["hard"] and not c["yielded"] and not c["met"]]
    for c in breaks:
        c["excess_km"] = round(c["distance_km"] - c["radius_km"], 1)
    chosen_breaks = bool(m >= 0 and model.breaks[h, m])
    score_w = float(model.value[h, w])
    score_m = float(model.value[h, m]) if m >= 0 else 0.0
    room = int(model.cap[w] - assigned[w]) + (size if m == w else 0)
    fill = _fill_delta(model, assigned, m, w, size) if m != w else 0.0
    delta = score_w - score_m - fill
    reasons: list[str] = []
    if m == w:
        reasons.append("it is the chosen municipality")
    else:
        if banned:
            reasons.append("the pair is banned by a lock")
        if pinned >= 0 and pinned != w:
            reasons.append(f"the household is pinned to {inst.codes[pinned]}")
        if breaks and not chosen_breaks:
            reasons.append(
                "it would break "
                + _join_names(
                    [
                        f"the {c['kind']} criterion "
                        f"({c['excess_km']} km beyond {c['radius_km']:g} km)"
                        for c in breaks
                    ]
                )
                + ", which comes before any score"
            )
        if room < size:
            reasons.append(
                f"it has no room: {max(room, 0)} places left, the household needs {size}"
            )
        if delta <= 0:
            reasons.append(
                f"moving there would lower the objective by {-delta:.4f} "
                f"(score {score_w - score_m:+.4f}, fill balance {0.0 - fill:+.4f})"
            )
        if not reasons:
            reasons.append(
                f"moving there alone would raise the objective by {delta:.4f}; the plan is optimal "
                f"only within its gap ({result.gap:.4%}) or a swap with other households is needed"
            )
    return {
        **_municipality(model, w),
        "chosen": m == w,
        "banned": banned,
        "pinned_elsewhere": str(inst.codes[pinned]) if pinned >= 0 and pinned != w else None,
        "criteria": crit,
        "breaks_hard": bool(breaks),
        "score": score_w,
        "score_diff": score_w - score_m,
        "score_parts": _score_parts(model, parts, w),
        "capacity": int(model.cap[w]),
        "assigned_persons": int(assigned[w]),
        "room": room,
        "fill_balance_delta": 0.0 - fill,
        "objective_delta": delta,
        "reasons": reasons,
    }


def criteria_table(model: CouplingModel, result: Result) -> pd.DataFrame:
    """Every criterion of every household measured at its municipality, in one pass.

    The batch form of the ``criteria`` of :func:`explain_household`: columns ``household_id``,
    ``kind``, ``criterion_municipality`` (code), ``hard``, ``yielded``, ``distance_km`` (NaN when
    uncoupled), ``met`` and ``state`` (met / broken / yielded / soft).
    """
    inst = model.instance
    a = result.assignment
    t = model.hard.table
    h = t["household"].to_numpy(dtype=np.int64)
    cm = t["municipality"].to_numpy(dtype=np.int64)
    at = a[h]
    km = np.where(at >= 0, inst.distance_km[cm, np.maximum(at, 0)], np.nan)
    met = (at >= 0) & (km <= model.policy.hard.radius_km + 1e-9)
    hard = t["hard"].to_numpy(dtype=bool)
    yielded = t["yielded"].to_numpy(dtype=bool)
    state = np.select([~hard, met, yielded], ["soft", "met", "yielded"], default="broken").astype(
        object
    )
    return pd.DataFrame(
        {
            "household_id": inst.household_ids[h],
            "kind": t["kind"].astype(str).to_numpy(),
            "criterion_municipality": inst.codes[cm],
            "hard": hard,
            "yielded": yielded,
            "distance_km": np.round(km, 1),
            "met": met,
            "state": state,
        }
    )


#: Why an alternative was not chosen, most decisive first (see :func:`alternatives_table`).
WHY_NOT: tuple[str, ...] = ("breaks", "no_room", "lower_score", "fill_balance", "swap")


def alternatives_table(model: CouplingModel, result: Result, k: int = 3) -> pd.DataFrame:
    """The ``k`` best other municipalities of every household, each with why it was not chosen.

    The batch form of ``why_not`` of :func:`explain_household`, computed with arrays for a whole
    batch. Candidates are the municipalities not banned for the household, ranked by soft score.

    Returns
    -------
    pd.DataFrame
        One row per (household, rank): ``household_id``, ``rank`` (1 = best), ``municipality``
        (code), ``score``, ``score_diff`` (vs the chosen municipality), ``room`` (places left
        there for this household), ``breaks`` (kinds of hard criteria it would break, ';'),
        ``fill_balance_delta``, ``objective_delta``, one ``<part>`` column per soft part
        (weight x value) and ``why_not``: ``breaks`` (it breaks a hard criterion the chosen place
        keeps), ``no_room`` (fewer places left than persons), ``lower_score``, ``fill_balance``
        (a higher score, but the fill balance of the quotas outweighs it) or ``swap`` (only a swap
        with other households, or the gap, explains it).
    """
    inst = model.instance
    a = result.assignment
    n, n_m = model.n_households, model.n_municipalities
    k = max(0, min(k, n_m - 1))
    coupled = a >= 0
    am = np.maximum(a, 0)
    rows = np.arange(n)
    assigned = np.bincount(a[coupled], weights=model.size[coupled], minlength=n_m)
    cand = np.where(model.forbidden, -np.inf, model.value.astype(float))
    cand[rows[coupled], a[coupled]] = -np.inf
    top = np.argsort(-cand, axis=1, kind="stable")[:, :k]
    hh = np.repeat(rows, k)
    w = top.ravel()
    keep = np.isfinite(cand[hh, w])
    hh, w = hh[keep], w[keep]
    rank = np.tile(np.arange(1, k + 1), n)[keep]
    size = model.size[hh]
    score_m = np.where(coupled[hh], model.value[hh, am[hh]], 0.0)
    score_w = model.value[hh, w]
    room = (model.cap[w] - assigned[w]).astype(np.int64)

    def short(m: np.ndarray, persons: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, model.target[m] - persons)

    fill = short(w, assigned[w] + size) - short(w, assigned[w])
    frm = am[hh]
    fill = fill + np.where(
        coupled[hh], short(frm, assigned[frm] - size) - short(frm, assigned[frm]), 0.0
    )
    fill = model.fill_weight * fill
    delta = score_w - score_m - fill

    # Kinds of active hard criteria each candidate breaks (the chosen place's breaks excluded).
    act = _active_hard(model)
    ah = act["household"].to_numpy(dtype=np.int64)
    acm = act["municipality"].to_numpy(dtype=np.int64)
    kinds = act["kind"].astype(str).to_numpy()
    pair = pd.DataFrame({"row": np.arange(len(hh)), "household": hh, "w": w})
    crit = pd.DataFrame({"household": ah, "cm": acm, "kind": kinds})
    joined = pair.merge(crit, on="household", how="inner")
    radius = model.policy.hard.radius_km
    far = inst.distance_km[joined["cm"].to_numpy(), joined["w"].to_numpy()] > radius + 1e-9
    breaks = (
        joined[far]
        .groupby("row")["kind"]
        .agg(lambda s: ";".join(sorted(set(s))))
        .reindex(np.arange(len(hh)))
    )
    chosen_breaks = coupled[hh] & model.breaks[hh, am[hh]]
    breaks_new = breaks.notna().to_numpy() & ~chosen_breaks

    why = np.select(
        [breaks_new, room < size, score_w - score_m <= 0, delta <= 0],
        ["breaks", "no_room", "lower_score", "fill_balance"],
        default="swap",
    ).astype(object)

    weights = model.policy.weights
    at = soft_parts_at(inst, model.policy, hh, w)
    contrib = {name: float(getattr(weights, name)) * at[name] for name in SOFT_PARTS}
    return pd.DataFrame(
        {
            "household_id": inst.household_ids[hh],
            "rank": rank,
            "municipality": inst.codes[w],
            "score": score_w,
            "score_diff": score_w - score_m,
            "room": room,
            "breaks": breaks.to_numpy(),
            "fill_balance_delta": -fill,
            "objective_delta": delta,
            **contrib,
            "why_not": why,
        }
    )


def render_household(expl: dict[str, Any]) -> str:
    """A plain-text rendering of :func:`explain_household`."""
    n = expl["persons"]
    lines = [f"household {expl['household_id']} ({n} person{'' if n == 1 else 's'})"]
    mun = expl["municipality"]
    if mun is None:
        lines.append("  not coupled: no municipality had a place left")
    else:
        lines.append(
            f"  coupled to {mun['code']} {mun['name']} ({mun['province']}, "
            f"{mun['labour_market_region']})"
        )
    if expl.get("pinned"):
        lines.append(f"  pinned to {expl['pinned']} by a lock")
    if expl["criteria"]:
        lines.append("  criteria:")
        for c in expl["criteria"]:
            dist = "-" if c["distance_km"] is None else f"{c['distance_km']} km"
            lines.append(
                f"    {c['kind']:<8} {c['criterion_municipality']} "
                f"{c['criterion_municipality_name']}: {dist} -> {c['state']}"
            )
            if c.get("soft_reason"):
                lines.append(f"             not hard: {c['soft_reason']}")
            if c.get("cause"):
                lines.append(f"             cause: {c['cause']}")
    else:
        lines.append("  no hard criteria")
    if expl["score_parts"]:
        lines.append(f"  score {expl['score']:.4f} = sum of weight x part:")
        lines.extend(_parts_lines(expl["score_parts"]))
    alt = expl["best_alternative"]
    if alt is not None:
        lines.append(
            f"  best alternative: {alt['code']} {alt['name']}, score {alt['score']:.4f} "
            f"({alt['score_diff']:+.4f})"
        )
    wn = expl.get("why_not")
    if wn is not None:
        lines.append(f"  why not {wn['code']} {wn['name']}?")
        for c in wn["criteria"]:
            if c["hard"] and not c["yielded"]:
                lines.append(
                    f"    {c['kind']:<8} {c['criterion_municipality_name']}: "
                    f"{c['distance_km']} km -> "
                    + ("met" if c["met"] else f"broken ({c['excess_km']} km too far)")
                )
        lines.append(f"    score {wn['score']:.4f} ({wn['score_diff']:+.4f} vs chosen):")
        lines.extend(_parts_lines(wn["score_parts"], indent=6))
        lines.append(
            f"    capacity {wn['capacity']}, assigned {wn['assigned_persons']}, room {wn['room']}"
        )
        lines.append(f"    banned: {'yes' if wn['banned'] else 'no'}")
        for r in wn["reasons"]:
            lines.append(f"    -> {r}")
    return "\n".join(lines)


def _parts_lines(parts: list[dict[str, Any]], indent: int = 4) -> list[str]:
    pad = " " * indent
    return [
        f"{pad}{p['part']:<14} {p['weight']:g} x {p['value']:.4f} = {p['contribution']:.4f}"
        for p in parts
        if p["weight"] or p["value"]
    ]
